"""Training: temporal split, calibration, baselines, fairness audit, artefacts and cards."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.errors import InvalidInputError
from app.risk import service
from app.risk.artefacts import sha256_of
from app.risk.tables import RiskModel
from app.settings import Settings
from tests.factories import create_appointment, create_clinic, create_patient
from tests.risk.helpers import NOW, create_trust, risk_settings


@pytest.mark.slow
def test_training_registers_an_active_model_with_a_complete_card(
    session: Session, settings: Settings
) -> None:
    settings = risk_settings(settings)
    counts = create_trust(session)

    result = service.train_model(session, settings, now=NOW, as_of=NOW)

    model = result.model
    assert model.active
    assert (result.directory / "model.skops").is_file()
    assert sha256_of(result.directory / "model.skops") == model.artefact_sha256
    card = json.loads((result.directory / "card.json").read_text())
    assert card["version"] == model.version == model.card["version"]
    assert card["ethnicity_is_input"] is False
    assert card["rows"]["excluded_navigator_called"] == counts["called"]
    assert (
        card["rows"]["fit"] + card["rows"]["calibration"] + card["rows"]["test"]
        == (card["rows"]["eligible"])
    )
    assert card["data_window"]["calibration_from"] < card["data_window"]["test_from"]
    for metric in ("auroc", "average_precision", "brier", "calibration_slope"):
        assert card["metrics"][metric] is not None
    assert set(card["metrics"]["capture"]) == {"top_10", "top_20", "top_30"}
    assert len(card["metrics"]["reliability"]) == 10
    assert set(card["baselines"]) == {
        "prior_dna_rate",
        "logistic_regression",
        "default_gradient_boosting",
    }
    assert card["selection"]["chosen"] in card["selection"]["grid"]
    assert all("mean_auroc" in row for row in card["selection"]["grid"].values())
    assert card["hyperparameters"]["chosen"] == card["selection"]["chosen"]
    assert card["active_scorer"] in {"model", "logistic_regression", "prior_dna_rate"}
    assert card["verdicts"]
    assert card["metrics"]["callable"]["rows"] == card["rows"]["test_callable"]
    assert 0 <= card["metrics"]["capture_at_capacity"]["capture"] <= 1
    assert "inflate AUROC" in card["callable_note"]
    assert card["rows"]["deployed_fit"] > card["rows"]["fit"]
    assert "need" in card["calibration_by_group"]["attributes"]
    white_calibration = next(
        g
        for g in card["calibration_by_group"]["attributes"]["ethnic_group"]["groups"]
        if g["group"] == "White"
    )
    low, high = white_calibration["observed_minus_predicted_ci"]
    assert low <= high
    assert set(card["fairness"]) == {"ethnic_group", "imd_quintile", "core20", "age_band", "sex"}
    ethnic_groups = {row["group"] for row in card["fairness"]["ethnic_group"]["groups"]}
    assert {"White", "Not stated", "Not known"} <= ethnic_groups
    white = next(g for g in card["fairness"]["ethnic_group"]["groups"] if g["group"] == "White")
    low, high = white["ci95"]["auroc"]
    assert low <= white["auroc"] <= high
    assert "overbooking" in " ".join(card["forbidden_uses"])
    assert "navigator call" in card["contacted_appointments"]
    markdown = (result.directory / "card.md").read_text()
    assert "Forbidden uses" in markdown
    assert "not an input" in markdown


def test_ethnicity_can_be_made_an_input(session: Session, settings: Settings) -> None:
    settings = risk_settings(settings, risk_include_ethnicity=True)
    create_trust(session, patients=300, past=2_500, future=0)
    result = service.train_model(session, settings, now=NOW, as_of=NOW)
    assert result.card["ethnicity_is_input"] is True
    assert "ethnic_group" in result.card["features"]


def test_outcomes_known_only_after_as_of_are_not_trained_on(
    session: Session, settings: Settings
) -> None:
    settings = risk_settings(settings)
    create_trust(session, patients=300, past=2_500, future=0)
    as_of = NOW - timedelta(weeks=8)
    result = service.train_model(session, settings, now=NOW, as_of=as_of)
    assert result.card["data_window"]["last_start"] < as_of.isoformat()


def test_too_few_rows_is_refused_and_nothing_is_registered(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=50, past=200, future=0)
    with pytest.raises(InvalidInputError, match="training needs at least"):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert session.scalar(select(func.count()).select_from(RiskModel)) == 0
    assert not settings.models_dir.exists() or not any(settings.models_dir.iterdir())


def test_a_single_class_is_refused(session: Session, settings: Settings) -> None:
    patient = create_patient(session)
    clinic = create_clinic(session)
    for day in range(40):
        start = NOW - timedelta(days=day + 1)
        create_appointment(
            session,
            patient=patient,
            clinic=clinic,
            start_at=start,
            attendance_code="5",
            outcome_recorded_at=start,
        )
    tiny = risk_settings(settings, risk_min_training_rows=10, risk_min_training_dnas=1)
    with pytest.raises(InvalidInputError, match="were DNAs"):
        service.train_model(session, tiny, now=NOW, as_of=NOW)
    assert session.scalar(select(func.count()).select_from(RiskModel)) == 0


def test_every_appointment_missed_is_refused(session: Session, settings: Settings) -> None:
    create_trust(session, patients=100, past=800, future=0)
    session.execute(update(Appointment).values(attendance_code="3"))
    with pytest.raises(InvalidInputError, match=r"were DNAs; training needs .* some attendances"):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert session.scalar(select(func.count()).select_from(RiskModel)) == 0


def test_a_latest_period_without_dnas_is_refused_naming_the_period(
    session: Session, settings: Settings
) -> None:
    create_trust(session, patients=200, past=2_000, future=0)
    recent = NOW - timedelta(weeks=12)  # the test period is about the latest 10 weeks
    session.execute(
        update(Appointment)
        .where(Appointment.start_at >= recent, Appointment.attendance_code.in_(["3", "7"]))
        .values(attendance_code="5")
    )
    with pytest.raises(
        InvalidInputError, match=r"the test period \(appointments from .* has 0 DNAs"
    ):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert session.scalar(select(func.count()).select_from(RiskModel)) == 0
