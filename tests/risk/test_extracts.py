"""Training and scoring hold on the extracts trusts really send, and bad ones are refused.

Each variant is a small synthetic trust (a few thousand appointments) so the matrix stays
fast; dates are relative to the tests' clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.errors import InvalidInputError
from app.risk import service
from app.risk.tables import RiskModel, RiskScore
from app.settings import Settings
from tests.risk.helpers import NOW, risk_settings
from tests.risk.synthetic import Variant, generate_trust, insert_trust

VARIANTS = {
    "only required columns": Variant(specialty=False, first_attendance=False, deprivation=False),
    "every optional column empty": Variant(
        specialty=False, first_attendance=False, deprivation=False, optional_patient_fields=False
    ),
    "one clinic": Variant(clinics=1),
    "300 clinics": Variant(clinics=300),
    "no specialty": Variant(specialty=False),
    "no LSOA": Variant(deprivation=False),
    "3% DNA": Variant(dna_logit_shift=-0.9),
    "30% DNA": Variant(dna_logit_shift=1.9),
    "PAS codes change mid-year": Variant(pas_code_change=True),
}


def _models(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RiskModel)) or 0


def _train_and_score(
    session: Session, settings: Settings, variant: Variant, *, weeks_history: int = 52
) -> dict[str, Any]:
    trust = generate_trust(
        patients=400,
        past=3_000,
        future=200,
        now=NOW,
        weeks_history=weeks_history,
        seed=3,
        variant=variant,
    )
    insert_trust(session, trust)
    result = service.train_model(session, settings, now=NOW, as_of=NOW)
    scored = service.score_appointments(session, settings, now=NOW)
    assert scored.scored
    assert all(0 < row.risk < 1 for row in scored.scored)
    assert {row.band for row in scored.scored} <= {"low", "medium", "high"}
    return result.card


@pytest.mark.parametrize("name", list(VARIANTS))
def test_training_and_scoring_succeed_on_each_extract(
    session: Session, settings: Settings, name: str
) -> None:
    card = _train_and_score(session, risk_settings(settings), VARIANTS[name])
    assert card["metrics"]["auroc"] is not None
    assert set(card["used_features"]) <= set(card["features"])
    assert not set(card["used_features"]) & set(card["dropped_features"])


def test_six_weeks_of_history_is_enough(session: Session, settings: Settings) -> None:
    card = _train_and_score(session, risk_settings(settings), Variant(), weeks_history=6)
    assert card["data_window"]["first_start"] >= (NOW - timedelta(weeks=6, days=1)).isoformat()


def test_features_missing_from_the_extract_are_dropped_and_the_card_says_why(
    session: Session, settings: Settings
) -> None:
    card = _train_and_score(session, risk_settings(settings), VARIANTS["only required columns"])
    dropped = card["dropped_features"]
    assert {"specialty", "first_attendance", "imd_decile"} <= set(dropped)
    assert dropped["specialty"] == "missing for every appointment in the extract"
    assert "specialty" not in card["used_features"]
    assert "lead_time_days" in card["used_features"]


def test_a_column_of_one_value_is_dropped(session: Session, settings: Settings) -> None:
    card = _train_and_score(session, risk_settings(settings), VARIANTS["one clinic"])
    assert "the same value" in card["dropped_features"]["specialty"]


def test_an_extract_without_dnas_is_refused_and_nothing_is_registered(
    session: Session, settings: Settings
) -> None:
    insert_trust(session, generate_trust(patients=200, past=1_500, future=0, now=NOW, seed=1))
    session.execute(update(Appointment).where(Appointment.attendance_code == "3").values(
        attendance_code="5"
    ))  # fmt: skip
    session.execute(update(Appointment).where(Appointment.attendance_code == "7").values(
        attendance_code="5"
    ))  # fmt: skip
    with pytest.raises(InvalidInputError, match="were DNAs"):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert _models(session) == 0


def test_dates_out_of_order_are_refused(session: Session, settings: Settings) -> None:
    insert_trust(session, generate_trust(patients=200, past=1_500, future=0, now=NOW, seed=1))
    # booked_at and start_at swapped: every booking after its appointment.
    session.execute(
        update(Appointment).values(booked_at=Appointment.start_at, start_at=Appointment.booked_at)
    )
    with pytest.raises(InvalidInputError, match="booked_at is after start_at"):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert _models(session) == 0


def test_every_appointment_at_one_moment_is_refused(session: Session, settings: Settings) -> None:
    insert_trust(session, generate_trust(patients=200, past=1_500, future=0, now=NOW, seed=1))
    moment = NOW - timedelta(days=3)
    session.execute(update(Appointment).values(start_at=moment, outcome_recorded_at=moment))
    session.execute(update(Appointment).values(booked_at=moment - timedelta(days=20)))
    with pytest.raises(InvalidInputError, match="start_at has the same value"):
        service.train_model(session, risk_settings(settings), now=NOW, as_of=NOW)
    assert _models(session) == 0


def test_a_clock_before_the_data_is_refused(session: Session, settings: Settings) -> None:
    insert_trust(session, generate_trust(patients=200, past=1_500, future=0, now=NOW, seed=1))
    early = NOW - timedelta(days=2 * 365)
    with pytest.raises(InvalidInputError, match="before the first appointment in the data"):
        service.train_model(session, risk_settings(settings), now=early)
    assert _models(session) == 0
    assert session.scalar(select(func.count()).select_from(RiskScore)) == 0


def test_default_bands_follow_the_day_s_capacity(session: Session, settings: Settings) -> None:
    # Two navigators with two calls each: four of the day's callable appointments are high.
    settings = risk_settings(settings, calls_navigators_on_duty=2, calls_per_navigator_per_day=2)
    card = _train_and_score(session, settings, Variant())
    bands = card["bands"]
    assert bands["method"] == "capacity"
    assert bands["medium"] <= bands["high"]
    assert bands["high_share"] == pytest.approx(min(4 / bands["callable_per_day"], 1.0))
    fixed = _fixed_bands(session, settings)
    assert fixed == {"method": "fixed", "medium": 0.08, "high": 0.15, "capacity_per_day": 4}


def _fixed_bands(session: Session, settings: Settings) -> dict[str, Any]:
    settings = settings.model_copy(update={"risk_band_method": "fixed"})
    result = service.train_model(session, settings, now=NOW, as_of=NOW)
    scored = service.score_appointments(session, settings, now=NOW)
    risks = np.array([row.risk for row in scored.scored])
    bands = np.array([row.band for row in scored.scored])
    assert set(bands[risks >= 0.15]) <= {"high"}
    return dict(result.card["bands"])
