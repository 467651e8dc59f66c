"""Rebook and cancel requests: nothing is booked by Navigator; the PAS's change closes them."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.auth.roles import Role
from app.bookings import service
from app.bookings.tables import BookingRequest, RequestStatus
from app.clock import FixedClock
from app.db.session import Database
from app.patients.tables import Patient
from app.settings import Settings
from app.sms.tables import MessageKind, SmsMessage
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment, create_clinic, create_patient


def _ask_rebook(
    session: Session,
    appointment: Appointment,
    preferred: datetime | None,
    now: datetime,
    *,
    reason: str | None = None,
) -> BookingRequest:
    """A navigator's rebooking outcome, as the calls feature records it."""
    return service.request_rebook(
        session,
        appointment=appointment,
        preferred_start_at=preferred,
        clinic=None,
        reason=reason,
        call_id=None,
        user_id=None,
        now=now,
    )


def test_a_rebooking_books_nothing_until_the_pas_brings_the_appointment(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    patient = create_patient(session)
    clinic = create_clinic(session, specialty_code="120")
    original = create_appointment(
        session, patient=patient, clinic=clinic, start_at=now + timedelta(days=7)
    )
    agreed = now + timedelta(days=14)
    request = _ask_rebook(session, original, agreed, now, reason="works Tuesdays")
    appointments = session.scalar(select(func.count(Appointment.id)))
    assert appointments == 1  # no local booking
    assert original.attendance_code == "0"  # the original stays as the PAS says
    assert service.reconcile(session, settings, now=now).rebooks_confirmed == 0
    assert request.status == RequestStatus.OPEN

    clock.advance(hours=3)
    pas_appointment = create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=agreed + timedelta(hours=2),
        booked_at=clock.now(),
    )
    result = service.reconcile(session, settings, now=clock.now())

    assert result.rebooks_confirmed == 1
    assert request.status == RequestStatus.CONFIRMED
    assert request.matched_appointment_id == pas_appointment.id
    confirmation = session.scalars(
        select(SmsMessage).where(SmsMessage.kind == MessageKind.CONFIRM_REBOOKED)
    ).one()
    assert confirmation.appointment_id == pas_appointment.id  # with the PAS's own time


def test_an_appointment_outside_the_tolerance_or_booked_before_the_request_does_not_match(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    patient = create_patient(session)
    clinic = create_clinic(session, specialty_code="330")
    original = create_appointment(
        session, patient=patient, clinic=clinic, start_at=now + timedelta(days=7)
    )
    agreed = now + timedelta(days=14)
    request = _ask_rebook(session, original, agreed, now, reason=None)
    # Booked long before the request (an appointment the patient already had).
    create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=agreed,
        booked_at=now - timedelta(days=20),
    )
    # Booked after, but weeks away from what was agreed.
    create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=agreed + timedelta(days=settings.bookings_match_tolerance_days + 3),
        booked_at=now + timedelta(hours=1),
    )
    # Booked after and in time, but another specialty.
    create_appointment(
        session,
        patient=patient,
        clinic=create_clinic(session, specialty_code="340"),
        start_at=agreed,
        booked_at=now + timedelta(hours=1),
    )
    result = service.reconcile(session, settings, now=now + timedelta(hours=2))
    assert result.rebooks_confirmed == 0
    assert request.status == RequestStatus.OPEN


def test_first_available_matches_the_earliest_new_booking_in_the_same_specialty(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    patient = create_patient(session)
    original = create_appointment(
        session,
        patient=patient,
        clinic=create_clinic(session, specialty_code="120"),
        start_at=now + timedelta(days=7),
    )
    request = _ask_rebook(session, original, None, now, reason=None)
    other_site = create_clinic(session, specialty_code="120", site="Glenfield Hospital")
    later = create_appointment(
        session,
        patient=patient,
        clinic=other_site,
        start_at=now + timedelta(days=30),
        booked_at=now + timedelta(hours=1),
    )
    earlier = create_appointment(
        session,
        patient=patient,
        clinic=other_site,
        start_at=now + timedelta(days=10),
        booked_at=now + timedelta(hours=1),
    )
    service.reconcile(session, settings, now=now + timedelta(hours=2))
    assert request.matched_appointment_id == earlier.id
    assert later.id != request.matched_appointment_id


def test_a_cancel_request_closes_when_the_pas_cancels_and_the_patient_is_told(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    original = create_appointment(session, start_at=now + timedelta(days=7))
    request = service.request_cancel(
        session, appointment=original, reason="moved away", call_id=None, user_id=None, now=now
    )
    assert original.attendance_code == "0"
    service.reconcile(session, settings, now=now)
    assert request.status == RequestStatus.OPEN

    original.attendance_code = "2"  # the PAS cancelled it; the import brought the change
    session.flush()
    result = service.reconcile(session, settings, now=now + timedelta(hours=1))
    assert result.cancellations_confirmed == 1
    assert request.status == RequestStatus.CONFIRMED
    assert (
        session.scalar(
            select(func.count(SmsMessage.id)).where(
                SmsMessage.kind == MessageKind.CONFIRM_CANCELLED
            )
        )
        == 1
    )


def test_requests_the_pas_has_not_honoured_become_one_booking_team_task(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    original = create_appointment(session, start_at=now + timedelta(days=9))
    request = _ask_rebook(session, original, None, now, reason=None)
    calendar = settings.calendar
    almost = calendar.working_day_start(
        calendar.add_working_days(
            calendar.today(now), settings.bookings_escalate_after_working_days - 1
        )
    )
    assert service.escalate_overdue(session, settings, now=almost) == 0
    due = calendar.working_day_start(
        calendar.add_working_days(
            calendar.today(now), settings.bookings_escalate_after_working_days
        )
    )
    assert service.escalate_overdue(session, settings, now=due) == 1
    assert service.escalate_overdue(session, settings, now=due + timedelta(days=1)) == 0
    assert request.status == RequestStatus.ESCALATED
    task = session.scalars(select(NavigatorTask)).one()
    assert task.kind == TaskKind.BOOKING_OVERDUE

    # A late PAS booking still closes it, and the task with it.
    pas = create_appointment(
        session,
        patient=session.get_one(Patient, original.patient_id),
        clinic=session.get_one(Clinic, original.clinic_id),
        start_at=due + timedelta(days=3),
        booked_at=due,
    )
    service.reconcile(session, settings, now=due + timedelta(hours=1))
    assert request.matched_appointment_id == pas.id
    assert task.status == TaskStatus.DONE


def test_the_worklist_page_lists_requests_and_exports_them(
    session: Session,
    database: Database,
    settings: Settings,
    app_client: TestClient,
    clock: FixedClock,
) -> None:
    now = clock.now()
    original = create_appointment(session, start_at=now + timedelta(days=7))
    request = _ask_rebook(session, original, None, now, reason="shift work")
    manager = create_user(session, Role.MANAGER)
    navigator = create_user(session, Role.NAVIGATOR)
    session.commit()

    sign_in(app_client, navigator.username)
    assert app_client.get("/bookings").status_code == 403
    sign_in(app_client, manager.username)
    page = app_client.get("/bookings")
    assert page.status_code == 200
    assert f'data-testid="request-{request.id}"' in page.text
    assert "First available" in page.text
    exported = app_client.get("/bookings.csv")
    assert exported.status_code == 200
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("request_id,kind,status")
    assert original.pas_appointment_id in lines[1]
    with database.unit_of_work() as check:
        assert check.get_one(BookingRequest, request.id).status == RequestStatus.OPEN
