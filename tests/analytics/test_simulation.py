"""The demo's programme history: simulated through the real services on a synthetic trust,
and analysed by the same code as the dashboard. With a known true effect of a reached call
the reported 95% interval of avoided DNAs covers the truth; with no effect it covers zero.

Sizes: 5,000 synthetic patients and six simulated weeks give about 300 appointments with an
outcome in each arm with a 50% hold-out, running in seconds. At that size the interval of
the model's default effect (relative risk 0.70, about 7 DNAs avoided) is wide and includes
zero too, so a third case with a strong effect (0.30) checks that the method also detects an
effect. The seeds are fixed, so each check is deterministic on each backend.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.analytics import service
from app.analytics.periods import Period
from app.analytics.simulation import NO_EFFECT_BEHAVIOUR, NavigatorBehaviour, simulate_programme
from app.appointments.tables import Appointment
from app.bookings.tables import BookingRequest
from app.db.session import Database
from app.imports.service import import_appointments, import_patients
from app.settings import Settings
from app.synth.service import write_trust
from tests.clock import CALENDAR, TEST_NOW, TODAY

WEEKS = 6


def _trust(database: Database, settings: Settings, folder: Path) -> None:
    settings.calls_holdout_share = 0.5
    settings.calls_navigators_on_duty = 3
    settings.calls_per_navigator_per_day = 60
    write_trust(folder, patients=5000, weeks_history=WEEKS + 1, weeks_ahead=2, seed=3, today=TODAY)
    import_patients(database, folder / "patients.csv", now=TEST_NOW)
    import_appointments(database, folder / "appointments.csv", now=TEST_NOW)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("relative_risk", "behaviour"),
    [
        pytest.param(0.70, NavigatorBehaviour(rebooked=0.0), id="known-effect"),
        pytest.param(0.30, NavigatorBehaviour(rebooked=0.0), id="strong-effect"),
        pytest.param(1.0, NO_EFFECT_BEHAVIOUR, id="no-effect"),
    ],
)
def test_reported_interval_covers_the_true_avoided_dnas(
    database: Database,
    settings: Settings,
    tmp_path: Path,
    relative_risk: float,
    behaviour: NavigatorBehaviour,
) -> None:
    _trust(database, settings, tmp_path)

    summary = simulate_programme(
        database,
        settings,
        weeks=WEEKS,
        today=TODAY,
        seed=11,
        call_reached_relative_risk=relative_risk,
        behaviour=behaviour,
        navigator_user_ids=(1, 2, 3),
    )
    with database.unit_of_work() as session:
        report = service.impact(session, settings, Period(summary.first_day, TODAY))

    estimate = report.estimate
    # The figures come from the records the services wrote.
    # (calls that cancelled an appointment add call-arm appointments with no attendance).
    assert estimate.call_arm.appointments >= summary.per_arm["call"] > 200
    assert estimate.holdout.appointments == summary.per_arm["holdout"]
    assert estimate.calls_made > 100
    assert report.per_protocol.reached > 100
    if relative_risk == 1.0:
        assert summary.true_avoided_dnas == pytest.approx(0.0)
    else:
        assert summary.true_avoided_dnas > 5
    assert estimate.avoided_ci_low <= summary.true_avoided_dnas <= estimate.avoided_ci_high
    if relative_risk <= 0.3:
        # A strong effect is detected at this size: the interval excludes zero.
        assert estimate.avoided_ci_low > 0


def test_simulating_again_changes_nothing(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    _trust(database, settings, tmp_path)
    first = simulate_programme(database, settings, weeks=1, today=TODAY, navigator_user_ids=(1,))
    again = simulate_programme(database, settings, weeks=1, today=TODAY, navigator_user_ids=(1,))
    assert first.skipped is None
    assert first.appointments_drawn > 0
    assert again.skipped is not None
    assert "already holds programme history" in again.skipped
    assert again.appointments_drawn == 0


@pytest.mark.slow
def test_a_programme_across_the_clock_change_rebooks_at_the_same_local_time(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    # The demo on 2 to 4 December 2026 failed: its history spans 25 October, and a rebooking
    # two weeks on at the same UTC time moved an 08:30 clinic to 07:30, outside clinic hours.
    today = date(2026, 10, 30)
    now = CALENDAR.at(today, time(6))
    settings.calls_holdout_share = 0.2
    write_trust(tmp_path, patients=1500, weeks_history=3, weeks_ahead=3, seed=5, today=today)
    import_patients(database, tmp_path / "patients.csv", now=now)
    import_appointments(database, tmp_path / "appointments.csv", now=now)

    simulate_programme(
        database,
        settings,
        weeks=2,
        today=today,
        seed=4,
        behaviour=NavigatorBehaviour(cancelled=0.0, rebooked=1.0),
        navigator_user_ids=(1,),
    )

    with database.unit_of_work() as session:
        rows = session.execute(
            select(Appointment.start_at, BookingRequest.preferred_start_at).join(
                BookingRequest, BookingRequest.appointment_id == Appointment.id
            )
        ).all()
    pairs = [(start, wanted) for start, wanted in rows if wanted is not None]
    across = [
        (start, wanted)
        for start, wanted in pairs
        if CALENDAR.local(start).utcoffset() != CALENDAR.local(wanted).utcoffset()
    ]
    assert len(pairs) == len(rows) > 0  # every rebooking asked for a time
    assert across, "some rebookings should cross the clock change"
    for start, wanted in pairs:
        assert CALENDAR.local(wanted).time() == CALENDAR.local(start).time()
        assert (CALENDAR.local(wanted).date() - CALENDAR.local(start).date()).days == 14
