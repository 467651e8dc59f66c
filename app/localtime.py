"""The trust's local calendar (Europe/London by default, summer time included), in one place.

Storage is UTC; everything a person sees and every "day" the service reasons about is a local
calendar day. Pass a moment from the injected clock (`app.clock`); nothing here reads the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/London"


@dataclass(frozen=True)
class TrustCalendar:
    """Local days and working hours of the trust (navigators work Monday to Friday)."""

    timezone: str = DEFAULT_TIMEZONE
    day_start_hour: int = 9
    day_end_hour: int = 17

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # --- moments and days ---------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        """An aware moment as local wall-clock time."""
        return moment.astimezone(self.zone)

    def today(self, now: datetime) -> date:
        """The local calendar day of `now`."""
        return now.astimezone(self.zone).date()

    def at(self, day: date, clock_time: time = time.min) -> datetime:
        """The UTC moment of a local wall-clock time on a local day."""
        return datetime.combine(day, clock_time, tzinfo=self.zone).astimezone(UTC)

    def day_start(self, day: date) -> datetime:
        """Local midnight at the start of `day`, in UTC (23:00 or 00:00 UTC by season)."""
        return self.at(day)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """[start, end) of a local day in UTC; 23 or 25 hours long on the clock-change days."""
        return self.day_start(day), self.day_start(day + timedelta(days=1))

    def days_bounds(self, first: date, after_last: date) -> tuple[datetime, datetime]:
        """[start of `first`, start of `after_last`) in UTC."""
        return self.day_start(first), self.day_start(after_last)

    # --- working hours -------------------------------------------------------------------

    @staticmethod
    def is_working_day(day: date) -> bool:
        return day.weekday() < 5

    def working_day_start(self, day: date) -> datetime:
        return self.at(day, time(self.day_start_hour))

    def working_day_end(self, day: date) -> datetime:
        if self.day_end_hour >= 24:
            return self.day_start(day + timedelta(days=1))
        return self.at(day, time(self.day_end_hour))

    def is_working_time(self, moment: datetime) -> bool:
        day = self.today(moment)
        return self.is_working_day(day) and self.working_day_start(
            day
        ) <= moment < self.working_day_end(day)

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def next_working_morning(self, moment: datetime) -> datetime:
        """The start of the working day after the one `moment` falls on, in UTC."""
        return self.working_day_start(self.next_working_day(self.today(moment)))

    def add_working_days(self, day: date, count: int) -> date:
        for _ in range(count):
            day = self.next_working_day(day)
        return day
