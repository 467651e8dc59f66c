"""The outcome mix counts a rebooking once the PAS confirms it, and how many slots freed by
a navigator's call were refilled: another patient booked into the same clinic session after
the PAS cancelled the original."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.analytics import service
from app.appointments.tables import Appointment
from app.bookings.tables import BookingRequest, RequestKind, RequestStatus
from app.settings import Settings
from tests.analytics.helpers import PERIOD, create_arm, day_in_period
from tests.factories import create_appointment, create_patient


def _request(
    session: Session, appointment: Appointment, kind: RequestKind, status: RequestStatus
) -> None:
    requested_at = appointment.start_at - timedelta(days=10)
    session.add(
        BookingRequest(
            kind=kind,
            status=status,
            patient_id=appointment.patient_id,
            appointment_id=appointment.id,
            requested_at=requested_at,
            closed_at=requested_at + timedelta(days=1)
            if status == RequestStatus.CONFIRMED
            else None,
        )
    )


def _cancelled_in_pas(appointment: Appointment) -> None:
    appointment.attendance_code = "2"
    appointment.outcome_recorded_at = appointment.start_at - timedelta(days=9)


def test_rebookings_count_when_the_pas_confirms_them_and_refilled_slots_are_reported(
    session: Session, settings: Settings
) -> None:
    appointments = create_arm(session, arm="call", attended=12, dnas=0, reached_attended=12)
    refilled, freed, waiting = appointments[0], appointments[1], appointments[2]
    for appointment in (refilled, freed):
        _cancelled_in_pas(appointment)
    _request(session, refilled, RequestKind.REBOOK, RequestStatus.CONFIRMED)
    _request(session, freed, RequestKind.CANCEL, RequestStatus.CONFIRMED)
    _request(session, waiting, RequestKind.REBOOK, RequestStatus.OPEN)
    assert refilled.outcome_recorded_at is not None
    # Another patient booked into the refilled slot's session after the cancellation; one
    # booked into the other session before its cancellation does not count.
    create_appointment(
        session,
        patient=create_patient(session),
        clinic_id=refilled.clinic_id,
        start_at=refilled.start_at + timedelta(minutes=30),
        booked_at=refilled.outcome_recorded_at + timedelta(hours=2),
    )
    create_appointment(
        session,
        patient=create_patient(session),
        clinic_id=freed.clinic_id,
        start_at=freed.start_at + timedelta(minutes=30),
        booked_at=day_in_period(-60),
    )
    session.flush()

    section = service.outcome_mix(session, settings, PERIOD)

    summary = next(t for t in section.tables if t.slug == "outcome-mix")
    counts = {row["measure"]: row["count"] for row in summary.rows}
    assert counts["Rebookings confirmed by the PAS"] == 1  # the open request is not counted
    assert counts["Freed slots refilled (same clinic session)"] == 1
