"""Small helpers for the calls tests: a fixed queue day, risk scores, eligible appointments."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.patients.tables import Patient
from app.risk.tables import RiskScore
from app.settings import Settings
from tests.factories import create_appointment, create_patient

# A Tuesday in winter: London time is UTC, so local and UTC clock times agree.
QUEUE_DAY = date(2026, 12, 1)
MORNING = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def calls_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"calls_holdout_share": 0.0}
    values.update(overrides)
    return settings.model_copy(update=values)


def in_window(days_ahead: int = 7, hour: int = 10) -> datetime:
    return datetime.combine(QUEUE_DAY + timedelta(days=days_ahead), time(hour), UTC)


def create_risk_score(
    session: Session, appointment: Appointment, *, risk: float, band: str | None = None
) -> RiskScore:
    band = band or ("high" if risk >= 0.3 else "medium" if risk >= 0.1 else "low")
    score = RiskScore(
        appointment_id=appointment.id,
        model_version="test-model-1",
        risk=risk,
        band=band,
        reasons=["Missed an appointment before"],
    )
    session.add(score)
    session.flush()
    return score


def create_eligible_appointment(
    session: Session,
    *,
    patient: Patient | None = None,
    clinic: Clinic | None = None,
    risk: float = 0.5,
    start_at: datetime | None = None,
    **patient_overrides: Any,
) -> Appointment:
    """A booked appointment in the default window whose patient is eligible (high risk)."""
    patient = patient or create_patient(session, **patient_overrides)
    appointment = create_appointment(
        session, patient=patient, clinic=clinic, start_at=start_at or in_window()
    )
    create_risk_score(session, appointment, risk=risk)
    return appointment
