"""Reporting periods: a half-open range of local dates [start, end) and its UTC bounds, and the
periods a manager thinks in (this month, last month, last quarter, financial year to date, a
custom range whose "to" is the last day, included), with dates read and written the UK way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.errors import InvalidInputError
from app.isodate import parse_iso_date
from app.localtime import TrustCalendar

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

    def bounds(self, calendar: TrustCalendar) -> tuple[datetime, datetime]:
        """The period's instants in UTC: local midnight at the start and after the last day."""
        return calendar.days_bounds(self.start, self.end)

    @classmethod
    def through(cls, first: date, last: date) -> Period:
        """The days `first` to `last`, both included."""
        return cls(first, last + timedelta(days=1))

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


def parse_period(
    start: date | None, end: date | None, today: date, preset: str | None = None
) -> Period:
    """The API's period: a preset name, or `from` and `to` (the day after the last day)."""
    if preset is not None:
        if start is not None or end is not None:
            raise InvalidInputError("Give either 'period' or 'from' and 'to', not both.")
        return preset_period(preset, today)
    if start is None and end is None:
        return default_period(today)
    if start is None or end is None:
        raise InvalidInputError("Give both 'from' and 'to', or neither for the last 12 weeks.")
    return Period(start, end)


# --- Periods a manager thinks in -------------------------------------------------------------

PRESETS: dict[str, str] = {
    "last-month": "Last month",
    "this-month": "This month so far",
    "last-quarter": "Last quarter",
    "financial-year": "Financial year to date",
    "last-12-weeks": "Last 12 weeks",
    "custom": "Custom range",
}
FINANCIAL_YEAR_START_MONTH = 4  # NHS financial years run 1 April to 31 March


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_before(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def financial_year_start(day: date) -> date:
    year = day.year if day.month >= FINANCIAL_YEAR_START_MONTH else day.year - 1
    return date(year, FINANCIAL_YEAR_START_MONTH, 1)


def last_complete_month(today: date) -> Period:
    this_month = _month_start(today)
    return Period(_months_before(this_month, 1), this_month)


def preset_period(name: str, today: date) -> Period:
    """A named period relative to the local day `today` (periods "so far" include today)."""
    this_month = _month_start(today)
    if name == "last-month":
        return last_complete_month(today)
    if name == "this-month":
        return Period.through(this_month, today)
    if name == "last-quarter":
        # Quarters start in January, April, July and October (financial quarters align).
        quarter_start = _months_before(this_month, (this_month.month - 1) % 3)
        return Period(_months_before(quarter_start, 3), quarter_start)
    if name == "financial-year":
        return Period.through(financial_year_start(today), today)
    if name == "last-12-weeks":
        return default_period(today)
    raise InvalidInputError(f"Choose one of: {', '.join(PRESETS.values())}.")


_UK_DATE = re.compile(r"^\s*([0-9]{1,2})\s*[/.-]\s*([0-9]{1,2})\s*[/.-]\s*([0-9]{4})\s*$")


def parse_uk_date(text: str) -> date:
    """'1/9/2026' or '01/09/2026' (day first, as in the UK); ISO '2026-09-01' is also read,
    for links (strictly `YYYY-MM-DD`: not `20260901` or `2026-W36-2`). Raises ValueError for
    anything else or a day that does not exist."""
    text = text.strip()
    match = _UK_DATE.match(text)
    if match:
        day, month, year = (int(part) for part in match.groups())
        return date(year, month, day)
    return parse_iso_date(text)


def uk_date(day: date) -> str:
    """A date as a UK form shows it: 01/09/2026."""
    return f"{day:%d/%m/%Y}"


def custom_range_problems(first: date, last: date, today: date) -> dict[str, str]:
    """Every problem with a custom range at once, keyed by the field to correct."""
    problems: dict[str, str] = {}
    if first > today:
        problems["from"] = (
            f"The first day ({first:%-d %b %Y}) is in the future: choose a day on or before "
            f"today, {today:%-d %b %Y}"
        )
    if last < first:
        problems["to"] = (
            f"The last day ({last:%-d %b %Y}) is before the first day ({first:%-d %b %Y})"
        )
    elif last > today:
        problems["to"] = (
            f"The last day ({last:%-d %b %Y}) is in the future: choose today, "
            f"{today:%-d %b %Y}, or an earlier day"
        )
    elif (last - first).days + 1 > MAX_PERIOD_DAYS:
        problems["to"] = "Choose a period of at most three years"
    return problems
