"""Drift since training and the monthly review: every month measured, every decision recorded,
a challenger made active only when it is not worse than the champion."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.analytics.landing import model_alerts
from app.appointments.tables import Appointment
from app.risk import repository, service
from app.risk.drift import monthly_drift
from app.risk.review import may_be_worse, retrain_and_decide
from app.risk.tables import RiskModel, RiskModelDecision
from app.settings import Settings
from tests.risk.helpers import NOW, create_trust, risk_settings

TRAINED_BEFORE = NOW - timedelta(weeks=10)


def _champion(session: Session, settings: Settings) -> RiskModel:
    result = service.train_model(session, settings, now=TRAINED_BEFORE, as_of=TRAINED_BEFORE)
    return result.model


def _miss_more_after(session: Session, moment: object, every: int) -> None:
    """Turn every `every`-th attended appointment that started after `moment` into a DNA."""
    ids = session.scalars(
        select(Appointment.id)
        .where(Appointment.start_at >= moment, Appointment.attendance_code.in_(["5", "6"]))
        .order_by(Appointment.id)
    ).all()
    session.execute(
        update(Appointment).where(Appointment.id.in_(ids[::every])).values(attendance_code="3")
    )
    session.flush()


@pytest.mark.slow
def test_drift_is_measured_each_month_since_training_and_alerts_when_calibration_moves(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=400, past=3_000, future=100)
    risky = risk_settings(settings)
    champion = _champion(session, risky)
    artefact = service.load_model_artefact(champion)

    steady = monthly_drift(
        repository.load_history(session), artefact, champion.card, risky, now=NOW
    )
    _miss_more_after(session, TRAINED_BEFORE, every=3)
    drifted = monthly_drift(
        repository.load_history(session), artefact, champion.card, risky, now=NOW
    )

    months = drifted["months"]
    assert [m["month"] for m in months] == sorted(m["month"] for m in months)
    assert len(months) >= 3  # ten weeks of outcomes span three or four calendar months
    assert months[-1]["partial"]
    assert sum(m["rows"] for m in months) == drifted["overall"]["rows"] > 300
    assert all(m["auroc"] is None or 0.5 < m["auroc"] < 1 for m in steady["months"])
    assert set(months[-1]["groups"]) == {
        "ethnic_group", "imd_quintile", "core20", "age_band", "sex", "need"
    }  # fmt: skip
    # A third more DNAs than before: observed far above predicted, in plain words and UK dates.
    assert not steady["alerts"]
    assert drifted["alerts"]
    assert all(m["observed_minus_predicted"] > 0.1 for m in months if m["rows"] >= 200)
    message = drifted["alerts"][-1]["message"]
    assert "under-predicted DNAs by" in message
    assert "beyond the drift limit of 2.0 points" in message
    day = risky.calendar.today(TRAINED_BEFORE)
    assert f"{day.day} {day:%B %Y}" in drifted["summary"]


@pytest.mark.slow
def test_the_review_records_drift_and_makes_a_challenger_that_is_not_worse_active(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=400, past=3_000, future=100)
    champion = _champion(session, risk_settings(settings))
    _miss_more_after(session, TRAINED_BEFORE, every=4)
    # A generous margin: this test is about what is recorded, not how close the two are.
    lenient = risk_settings(settings, risk_challenger_margin=0.5)

    decision = retrain_and_decide(session, lenient, now=NOW)

    assert decision.outcome == "promoted"
    assert decision.champion_version == champion.version
    active = repository.active_model(session)
    assert active is not None
    assert active.version == decision.challenger_version
    assert decision.active_version == active.version
    comparison = decision.comparison
    low, high = comparison["auroc_difference_ci"]
    assert low <= comparison["auroc_difference"] <= high
    assert comparison["rows"] >= 200
    assert "is not worse than" in decision.reason
    assert "95% paired interval" in decision.reason
    assert decision.drift["model_version"] == champion.version
    assert decision.drift["alerts"]
    # The drift concerned the model that was replaced: no drift alert for the new one.
    assert not any("drifted" in alert.title for alert in model_alerts(session))


@pytest.mark.slow
def test_the_review_keeps_the_champion_when_the_challenger_is_worse(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=400, past=3_000, future=100)
    risky = risk_settings(settings)
    champion = _champion(session, risky)
    _miss_more_after(session, TRAINED_BEFORE, every=4)
    # Outcomes before the champion's training shuffled afterwards within each patient (a botched
    # PAS re-import): every patient keeps as many DNAs as before, so what both models know of a
    # patient's history when scoring the new appointments is unchanged, but which of their
    # appointments was missed is now noise. A challenger trained now learns from that noise;
    # the champion learned from the real outcomes.
    rows = session.execute(
        select(Appointment.id, Appointment.patient_id, Appointment.attendance_code)
        .where(Appointment.start_at < TRAINED_BEFORE)
        .order_by(Appointment.patient_id, Appointment.id)
    ).all()
    rng = np.random.default_rng(5)
    by_patient: dict[int, list[tuple[int, str | None]]] = {}
    for appointment_id, patient_id, code in rows:
        by_patient.setdefault(patient_id, []).append((appointment_id, code))
    for appointments in by_patient.values():
        shuffled = rng.permutation(len(appointments))
        codes = [appointments[i][1] for i in shuffled]
        for (appointment_id, _code), code in zip(appointments, codes, strict=True):
            session.execute(
                update(Appointment)
                .where(Appointment.id == appointment_id)
                .values(attendance_code=code)
            )
    session.flush()

    decision = retrain_and_decide(session, risky, now=NOW)

    assert decision.outcome == "kept"
    assert "may be worse than the active model" in decision.reason
    assert decision.comparison["auroc_difference_ci"][0] < -risky.risk_challenger_margin
    active = repository.active_model(session)
    assert active is not None
    assert active.version == champion.version
    # The champion still drifts and is still active: the dashboard says so.
    assert any("drifted" in alert.title for alert in model_alerts(session))


@pytest.mark.slow
def test_too_few_new_outcomes_keep_the_champion_and_nothing_else_changes(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=300, past=2_000, future=100)
    recent = NOW - timedelta(days=2)
    champion = service.train_model(session, risk_settings(settings), now=recent, as_of=recent)

    decision = retrain_and_decide(session, risk_settings(settings), now=NOW)

    assert decision.outcome == "kept"
    assert "too few to compare" in decision.reason
    active = repository.active_model(session)
    assert active is not None
    assert active.version == champion.model.version
    # The challenger is registered (inactive) so the decision can be audited.
    assert repository.get_model(session, str(decision.challenger_version)) is not None


def test_with_too_little_data_the_review_says_so_and_registers_nothing(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=30, past=120, future=10)

    decision = retrain_and_decide(session, risk_settings(settings), now=NOW)

    assert decision.outcome == "not_trained"
    assert "No challenger could be trained: only" in decision.reason
    assert session.scalars(select(RiskModel)).all() == []
    assert session.scalars(select(RiskModelDecision)).one().reason == decision.reason
    assert decision.drift == {}


@pytest.mark.parametrize(
    ("low", "margin", "worse"),
    [
        (-0.005, 0.005, False),  # exactly at the margin: not worse, promoted
        (-0.0050001, 0.005, True),  # just beyond it: kept
        (0.01, 0.005, False),
        (-0.001, 0.0, True),  # no margin: any chance of being worse keeps the champion
        (0.0, 0.0, False),
    ],
)
def test_the_challenger_is_kept_out_only_beyond_the_margin(
    low: float, margin: float, worse: bool
) -> None:
    assert may_be_worse(low, margin) is worse
