"""The tests' moment: every test's clock starts here, so no test depends on today's date.

`NAVIGATOR_TEST_NOW` (ISO 8601 with an offset) moves it, for example into summer time or to
just after local midnight; the default is a Wednesday morning in winter, Europe/London.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from app.localtime import TrustCalendar

DEFAULT_TEST_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def configured_test_now() -> datetime:
    configured = os.environ.get("NAVIGATOR_TEST_NOW")
    if not configured:
        return DEFAULT_TEST_NOW
    moment = datetime.fromisoformat(configured)
    if moment.tzinfo is None:
        raise ValueError("NAVIGATOR_TEST_NOW needs an offset, e.g. 2027-07-14T10:00:00+01:00")
    return moment.astimezone(UTC)


TEST_NOW = configured_test_now()
CALENDAR = TrustCalendar()
TODAY = CALENDAR.today(TEST_NOW)
