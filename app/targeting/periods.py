"""The report period: local days [from, to), default the last 52 weeks up to today."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.errors import InvalidInputError
from app.isodate import parse_iso_date
from app.settings import Settings

DEFAULT_WEEKS = 52


def parse_day(value: str, name: str) -> date:
    try:
        return parse_iso_date(value)
    except ValueError as error:
        raise InvalidInputError(f"{name} must be a date like 2026-09-01") from error


def report_period(
    settings: Settings, now: datetime, start: str | None, end: str | None
) -> tuple[date, date, datetime, datetime]:
    """(first day, day after the last, and their UTC bounds) of the period asked for."""
    calendar = settings.calendar
    after_last = parse_day(end, "--to") if end else calendar.today(now) + timedelta(days=1)
    first = parse_day(start, "--from") if start else after_last - timedelta(weeks=DEFAULT_WEEKS)
    if after_last <= first:
        raise InvalidInputError("the period must end after it starts (--to after --from)")
    return first, after_last, calendar.day_start(first), calendar.day_start(after_last)
