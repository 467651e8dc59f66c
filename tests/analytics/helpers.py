"""Small helpers that put hand-made programme records in the database for analytics tests.

The reporting period is four weeks starting on a Monday about three months before the tests'
clock (`tests.clock.TODAY`), so every figure is independent of the real date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.analytics.periods import Period
from app.appointments.tables import Appointment, Clinic
from app.patients.tables import Patient
from tests.clock import TODAY
from tests.factories import create_appointment, create_clinic, create_patient

PERIOD_START = TODAY - timedelta(weeks=11, days=TODAY.weekday())  # a Monday
PERIOD_END = PERIOD_START + timedelta(weeks=4)
PERIOD = Period(PERIOD_START, PERIOD_END)
# Before any record the helpers make: a period with no appointments at all.
EMPTY_PERIOD = Period(PERIOD_START - timedelta(weeks=100), PERIOD_START - timedelta(weeks=96))


def label(day: date) -> str:
    """A date as the reports write it: '7 Sep 2026'."""
    return f"{day:%-d %b %Y}"


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


def create_arm(
    session: Session,
    *,
    arm: str,
    attended: int,
    dnas: int,
    cancelled: int = 0,
    reached_attended: int = 0,
    reached_dnas: int = 0,
    risk: float | None = None,
    attempts_per_call: int = 1,
    queue_date: date | None = None,
    **patient_fields: Any,
) -> list[Appointment]:
    """Assigned appointments of one arm with known outcomes.

    `reached_attended` and `reached_dnas` of the attended and DNA appointments (call arm only)
    get a completed call; the rest of the call arm gets an unanswered, unreachable call.
    """
    from app.calls.tables import Call, CallAssignment, CallAttempt

    queue_date = queue_date or PERIOD_START
    appointments = create_outcomes(
        session, attended=attended, dnas=dnas, cancelled=cancelled, **patient_fields
    )
    reached_ids = {a.id for a in appointments[:reached_attended]} | {
        a.id for a in appointments[attended : attended + reached_dnas]
    }
    for appointment in appointments:
        call_id = None
        if arm == "call":
            reached = appointment.id in reached_ids
            call = Call(
                patient_id=appointment.patient_id,
                queue_date=queue_date,
                priority=1.0,
                status="completed" if reached else "unreachable",
                attempts=attempts_per_call,
                documents_shown=[],
            )
            session.add(call)
            session.flush()
            call_id = call.id
            for number in range(1, attempts_per_call + 1):
                last = number == attempts_per_call
                session.add(
                    CallAttempt(
                        call_id=call.id,
                        number=number,
                        result="answered" if reached and last else "no_answer",
                        channel="mobile",
                        attempted_by=1,
                    )
                )
        session.add(
            CallAssignment(
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                queue_date=queue_date,
                arm=arm,
                reasons=["core20"],
                risk=risk,
                band=None if risk is None else "high",
                priority=1.0,
                call_id=call_id,
            )
        )
    session.flush()
    return appointments
