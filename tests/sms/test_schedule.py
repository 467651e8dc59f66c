"""Scheduling reminders and confirmations into the outbox."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.errors import InvalidInputError
from app.settings import Settings
from app.sms import service
from app.sms.tables import SmsMessage
from tests.clock import TODAY
from tests.factories import create_appointment, create_clinic, create_patient
from tests.sms.helpers import local_at, spoken

TOMORROW = TODAY + timedelta(days=1)


def at(days_ahead: int, hour: int = 10) -> datetime:
    """An appointment `days_ahead` days after the test's day, at `hour` local time."""
    return local_at(days_ahead, hour)


def reminders(session: Session) -> list[SmsMessage]:
    return list(session.scalars(select(SmsMessage).order_by(SmsMessage.id)))


def test_reminders_are_queued_seven_and_two_days_ahead(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    seven = create_appointment(session, start_at=local_at(7, 9, 30))
    two = create_appointment(session, start_at=local_at(2, 14))
    create_appointment(session, start_at=local_at(15, 9))  # too far

    summary = service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())

    assert summary.created == 2
    queued = {(m.appointment_id, m.offset_days) for m in reminders(session)}
    assert queued == {(seven.id, 7), (two.id, 2)}
    text = next(m.body for m in reminders(session) if m.appointment_id == seven.id)
    assert spoken(seven.start_at) in text
    assert all(m.next_attempt_at == clock.now() for m in reminders(session))  # due at once
    assert "Reply 1 to confirm, 2 to cancel, 3 to rearrange" in text


def test_running_again_never_sends_a_reminder_twice(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    create_appointment(session, start_at=at(7))
    now = clock.now()
    first = service.schedule_reminders(session, settings, on_date=TODAY, now=now)
    again = service.schedule_reminders(session, settings, on_date=TODAY, now=now)
    next_day = service.schedule_reminders(session, settings, on_date=TOMORROW, now=now)
    assert (first.created, again.created, next_day.created) == (1, 0, 0)
    assert again.already_scheduled == 1
    assert len(reminders(session)) == 1


def test_the_database_refuses_a_second_reminder_for_the_same_offset(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment = create_appointment(session, start_at=at(7))
    service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())
    duplicate = {
        "idempotency_key": service.new_idempotency_key(),
        "patient_id": appointment.patient_id,
        "appointment_id": appointment.id,
        "kind": "reminder",
        "offset_days": 7,
        "language": "en",
        "to_number": "+447700900001",
        "body": "x",
        "state": "pending",
        "next_attempt_at": clock.now(),
        "created_at": clock.now(),
        "updated_at": clock.now(),
    }
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(insert(SmsMessage), [duplicate])


def test_a_missed_day_or_late_booking_is_caught_up_once(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    # Five days ahead: the 7-day reminder's day has passed, so it goes today instead.
    appointment = create_appointment(session, start_at=at(5, 9))
    summary = service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())
    assert summary.created == 1
    assert reminders(session)[0].offset_days == 7
    clock.advance(days=3)
    later = service.schedule_reminders(
        session, settings, on_date=TODAY + timedelta(days=3), now=clock.now()
    )
    assert later.created == 1
    assert sorted(m.offset_days or 0 for m in reminders(session)) == [2, 7]
    assert {m.appointment_id for m in reminders(session)} == {appointment.id}


def test_no_reminder_without_an_sms_channel_or_for_cancelled_appointments(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    create_appointment(session, start_at=at(7), patient=create_patient(session, mobile_phone=None))
    create_appointment(
        session, start_at=at(7), patient=create_patient(session, mobile_phone_invalid=True)
    )
    create_appointment(session, start_at=at(7), patient=create_patient(session, sms_opt_out=True))
    create_appointment(session, start_at=at(7), attendance_code="2")
    create_appointment(session, start_at=at(7), attendance_code="4")
    create_appointment(session, start_at=at(7))

    summary = service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())

    assert summary.created == 1
    assert summary.no_sms_channel == 3
    assert summary.cancelled == 2


def test_patients_get_their_language_and_sensitive_clinics_no_specialty(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    polish = create_patient(session, preferred_language="pl")
    create_appointment(session, start_at=at(7), patient=polish)
    sensitive = create_clinic(session, specialty_code="502", sensitive=True)
    create_appointment(session, start_at=at(7), clinic=sensitive)
    open_clinic = create_clinic(session, specialty_code="502")
    create_appointment(session, start_at=at(7), clinic=open_clinic)

    service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())

    texts = [(m.language, m.body) for m in reminders(session)]
    assert texts[0][0] == "pl"
    assert texts[0][1].startswith("Przypomnienie")
    assert "Gynaecology" not in texts[1][1]
    assert "your hospital appointment" in texts[1][1]
    assert "Gynaecology" in texts[2][1]


# Written out here, not read from the app, so the test checks the words themselves.
POLISH_WEEKDAYS = ("poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela")
POLISH_MONTHS = (
    *("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia"),
    *("września", "października", "listopada", "grudnia"),
)
ENGLISH_DATE_WORD = re.compile(
    r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
)


def test_a_polish_patients_reminder_has_the_day_and_month_in_polish(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    polish = create_patient(session, preferred_language="pl")
    create_appointment(session, start_at=at(7), patient=polish)

    service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())

    [message] = reminders(session)
    day = TODAY + timedelta(days=7)
    expected = f"{POLISH_WEEKDAYS[day.weekday()]}, {day.day} {POLISH_MONTHS[day.month - 1]}"
    assert message.language == "pl"
    assert f"{expected} {day.year}" in message.body
    assert ENGLISH_DATE_WORD.search(message.body) is None


def test_confirmation_joins_the_callers_transaction_and_skips_no_channel(
    session: Session, clock: FixedClock
) -> None:
    appointment = create_appointment(session, start_at=at(3))
    message = service.queue_confirmation(
        session, appointment_id=appointment.id, kind="confirm_rebooked", now=clock.now()
    )
    assert message is not None
    assert (message.state, message.next_attempt_at) == ("pending", clock.now())
    assert f"now on {spoken(appointment.start_at)}" in message.body

    no_mobile = create_appointment(
        session, start_at=at(3), patient=create_patient(session, mobile_phone=None)
    )
    assert (
        service.queue_confirmation(session, appointment_id=no_mobile.id, kind="confirm_support")
        is None
    )
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 1
    with pytest.raises(InvalidInputError):
        service.queue_confirmation(session, appointment_id=appointment.id, kind="reminder")
