"""Structured outcomes: each one's effect on the appointment, validation, stale submissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentChange, AppointmentContact
from app.bookings.tables import BookingRequest
from app.calls.queue import build_queue
from app.calls.schemas import OutcomeIn
from app.calls.service import complete_call, record_attempt, record_outcomes, take_next_call
from app.calls.tables import AttemptResult, Call, CallOutcome, CallStatus, OutcomeKind
from app.errors import ConflictError, InvalidInputError
from app.settings import Settings
from tests.calls.helpers import MORNING, QUEUE_DAY, calls_settings, in_window, local
from tests.factories import create_appointment, create_clinic, create_patient


def _answered_call(
    session: Session, settings: Settings, appointments: int = 1
) -> tuple[Call, list[Appointment]]:
    patient = create_patient(session, core20=True)
    booked = [
        create_appointment(session, patient=patient, start_at=in_window(hour=9 + i))
        for i in range(appointments)
    ]
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = take_next_call(session, settings, user_id=7, now=MORNING)
    assert call is not None
    record_attempt(
        session, settings, call_id=call.id, user_id=7, result=AttemptResult.ANSWERED, now=MORNING
    )
    return call, booked


def _record(
    session: Session, settings: Settings, call: Call, *outcomes: OutcomeIn, user_id: int = 7
) -> list[CallOutcome]:
    return record_outcomes(
        session, settings, call_id=call.id, user_id=user_id, outcomes=list(outcomes), now=MORNING
    )


def test_confirmed_with_travel_support_completes_and_logs_a_reached_contact_per_appointment(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    call, (first, second) = _answered_call(session, settings, appointments=2)

    saved = _record(
        session,
        settings,
        call,
        OutcomeIn(kind=OutcomeKind.CONFIRMED, appointment_id=first.id),
        OutcomeIn(kind=OutcomeKind.CONFIRMED, appointment_id=second.id),
        OutcomeIn(kind=OutcomeKind.TRAVEL_COSTS),
    )
    complete_call(session, call_id=call.id, user_id=7, now=MORNING)

    assert [o.kind for o in saved] == ["confirmed", "confirmed", "travel_costs"]
    assert all(o.recorded_by == 7 and o.recorded_at == MORNING for o in saved)
    assert call.status == CallStatus.COMPLETED
    assert call.completed_by == 7
    contacts = list(session.scalars(select(AppointmentContact)))
    assert {c.appointment_id for c in contacts} == {first.id, second.id}
    assert all(c.reached and c.channel == "call" for c in contacts)
    assert first.attendance_code == "0"


def test_rebooking_asks_the_booking_team_and_leaves_the_appointment_as_the_pas_says(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    call, (old,) = _answered_call(session, settings)
    new_time = local(QUEUE_DAY + timedelta(days=14), 14, 30)

    (saved,) = _record(
        session,
        settings,
        call,
        OutcomeIn(kind=OutcomeKind.REBOOKED, appointment_id=old.id, new_start_at=new_time),
    )

    # Nothing is booked or cancelled by Navigator: the booking team gets a request and the
    # original appointment stays as the PAS says until the PAS changes it.
    assert old.attendance_code == "0"
    assert session.scalar(select(func.count(AppointmentChange.id))) == 0
    assert session.scalar(select(func.count(Appointment.id))) == 1
    request = session.scalars(select(BookingRequest)).one()
    assert (request.kind, request.status, request.appointment_id) == ("rebook", "open", old.id)
    assert request.preferred_start_at == new_time
    assert request.clinic_id == old.clinic_id
    assert request.call_id == call.id
    assert saved.detail["booking_request_id"] == request.id
    assert saved.detail["requested"] is True


def test_rebooking_into_another_clinic(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings)
    call, (old,) = _answered_call(session, settings)
    other = create_clinic(session, code="ENT-EVE")

    _record(
        session,
        settings,
        call,
        OutcomeIn(
            kind=OutcomeKind.REBOOKED,
            new_start_at=local(QUEUE_DAY + timedelta(days=15), 16),
            clinic_code="ENT-EVE",
        ),
    )

    request = session.scalars(select(BookingRequest)).one()
    assert (request.appointment_id, request.clinic_id) == (old.id, other.id)


def test_cancelling_asks_the_booking_team(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings)
    call, (appointment,) = _answered_call(session, settings)

    (saved,) = _record(session, settings, call, OutcomeIn(kind=OutcomeKind.CANCELLED))

    assert appointment.attendance_code == "0"  # until the PAS cancels it
    assert saved.appointment_id == appointment.id
    request = session.scalars(select(BookingRequest)).one()
    assert (request.kind, request.appointment_id) == ("cancel", appointment.id)
    assert saved.detail == {"booking_request_id": request.id, "requested": True}
    assert session.scalar(select(func.count(Appointment.id))) == 1


def test_support_outcomes_keep_their_details(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings)
    call, (appointment,) = _answered_call(session, settings)

    saved = _record(
        session,
        settings,
        call,
        OutcomeIn(kind=OutcomeKind.CONFIRMED),
        OutcomeIn(kind=OutcomeKind.SPOKEN_INTERPRETER, language="PL"),
        OutcomeIn(kind=OutcomeKind.BSL_INTERPRETER),
        OutcomeIn(kind=OutcomeKind.OTHER_ADJUSTMENT, text="Ground-floor room, wheelchair user"),
        OutcomeIn(kind=OutcomeKind.LONGER_APPOINTMENT),
        OutcomeIn(kind=OutcomeKind.PARKING),
        OutcomeIn(kind=OutcomeKind.TRANSPORT),
    )

    details = {o.kind: o.detail for o in saved}
    assert details["spoken_interpreter"] == {"language": "pl"}
    assert details["other_adjustment"] == {"text": "Ground-floor room, wheelchair user"}
    assert appointment.attendance_code == "0"


@pytest.mark.parametrize(
    ("outcomes", "field"),
    [
        ([OutcomeIn(kind=OutcomeKind.REBOOKED)], "outcomes[0].new_start_at"),
        (
            [
                OutcomeIn(
                    kind=OutcomeKind.REBOOKED,
                    new_start_at=MORNING - timedelta(days=1),
                )
            ],
            "outcomes[0].new_start_at",
        ),
        (
            [OutcomeIn(kind=OutcomeKind.CONFIRMED), OutcomeIn(kind=OutcomeKind.SPOKEN_INTERPRETER)],
            "outcomes[1].language",
        ),
        ([OutcomeIn(kind=OutcomeKind.OTHER_ADJUSTMENT, text="  ")], "outcomes[0].text"),
        (
            [OutcomeIn(kind=OutcomeKind.CONFIRMED), OutcomeIn(kind=OutcomeKind.CANCELLED)],
            "outcomes[1].kind",
        ),
        (
            [OutcomeIn(kind=OutcomeKind.TRAVEL_COSTS), OutcomeIn(kind=OutcomeKind.DECLINED_HELP)],
            "outcomes",
        ),
        (
            [OutcomeIn(kind=OutcomeKind.CONFIRMED, appointment_id=999_999)],
            "outcomes[0].appointment_id",
        ),
        ([OutcomeIn(kind=OutcomeKind.UNREACHABLE)], "outcomes"),
        ([], "outcomes"),
    ],
)
def test_invalid_or_contradictory_outcomes_are_refused_and_nothing_is_saved(
    session: Session, settings: Settings, outcomes: list[OutcomeIn], field: str
) -> None:
    settings = calls_settings(settings)
    call, (appointment,) = _answered_call(session, settings)

    with pytest.raises(InvalidInputError) as raised:
        _record(session, settings, call, *outcomes)

    assert field in {detail["field"] for detail in raised.value.details}
    assert all(detail["message"] for detail in raised.value.details)
    assert session.scalar(select(func.count(CallOutcome.id))) == 0
    assert appointment.attendance_code == "0"
    assert session.scalar(select(func.count(Appointment.id))) == 1


def test_an_outcome_contradicting_one_recorded_earlier_is_refused(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    call, _ = _answered_call(session, settings)
    _record(session, settings, call, OutcomeIn(kind=OutcomeKind.CONFIRMED))

    with pytest.raises(InvalidInputError):
        _record(session, settings, call, OutcomeIn(kind=OutcomeKind.CANCELLED))


def test_outcomes_need_an_answered_attempt_and_completion_needs_outcomes(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    create_appointment(session, patient=create_patient(session, core20=True), start_at=in_window())
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = take_next_call(session, settings, user_id=7, now=MORNING)
    assert call is not None

    with pytest.raises(InvalidInputError):
        _record(session, settings, call, OutcomeIn(kind=OutcomeKind.CONFIRMED))
    record_attempt(
        session, settings, call_id=call.id, user_id=7, result=AttemptResult.ANSWERED, now=MORNING
    )
    with pytest.raises(InvalidInputError) as raised:
        complete_call(session, call_id=call.id, user_id=7, now=MORNING)
    assert raised.value.details[0]["field"] == "outcomes"
    assert call.status == CallStatus.IN_PROGRESS


def test_a_stale_submission_is_refused_after_the_call_was_completed_elsewhere(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_lease_minutes=20)
    call, (appointment,) = _answered_call(session, settings)
    # Navigator 7 walks away; the lease runs out and navigator 8 finishes the call.
    later = MORNING + timedelta(minutes=30)
    retaken = take_next_call(session, settings, user_id=8, now=later)
    assert retaken is not None
    assert retaken.id == call.id
    record_outcomes(
        session,
        settings,
        call_id=call.id,
        user_id=8,
        outcomes=[OutcomeIn(kind=OutcomeKind.CONFIRMED)],
        now=later,
    )
    complete_call(session, call_id=call.id, user_id=8, now=later)

    with pytest.raises(ConflictError) as raised:
        _record(session, settings, call, OutcomeIn(kind=OutcomeKind.CANCELLED), user_id=7)
    assert "someone else" in raised.value.message
    with pytest.raises(ConflictError):
        complete_call(session, call_id=call.id, user_id=7, now=later)
    assert appointment.attendance_code == "0"
    assert session.scalar(select(func.count(CallOutcome.id))) == 1


def test_a_navigator_can_close_a_call_unreachable_when_no_attempt_got_through(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    patient = create_patient(session, communication_needs="bsl", core20=True)
    appointment = create_appointment(session, patient=patient, start_at=in_window())
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = take_next_call(session, settings, user_id=7, now=MORNING)
    assert call is not None
    # A BSL user is contacted by SMS or video relay, never by a voice call.
    record_attempt(
        session,
        settings,
        call_id=call.id,
        user_id=7,
        result=AttemptResult.NO_ANSWER,
        channel="video_relay",
        now=MORNING,
    )
    call = take_next_call(session, settings, user_id=7, now=MORNING + timedelta(hours=2))
    assert call is not None

    saved = _record(session, settings, call, OutcomeIn(kind=OutcomeKind.UNREACHABLE))

    assert [o.kind for o in saved] == ["unreachable"]
    assert session.scalar(select(func.count(CallOutcome.id))) == 1
    assert call.status == CallStatus.UNREACHABLE
    contact = session.scalars(select(AppointmentContact)).one()
    assert (contact.appointment_id, contact.reached) == (appointment.id, False)


def test_rebooking_with_support_queues_only_the_support_confirmation_in_the_transaction(
    session: Session, settings: Settings
) -> None:
    from app.sms.tables import SmsMessage

    settings = calls_settings(settings)
    call, (old,) = _answered_call(session, settings)
    new_time = local(QUEUE_DAY + timedelta(days=14), 14, 30)

    rebooked, _bsl = _record(
        session,
        settings,
        call,
        OutcomeIn(kind=OutcomeKind.REBOOKED, appointment_id=old.id, new_start_at=new_time),
        OutcomeIn(kind=OutcomeKind.BSL_INTERPRETER),
    )

    messages = list(session.scalars(select(SmsMessage).order_by(SmsMessage.id)))
    # The support text waits in the outbox until the request commits; the rebooking is
    # confirmed only when the PAS books it (app/bookings), so no text names a time yet.
    assert rebooked.detail["requested"] is True
    assert [(m.kind, m.appointment_id, m.state) for m in messages] == [
        ("confirm_support", old.id, "pending"),
    ]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 0


def test_a_patient_without_a_mobile_gets_no_confirmation_text(
    session: Session, settings: Settings
) -> None:
    from app.sms.tables import SmsMessage

    settings = calls_settings(settings)
    patient = create_patient(
        session, core20=True, mobile_phone=None, landline_phone="+441134960123"
    )
    create_appointment(session, patient=patient, start_at=in_window())
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = take_next_call(session, settings, user_id=7, now=MORNING)
    assert call is not None
    record_attempt(
        session,
        settings,
        call_id=call.id,
        user_id=7,
        result=AttemptResult.ANSWERED,
        channel="landline",
        now=MORNING,
    )

    _record(session, settings, call, OutcomeIn(kind=OutcomeKind.TRAVEL_COSTS))

    assert session.scalar(select(func.count()).select_from(SmsMessage)) == 0
