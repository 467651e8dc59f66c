"""Turning the trust's local calendar days into UTC ranges for queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_day_bounds(day: date | None, timezone: str) -> tuple[datetime | None, datetime | None]:
    """[start, end) of a local day in UTC, or (None, None) for no day."""
    if day is None:
        return None, None
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
