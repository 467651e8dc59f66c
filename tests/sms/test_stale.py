"""Nothing is sent about a stale appointment: the dispatcher re-checks every reminder."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.orm import Session

from app.appointments.tables import AppointmentChange
from app.bookings import service as bookings_service
from app.clock import FixedClock
from app.db.session import Database
from app.settings import Settings
from app.sms import repository
from app.sms.dispatcher import Dispatcher
from app.sms.providers import FakeSender
from app.sms.tables import SmsMessage
from tests.factories import create_appointment
from tests.sms.helpers import DAYTIME, WRITTEN_AT, create_message, local_at


def _dispatch(database: Database, settings: Settings) -> tuple[FakeSender, int]:
    sender = FakeSender()
    fast = settings.model_copy(update={"sms_send_rate_per_second": 0.0})
    clock = FixedClock(DAYTIME)
    summary = Dispatcher(
        database, fast, sender, worker_id="t", clock=clock, rng=random.Random(1)
    ).run_once()
    return sender, summary.withdrawn_stale


def _state(database: Database, message_id: int) -> tuple[str, str | None, int | None]:
    with database.unit_of_work() as session:
        message = session.get_one(SmsMessage, message_id)
        return message.state, message.error_code, message.offset_days


def test_reminders_about_cancelled_moved_past_or_requested_appointments_are_withdrawn(
    session: Session, database: Database, settings: Settings
) -> None:
    fine = create_message(session)
    cancelled_appointment = create_appointment(
        session, start_at=local_at(7, 11), attendance_code="2"
    )
    cancelled = create_message(session, appointment=cancelled_appointment)
    past = create_message(
        session, appointment=create_appointment(session, start_at=DAYTIME - timedelta(hours=1))
    )
    moved_appointment = create_appointment(session, start_at=local_at(9, 14))
    moved = create_message(session, appointment=moved_appointment)
    session.add(
        AppointmentChange(
            appointment_id=moved_appointment.id,
            source="pas_import",
            field="start_at",
            old_value=local_at(7, 14).isoformat(),
            new_value=moved_appointment.start_at.isoformat(),
            changed_at=WRITTEN_AT + timedelta(minutes=1),
        )
    )
    asked_appointment = create_appointment(session, start_at=local_at(7, 15))
    asked = create_message(session, appointment=asked_appointment)
    bookings_service.request_cancel(
        session,
        appointment=asked_appointment,
        reason=None,
        call_id=None,
        user_id=None,
        now=WRITTEN_AT,
    )
    session.commit()

    sender, withdrawn = _dispatch(database, settings)

    assert [record.message.body for record in sender.sent] == [fine.body]
    assert withdrawn == 4
    assert _state(database, cancelled.id) == ("cancelled", "cancelled", None)
    assert _state(database, past.id) == ("cancelled", "past", None)
    assert _state(database, moved.id) == ("cancelled", "moved", None)
    assert _state(database, asked.id) == ("cancelled", "requested", None)
    with database.unit_of_work() as check:
        stats = repository.message_stats(
            check, since=WRITTEN_AT - timedelta(days=1), until=DAYTIME + timedelta(days=1)
        )
    assert {item["reason"]: item["count"] for item in stats["withdrawn_by_reason"]} == {
        "cancelled": 1,
        "moved": 1,
        "past": 1,
        "requested": 1,
    }


def test_a_withdrawn_reminder_frees_its_offset_for_a_fresh_one(
    session: Session, database: Database, settings: Settings
) -> None:
    appointment = create_appointment(session, start_at=local_at(7, 10), attendance_code="4")
    first = create_message(session, appointment=appointment)
    session.commit()
    _dispatch(database, settings)
    assert _state(database, first.id)[0] == "cancelled"
    with database.unit_of_work() as again:
        create_message(again, appointment=again.merge(appointment))  # same offset: allowed
