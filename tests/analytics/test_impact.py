"""Impact against the randomised hold-out on a small hand-made programme with known answers,
and the messages given instead of a number when no honest estimate is possible."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.analytics import repository, service
from app.analytics.periods import Period
from app.analytics.stats import newcombe_difference_interval
from app.errors import NotReadyError
from app.settings import Settings
from tests.analytics.helpers import PERIOD, PERIOD_START, create_arm, label


def _programme(session: Session) -> None:
    # Call arm: 100 appointments with an outcome, 5 DNAs; 40 reached (1 DNA among them),
    # each at a model risk of 0.1. Two attempts per call. Hold-out: 100, 12 DNAs.
    create_arm(
        session,
        arm="call",
        attended=95,
        dnas=5,
        reached_attended=39,
        reached_dnas=1,
        risk=0.1,
        attempts_per_call=2,
    )
    create_arm(session, arm="holdout", attended=88, dnas=12)


def test_avoided_dnas_savings_and_interval_from_a_known_programme(
    session: Session, settings: Settings
) -> None:
    _programme(session)
    settings.analytics_navigator_hourly_cost = 30.0
    settings.analytics_minutes_per_call = 10.0

    report = service.impact(session, settings, PERIOD)

    estimate = report.estimate
    assert estimate.call_arm.appointments == 100
    assert estimate.call_arm.dna_rate == pytest.approx(0.05)
    assert estimate.holdout.dna_rate == pytest.approx(0.12)
    # (0.12 - 0.05) x 100 call-arm appointments = 7 avoided DNAs.
    assert estimate.avoided_dnas == pytest.approx(7.0)
    interval = newcombe_difference_interval(12, 100, 5, 100)
    assert estimate.avoided_ci_low == pytest.approx(interval.low * 100)
    assert estimate.avoided_ci_high == pytest.approx(interval.high * 100)
    assert estimate.avoided_ci_low < 7.0 < estimate.avoided_ci_high
    # £100-£160 per DNA.
    assert (estimate.savings_low, estimate.savings_high) == pytest.approx((700.0, 1120.0))
    # 200 attempts x 10 minutes at £30 an hour = £1,000 of navigator time.
    assert estimate.attempts == 200
    assert estimate.calls_made == 100
    assert estimate.navigator_cost == pytest.approx(1000.0)
    assert estimate.net_savings_low == pytest.approx(-300.0)
    assert estimate.net_savings_high == pytest.approx(120.0)
    assert "Newcombe" in estimate.method
    # Per protocol: 1 DNA in 40 reached, labelled as not randomised.
    assert report.per_protocol.reached == 40
    assert report.per_protocol.reached_dna_rate == pytest.approx(0.025)
    assert "not randomised" in report.per_protocol.label
    # Model-based: 40 x 0.1 = 4 expected, 1 observed.
    assert report.model_expected is not None
    assert report.model_expected.expected_dnas == pytest.approx(4.0)
    assert report.model_expected.observed_dnas == 1
    assert "Model-based" in report.model_expected.label


def test_impact_by_group_suppresses_groups_too_small_to_compare(
    session: Session, settings: Settings
) -> None:
    _programme(session)
    create_arm(session, arm="call", attended=20, dnas=2, ethnic_category="N")
    create_arm(session, arm="holdout", attended=4, dnas=1, ethnic_category="N")

    report = service.impact(session, settings, PERIOD)

    table = next(t for t in report.tables if t.slug == "impact-by-ethnic-group")
    rows = {row["group"]: row for row in table.rows}
    assert rows["White"]["avoided_dnas"] == pytest.approx(7.0)
    black = rows["Black or Black British"]
    assert black["avoided_dnas"] is None
    assert "fewer than 10" in black["note"]
    over_time = next(t for t in report.tables if t.slug == "impact-over-time")
    assert sum(row["call_appointments"] or 0 for row in over_time.rows) == 122


def test_no_programme_yet_is_a_message(session: Session, settings: Settings) -> None:
    with pytest.raises(NotReadyError, match="has not assigned any appointments"):
        service.impact(session, settings, PERIOD)


def test_a_period_before_the_programme_started_is_a_message(
    session: Session, settings: Settings
) -> None:
    _programme(session)
    before = Period(PERIOD_START - timedelta(weeks=12), PERIOD_START - timedelta(weeks=8))
    with pytest.raises(
        NotReadyError, match=f"ends before the programme started on {label(PERIOD_START)}"
    ):
        service.impact(session, settings, before)


def test_a_zero_hold_out_gives_no_invented_estimate(session: Session, settings: Settings) -> None:
    create_arm(session, arm="call", attended=90, dnas=10)
    with pytest.raises(NotReadyError, match="hold-out share was zero"):
        service.impact(session, settings, PERIOD)


def test_arms_too_small_to_compare_are_a_message(session: Session, settings: Settings) -> None:
    create_arm(session, arm="call", attended=40, dnas=4)
    create_arm(session, arm="holdout", attended=5, dnas=1)
    with pytest.raises(NotReadyError, match="Too few appointments to compare"):
        service.impact(session, settings, PERIOD)


def test_dashboard_shows_the_reason_when_there_is_no_impact_estimate(
    session: Session, settings: Settings
) -> None:
    create_arm(session, arm="call", attended=90, dnas=10)
    board = service.dashboard(session, settings, PERIOD)
    assert board.impact is None
    assert board.impact_message is not None
    assert "hold-out share was zero" in board.impact_message
    assert board.dna_rates.available


def test_the_patient_sources_are_those_read_from_the_patients_table(session: Session) -> None:
    # Arm counts leave the patients join out when no grouping needs it.
    columns = repository.patient_columns(session, "Europe/London")
    assert set(columns) == repository.PATIENT_SOURCES
