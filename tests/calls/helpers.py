"""Small helpers for the calls tests: a fixed queue day, risk scores, eligible appointments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.clock import Clock
from app.patients.tables import Patient
from app.risk.tables import RiskScore
from app.settings import Settings
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment, create_patient


def weekday_on_or_after(day: date, weekday: int) -> date:
    """The first day from `day` on that falls on `weekday` (Monday 0 ... Sunday 6)."""
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time on a local day, as the UTC moment it is (summer time included)."""
    return CALENDAR.at(day, time(hour, minute))


# The queue day of the service-level tests: the first Tuesday from the test clock's day, so
# the next day is a working day and Friday is three days on, whatever the test moment is.
QUEUE_DAY = weekday_on_or_after(TODAY, 1)
MORNING = local(QUEUE_DAY, 9)


def working_day_ahead(clock: Clock, days: int) -> date:
    """The first working day (Monday to Friday) at least `days` after the clock's local day."""
    day = CALENDAR.today(clock.now()) + timedelta(days=days)
    while not CALENDAR.is_working_day(day):
        day += timedelta(days=1)
    return day


def calls_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"calls_holdout_share": 0.0}
    values.update(overrides)
    return settings.model_copy(update=values)


def in_window(days_ahead: int = 7, hour: int = 10) -> datetime:
    """A local time `days_ahead` days after the queue day (7: inside the default window)."""
    return local(QUEUE_DAY + timedelta(days=days_ahead), hour)


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
