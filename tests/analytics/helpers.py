"""Small helpers that put hand-made programme records in the database for analytics tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.patients.tables import Patient
from tests.factories import create_appointment, create_clinic, create_patient

PERIOD_START = date(2026, 9, 7)  # a Monday
PERIOD_END = date(2026, 10, 5)


def day_in_period(offset_days: int = 0, hour: int = 10) -> datetime:
    start = datetime.combine(PERIOD_START, datetime.min.time(), tzinfo=UTC)
    return start + timedelta(days=offset_days, hours=hour)


def create_outcomes(
    session: Session,
    *,
    attended: int,
    dnas: int,
    cancelled: int = 0,
    clinic: Clinic | None = None,
    patient: Patient | None = None,
    start_at: datetime | None = None,
    **patient_fields: object,
) -> list[Appointment]:
    """Appointments with known outcomes; each gets its own patient unless one is given."""
    clinic = clinic or create_clinic(session)
    appointments = []
    codes = ["5"] * attended + ["3"] * dnas + ["2"] * cancelled
    for index, code in enumerate(codes):
        owner = patient or create_patient(session, **patient_fields)
        at = start_at or day_in_period(index % 25)
        appointments.append(
            create_appointment(
                session,
                patient=owner,
                clinic=clinic,
                start_at=at,
                attendance_code=code,
                outcome_recorded_at=at,
            )
        )
    return appointments
