"""Turning the trust's local calendar days into UTC ranges for queries (see `app.localtime`)."""

from __future__ import annotations

from datetime import date, datetime

from app.localtime import TrustCalendar


def local_day_bounds(day: date | None, timezone: str) -> tuple[datetime | None, datetime | None]:
    """[start, end) of a local day in UTC, or (None, None) for no day."""
    if day is None:
        return None, None
    return TrustCalendar(timezone).day_bounds(day)
