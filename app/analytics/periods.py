"""Reporting periods: a half-open range of local dates [start, end) and its UTC bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.errors import InvalidInputError

MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True, slots=True)
class Period:
    """Appointments starting on or after `start` and before `end` (local dates)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInputError(
                f"The period must end after it starts: 'to' ({self.end.isoformat()}) is the day "
                f"after the last day, so it must be later than 'from' ({self.start.isoformat()})."
            )
        if (self.end - self.start).days > MAX_PERIOD_DAYS:
            raise InvalidInputError("Choose a period of at most three years.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The period's instants in UTC: local midnight at the start and after the last day."""
        zone = ZoneInfo(timezone)
        return (
            datetime.combine(self.start, time.min, tzinfo=zone).astimezone(UTC),
            datetime.combine(self.end, time.min, tzinfo=zone).astimezone(UTC),
        )

    def label(self) -> str:
        return f"{self.start:%-d %b %Y} to {self.last_day:%-d %b %Y}"

    def as_dict(self) -> dict[str, str]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "last_day": self.last_day.isoformat(),
            "label": self.label(),
        }


def default_period(today: date, weeks: int = 12) -> Period:
    """The last `weeks` complete weeks up to and including yesterday."""
    return Period(today - timedelta(weeks=weeks), today)


def parse_period(start: date | None, end: date | None, today: date) -> Period:
    if start is None and end is None:
        return default_period(today)
    if start is None or end is None:
        raise InvalidInputError("Give both 'from' and 'to', or neither for the last 12 weeks.")
    return Period(start, end)
