"""Periods a manager thinks in: named periods relative to the clock's local today, custom
ranges with an inclusive last day in UK format, and every problem with a range at once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.analytics.periods import (
    Period,
    custom_range_problems,
    parse_uk_date,
    preset_period,
    uk_date,
)
from app.auth.roles import Role
from app.clock import FixedClock
from tests.analytics.helpers import PERIOD, create_arm
from tests.auth.helpers import create_user, sign_in
from tests.clock import CALENDAR, TODAY


@pytest.mark.parametrize(
    ("today", "name", "first", "last"),
    [
        (date(2026, 12, 2), "last-month", date(2026, 11, 1), date(2026, 11, 30)),
        (date(2027, 1, 5), "last-month", date(2026, 12, 1), date(2026, 12, 31)),
        (date(2027, 3, 31), "last-month", date(2027, 2, 1), date(2027, 2, 28)),
        (date(2026, 12, 2), "this-month", date(2026, 12, 1), date(2026, 12, 2)),
        (date(2026, 12, 2), "last-quarter", date(2026, 7, 1), date(2026, 9, 30)),
        (date(2027, 1, 5), "last-quarter", date(2026, 10, 1), date(2026, 12, 31)),
        (date(2027, 4, 1), "last-quarter", date(2027, 1, 1), date(2027, 3, 31)),
        (date(2026, 12, 2), "financial-year", date(2026, 4, 1), date(2026, 12, 2)),
        (date(2027, 3, 31), "financial-year", date(2026, 4, 1), date(2027, 3, 31)),
        (date(2027, 4, 1), "financial-year", date(2027, 4, 1), date(2027, 4, 1)),
    ],
)
def test_named_periods_from_a_given_today(today: date, name: str, first: date, last: date) -> None:
    period = preset_period(name, today)
    assert (period.start, period.last_day) == (first, last)


def test_uk_dates_are_read_day_first_and_written_that_way() -> None:
    assert parse_uk_date("1/9/2026") == date(2026, 9, 1)
    assert parse_uk_date(" 01/09/2026 ") == date(2026, 9, 1)
    assert parse_uk_date("2026-09-01") == date(2026, 9, 1)
    assert uk_date(date(2026, 9, 1)) == "01/09/2026"
    for bad in ("31/2/2026", "9/2026", "2026/13/01", "tomorrow"):
        with pytest.raises(ValueError, match=r"."):
            parse_uk_date(bad)


def test_a_custom_range_lists_every_problem_at_once() -> None:
    future = TODAY + timedelta(days=10)
    problems = custom_range_problems(future, future - timedelta(days=20), TODAY)
    assert set(problems) == {"from", "to"}
    assert "in the future" in problems["from"]
    assert "before the first day" in problems["to"]
    long = custom_range_problems(TODAY - timedelta(days=4 * 365), TODAY, TODAY)
    assert long == {"to": "Choose a period of at most three years"}
    assert custom_range_problems(TODAY, TODAY, TODAY) == {}
    # A range that runs past today: its figures would stop at today, so it is refused plainly.
    running_on = custom_range_problems(TODAY - timedelta(days=5), TODAY + timedelta(days=1), TODAY)
    assert set(running_on) == {"to"}
    assert "is in the future: choose today" in running_on["to"]
    assert Period.through(TODAY, TODAY).days == 1


def _manager(session: Session, client: TestClient) -> None:
    create_user(session, role=Role.MANAGER, username="periods.manager")
    session.commit()
    sign_in(client, "periods.manager")


def test_the_page_offers_named_periods_relative_to_the_clock(
    session: Session, app_client: TestClient, clock: FixedClock
) -> None:
    create_arm(session, arm="call", attended=95, dnas=5)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    _manager(session, app_client)
    # Move the clock to the month after the helpers' period: "last month" contains part of it.
    clock.set(
        CALENDAR.at(
            date(PERIOD.start.year + (PERIOD.start.month == 12), PERIOD.start.month % 12 + 1, 15)
        )
    )

    page = app_client.get("/analytics?period=last-month")

    month = preset_period("last-month", CALENDAR.today(clock.now()))
    assert month.start == PERIOD.start.replace(day=1)
    assert page.status_code == 200
    heading = f'<h2 class="nhsuk-heading-m">{month.label()} <span class="nhsuk-body-s">'
    assert heading + "(both days included)" in page.text
    for name in ("Last month", "This month so far", "Last quarter", "Financial year to date"):
        assert name in page.text
    # The form shows the chosen period's days the UK way, the last day included.
    assert f'value="{uk_date(month.start)}"' in page.text
    assert f'value="{uk_date(month.last_day)}"' in page.text
    api = app_client.get("/api/analytics/dashboard?period=last-month").json()
    assert api["period"]["last_day"] == month.last_day.isoformat()


def test_a_custom_range_includes_its_last_day(session: Session, app_client: TestClient) -> None:
    create_arm(session, arm="call", attended=95, dnas=5)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    _manager(session, app_client)
    first, last = PERIOD.start, PERIOD.last_day

    page = app_client.get(f"/analytics?period=custom&from={first:%-d/%-m/%Y}&to={uk_date(last)}")

    assert page.status_code == 200
    assert Period.through(first, last).label() in page.text
    assert "7 avoided DNAs" in page.text


def test_bad_ranges_show_every_problem_in_the_error_summary(
    session: Session, app_client: TestClient
) -> None:
    _manager(session, app_client)
    future = TODAY + timedelta(days=30)

    page = app_client.get(
        f"/analytics?period=custom&from={uk_date(future)}&to={uk_date(future - timedelta(days=60))}"
    )
    too_long = app_client.get(
        f"/analytics?period=custom&from={uk_date(TODAY - timedelta(days=1200))}&to={uk_date(TODAY)}"
    )

    assert page.status_code == 200
    assert "nhsuk-error-summary" in page.text
    assert "is in the future" in page.text
    assert "is before the first day" in page.text
    assert 'href="#from"' in page.text
    assert 'href="#to"' in page.text
    assert "at most three years" in too_long.text
