"""Per-group recalibration: evaluated on the test period at every training, applied only when
switched on and shown to help."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.patients.tables import Patient
from app.risk import service
from app.risk.recalibration import apply_offsets, evaluate, fit_offsets
from app.settings import Settings
from tests.risk.helpers import NOW, create_trust, risk_settings

BLACK = "Black or Black British"


def _period(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores calibrated for White patients; Black patients miss twice as often as predicted."""
    labels = rng.choice(np.array(["White", BLACK], dtype=object), rows, p=[0.8, 0.2])
    p = rng.uniform(0.02, 0.2, rows)
    truth = np.where(labels == BLACK, np.minimum(2 * p, 0.9), p)
    return (rng.random(rows) < truth).astype(float), p, labels


def test_offsets_raise_an_under_predicted_group_and_the_evaluation_says_it_helps() -> None:
    rng = np.random.default_rng(0)
    calibration, test = _period(rng, 20_000), _period(rng, 20_000)

    offsets = fit_offsets(*calibration)
    evaluation = evaluate("ethnic_group", calibration, test)

    assert offsets[BLACK] > 0.4
    assert abs(offsets["White"]) < 0.1
    y, p, labels = test
    after = apply_offsets(p, labels, offsets)
    black = labels == BLACK
    assert abs(y[black].mean() - after[black].mean()) < abs(y[black].mean() - p[black].mean())
    assert evaluation["helps"]
    assert (
        evaluation["test_after"]["mean_absolute_gap"]
        < evaluation["test_before"]["mean_absolute_gap"]
    )


def test_on_calibrated_groups_recalibration_does_not_help() -> None:
    rng = np.random.default_rng(1)
    labels = rng.choice(np.array(["White", BLACK], dtype=object), 20_000)
    p = rng.uniform(0.02, 0.2, 20_000)

    def period() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (rng.random(20_000) < p).astype(float), p, labels

    evaluation = evaluate("ethnic_group", period(), period())

    assert all(abs(v) < 0.1 for v in evaluation["offsets_from_calibration_period"].values())
    assert evaluation["test_after"]["mean_absolute_gap"] == pytest.approx(
        evaluation["test_before"]["mean_absolute_gap"], abs=0.005
    )


@pytest.mark.slow
def test_training_shows_the_evaluation_and_applies_offsets_only_when_switched_on(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=500, past=4_000, future=200)
    # Black patients miss far more than their recorded features say (ethnicity is not an input).
    black = select(Patient.id).where(Patient.ethnic_category.in_(["M", "N", "P"]))
    attended = session.scalars(
        select(Appointment.id)
        .where(Appointment.patient_id.in_(black), Appointment.attendance_code.in_(["5", "6"]))
        .order_by(Appointment.id)
    ).all()
    session.execute(
        update(Appointment).where(Appointment.id.in_(attended[::4])).values(attendance_code="3")
    )
    session.flush()

    off = service.train_model(session, risk_settings(settings), now=NOW, activate=False)
    on = service.train_model(
        session, risk_settings(settings, risk_group_recalibration=True), now=NOW
    )

    default = off.card["group_recalibration"]
    assert default["applied"] is False
    assert default["verdict"].startswith("Per-group recalibration by ethnic group is off")
    switched = on.card["group_recalibration"]
    assert switched["helps"] is True
    assert switched["applied"] is True
    assert "is on and applied" in switched["verdict"]
    assert switched["applied_offsets"][BLACK] > 0
    artefact = service.load_model_artefact(on.model)
    assert artefact.group_offsets[BLACK] > 0
    # Scoring with the recalibrated model works end to end.
    scored = service.score_appointments(session, risk_settings(settings), now=NOW, store=False)
    assert scored.scored
    assert "Per-group recalibration" in (on.directory / "card.md").read_text()
