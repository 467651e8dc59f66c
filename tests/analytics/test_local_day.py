"""An appointment counts on the trust's local day (Europe/London), on SQLite as on PostgreSQL:
late evening in summer time is already the next day, just after midnight in winter is not the
day before, and a patient's age changes on their local birthday."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, literal, select
from sqlalchemy.orm import Session

from app.analytics import repository
from app.analytics.periods import Period
from app.patients.tables import Patient
from app.settings import Settings
from tests.analytics.helpers import create_outcomes
from tests.clock import CALENDAR, TODAY
from tests.factories import create_patient

SUMMER_DAY = date(TODAY.year - 1, 7, 14)  # British Summer Time: local = UTC + 1
WINTER_DAY = date(TODAY.year - 1, 1, 13)  # Greenwich Mean Time: local = UTC


def _days(session: Session, settings: Settings, period: Period) -> dict[date, int]:
    start, end = period.bounds(settings.calendar)
    grouped = repository.appointment_cube(
        session,
        start=start,
        end=end,
        sources=["day", "age_years"],
        timezone=settings.timezone,
        contact_lookback=timedelta(days=1),
    )
    return {repository.as_day(raw): counts["appointments"] for raw, counts in grouped["day"]}


def test_a_summer_evening_after_2330_utc_counts_on_the_next_local_day(
    session: Session, settings: Settings
) -> None:
    late = datetime.combine(SUMMER_DAY, time(23, 30), tzinfo=UTC)  # 00:30 BST the next day
    assert CALENDAR.today(late) == SUMMER_DAY + timedelta(days=1)
    create_outcomes(session, attended=1, dnas=0, start_at=late)
    create_outcomes(session, attended=1, dnas=0, start_at=late - timedelta(hours=1))
    session.flush()

    days = _days(
        session, settings, Period(SUMMER_DAY - timedelta(days=2), SUMMER_DAY + timedelta(days=3))
    )

    assert days == {SUMMER_DAY: 1, SUMMER_DAY + timedelta(days=1): 1}


def test_just_after_midnight_in_winter_counts_on_that_local_day(
    session: Session, settings: Settings
) -> None:
    after_midnight = CALENDAR.at(WINTER_DAY, time(0, 30))
    assert after_midnight == datetime.combine(WINTER_DAY, time(0, 30), tzinfo=UTC)
    create_outcomes(session, attended=1, dnas=0, start_at=after_midnight)
    create_outcomes(session, attended=0, dnas=1, start_at=after_midnight - timedelta(hours=1))
    session.flush()

    days = _days(
        session, settings, Period(WINTER_DAY - timedelta(days=2), WINTER_DAY + timedelta(days=2))
    )

    assert days == {WINTER_DAY - timedelta(days=1): 1, WINTER_DAY: 1}


def test_the_period_starts_at_local_midnight(session: Session, settings: Settings) -> None:
    # 23:30 UTC on the eve of the period's first day is 00:30 BST on that day: inside.
    first = SUMMER_DAY
    create_outcomes(
        session,
        attended=1,
        dnas=0,
        start_at=datetime.combine(first, time(0), UTC) - timedelta(minutes=30),
    )
    session.flush()

    assert _days(session, settings, Period(first, first + timedelta(days=1))) == {first: 1}
    assert _days(session, settings, Period(first - timedelta(days=1), first)) == {}


def test_age_changes_on_the_local_birthday(session: Session, settings: Settings) -> None:
    late = datetime.combine(SUMMER_DAY, time(23, 30), tzinfo=UTC)  # local: the birthday
    birthday = SUMMER_DAY + timedelta(days=1)
    eighteen = birthday.replace(year=birthday.year - 18)
    create_outcomes(session, attended=1, dnas=0, start_at=late, birth_date=eighteen)
    session.flush()
    start, end = Period(SUMMER_DAY, SUMMER_DAY + timedelta(days=2)).bounds(settings.calendar)

    grouped = repository.appointment_cube(
        session,
        start=start,
        end=end,
        sources=["age_years"],
        timezone=settings.timezone,
        contact_lookback=timedelta(days=1),
    )

    assert [int(raw) for raw, _counts in grouped["age_years"]] == [18]


def test_age_in_whole_years_around_birthdays_and_leap_days(session: Session) -> None:
    # Fixed dates, no clock: the same whole years on both backends, 29 February included.
    cases = [
        (date(1960, 2, 29), date(2023, 2, 28), 62),
        (date(1960, 2, 29), date(2023, 3, 1), 63),
        (date(1960, 2, 29), date(2024, 2, 29), 64),
        (date(1990, 3, 26), date(2023, 3, 25), 32),
        (date(1990, 3, 26), date(2023, 3, 26), 33),
        (date(2000, 12, 31), date(2001, 1, 1), 0),
        (date(2000, 1, 1), date(2000, 1, 1), 0),
    ]
    for born, on, expected in cases:
        patient = create_patient(session, birth_date=born)
        age = repository.age_in_years(session, "Europe/London", on=literal(on, Date))
        found = session.execute(select(age).where(Patient.id == patient.id)).scalar_one()
        assert (born, on, int(found)) == (born, on, expected)
