"""Working the queue: take-next order, no call taken twice, retries, leases, wrong numbers."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments.tables import AppointmentContact
from app.calls.queue import build_queue
from app.calls.service import record_attempt, retry_at, take_next_call
from app.calls.tables import AttemptResult, Call, CallOutcome, CallStatus, OutcomeKind
from app.db.session import Database
from app.errors import ConflictError, InvalidInputError
from app.patients.tables import Patient
from app.settings import Settings
from app.tasks.tables import NavigatorTask, TaskKind
from tests.calls.helpers import (
    MORNING,
    QUEUE_DAY,
    calls_settings,
    create_eligible_appointment,
    local,
)
from tests.clock import TODAY
from tests.factories import create_appointment, create_patient


def _queue(session: Session, settings: Settings, risks: list[float]) -> list[Call]:
    for risk in risks:
        create_eligible_appointment(session, risk=risk)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    return list(session.scalars(select(Call).order_by(Call.priority.desc())))


def test_take_next_gives_the_highest_priority_and_callbacks_due_first(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    top, middle, _bottom = _queue(session, settings, [0.5, 0.9, 0.7])

    first = take_next_call(session, settings, user_id=1, now=MORNING)
    assert first is not None
    assert first.id == top.id
    # The same navigator asking again gets the call they already hold.
    assert take_next_call(session, settings, user_id=1, now=MORNING) is first
    record_attempt(
        session, settings, call_id=top.id, user_id=1, result=AttemptResult.NO_ANSWER, now=MORNING
    )

    at_noon = MORNING + timedelta(hours=3)
    second = take_next_call(session, settings, user_id=2, now=at_noon)
    assert second is not None
    assert second.id == top.id  # the due callback comes before higher-priority new work
    third = take_next_call(session, settings, user_id=3, now=at_noon)
    assert third is not None
    assert third.id == middle.id


def test_two_navigators_never_take_the_same_call(database: Database, settings: Settings) -> None:
    settings = calls_settings(settings)
    with database.unit_of_work() as session:
        _queue(session, settings, [0.3 + i / 100 for i in range(12)])
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def navigator(user_id: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                with database.unit_of_work() as session:
                    call = take_next_call(session, settings, user_id=user_id, now=MORNING)
                    if call is None:
                        return
                    with lock:
                        taken.append(call.id)
                    # Finish it so the next take claims a new call rather than this one.
                    call.status = CallStatus.COMPLETED
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=navigator, args=(user,)) for user in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(taken) == 12
    assert len(set(taken)) == 12


def test_unanswered_calls_retry_later_today_then_next_working_day_then_unreachable(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_max_attempts=3, calls_retry_delay_minutes=120)
    patient = create_patient(session, core20=True)
    appointments = [
        create_appointment(session, patient=patient, start_at=MORNING + timedelta(days=7, hours=h))
        for h in (1, 5)
    ]
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = take_next_call(session, settings, user_id=1, now=MORNING)
    assert call is not None

    record_attempt(
        session, settings, call_id=call.id, user_id=1, result=AttemptResult.NO_ANSWER, now=MORNING
    )
    assert call.status == CallStatus.RETRY
    assert call.next_attempt_at == MORNING + timedelta(hours=2)
    assert take_next_call(session, settings, user_id=1, now=MORNING + timedelta(hours=1)) is None

    later = MORNING + timedelta(hours=2)
    assert take_next_call(session, settings, user_id=1, now=later) is call
    record_attempt(
        session, settings, call_id=call.id, user_id=1, result=AttemptResult.VOICEMAIL, now=later
    )
    assert call.next_attempt_at == local(QUEUE_DAY + timedelta(days=1), 9)

    next_day = local(QUEUE_DAY + timedelta(days=1), 9, 5)
    assert take_next_call(session, settings, user_id=2, now=next_day) is call
    record_attempt(
        session, settings, call_id=call.id, user_id=2, result=AttemptResult.NO_ANSWER, now=next_day
    )

    assert call.status == CallStatus.UNREACHABLE
    assert call.attempts == 3
    outcomes = list(session.scalars(select(CallOutcome).where(CallOutcome.call_id == call.id)))
    assert [outcome.kind for outcome in outcomes] == [OutcomeKind.UNREACHABLE]
    contacts = list(session.scalars(select(AppointmentContact)))
    assert {c.appointment_id for c in contacts} == {a.id for a in appointments}
    assert all(c.channel == "call" and not c.reached for c in contacts)
    assert take_next_call(session, settings, user_id=2, now=next_day) is None


def test_a_late_miss_on_friday_retries_on_monday_morning(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    _queue(session, settings, [0.5])
    friday_afternoon = local(QUEUE_DAY + timedelta(days=3), 16)
    call = take_next_call(session, settings, user_id=1, now=friday_afternoon)
    assert call is not None
    record_attempt(
        session,
        settings,
        call_id=call.id,
        user_id=1,
        result=AttemptResult.NO_ANSWER,
        now=friday_afternoon,
    )
    assert call.next_attempt_at == local(QUEUE_DAY + timedelta(days=6), 9)


def test_a_call_taken_but_not_finished_returns_to_the_queue_after_the_lease(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_lease_minutes=20)
    (only,) = _queue(session, settings, [0.5])
    call = take_next_call(session, settings, user_id=1, now=MORNING)
    assert call is not None

    assert take_next_call(session, settings, user_id=2, now=MORNING + timedelta(minutes=10)) is None
    retaken = take_next_call(session, settings, user_id=2, now=MORNING + timedelta(minutes=21))
    assert retaken is not None
    assert retaken.id == only.id
    assert retaken.taken_by == 2

    with pytest.raises(ConflictError):
        record_attempt(
            session,
            settings,
            call_id=only.id,
            user_id=1,
            result=AttemptResult.ANSWERED,
            now=MORNING + timedelta(minutes=22),
        )


def test_a_wrong_number_flags_the_phone_and_opens_a_data_quality_task(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    with_landline = create_patient(session, core20=True, landline_phone="+441134960123")
    mobile_only = create_patient(session, core20=True)
    for patient in (with_landline, mobile_only):
        create_appointment(session, patient=patient, start_at=MORNING + timedelta(days=7))
    build_queue(session, settings, QUEUE_DAY, now=MORNING)

    outcomes = {}
    for user_id in (1, 2):
        call = take_next_call(session, settings, user_id=user_id, now=MORNING)
        assert call is not None
        record_attempt(
            session,
            settings,
            call_id=call.id,
            user_id=user_id,
            result=AttemptResult.WRONG_NUMBER,
            channel="mobile",
            now=MORNING,
        )
        outcomes[call.patient_id] = call.status

    assert outcomes[with_landline.id] == CallStatus.RETRY  # the landline is still worth a try
    assert outcomes[mobile_only.id] == CallStatus.UNREACHABLE
    for patient in (with_landline, mobile_only):
        session.refresh(patient)
        assert patient.mobile_phone_invalid
        assert not patient.has_usable_mobile
    assert not session.get_one(Patient, with_landline.id).landline_phone_invalid
    tasks = list(session.scalars(select(NavigatorTask)))
    assert {task.patient_id for task in tasks} == {with_landline.id, mobile_only.id}
    assert {(task.patient_id, task.kind) for task in tasks} == {
        (with_landline.id, TaskKind.DATA_QUALITY),
        (mobile_only.id, TaskKind.DATA_QUALITY),
        # No phone left for the mobile-only patient: another route, a letter.
        (mobile_only.id, TaskKind.SEND_LETTER),
    }
    assert all("+44" not in task.detail for task in tasks)


def test_a_call_whose_appointments_were_all_cancelled_is_not_offered(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    cancelled_by_sms = create_eligible_appointment(session, risk=0.9)
    still_booked = create_eligible_appointment(session, risk=0.4)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    cancelled_by_sms.attendance_code = "2"
    session.flush()

    call = take_next_call(session, settings, user_id=1, now=MORNING)

    assert call is not None
    assert call.patient_id == still_booked.patient_id
    assert take_next_call(session, settings, user_id=2, now=MORNING) is None


def test_wrong_number_is_only_a_phone_result(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings)
    _queue(session, settings, [0.5])
    call = take_next_call(session, settings, user_id=1, now=MORNING)
    assert call is not None

    with pytest.raises(InvalidInputError) as raised:
        record_attempt(
            session,
            settings,
            call_id=call.id,
            user_id=1,
            result=AttemptResult.WRONG_NUMBER,
            channel="sms",
            now=MORNING,
        )

    assert raised.value.details[0]["field"] == "channel"
    assert call.attempts == 0
    assert session.scalar(select(NavigatorTask.id)) is None


def _weekday_after(first: date, weekday: int) -> date:
    return first + timedelta(days=(weekday - first.weekday()) % 7)


# A Wednesday in the coming winter (London on GMT) and one in the coming summer (BST), found
# from the test clock's day so no calendar date is pinned.
WINTER_WEDNESDAY = _weekday_after(date(TODAY.year + 1, 1, 10), 2)
SUMMER_WEDNESDAY = _weekday_after(date(TODAY.year + 1, 7, 10), 2)


@pytest.mark.parametrize(
    "wednesday", [WINTER_WEDNESDAY, SUMMER_WEDNESDAY], ids=["winter", "summer"]
)
@pytest.mark.parametrize(
    ("missed", "attempts_today", "comes_back"),
    [
        # (days after Wednesday, local hour:minute), attempts today including this one, back at
        ((0, 10, 0), 1, (0, 12, 0)),  # later the same day, after the delay
        ((0, 14, 59), 1, (0, 16, 59)),  # still inside the day
        ((0, 15, 0), 1, (1, 9, 0)),  # the delay reaches 17:00, the end: next morning
        ((0, 16, 30), 1, (1, 9, 0)),  # late afternoon
        ((0, 21, 45), 1, (1, 9, 0)),  # late evening
        ((0, 5, 2), 1, (0, 9, 0)),  # early morning: not 07:02, the day's start
        ((0, 0, 30), 1, (0, 9, 0)),  # just after midnight
        ((0, 11, 0), 2, (1, 9, 0)),  # a second miss today: tomorrow morning
        ((2, 15, 30), 1, (5, 9, 0)),  # Friday afternoon: Monday morning
        ((2, 10, 0), 2, (5, 9, 0)),  # Friday, second miss: Monday morning
        ((3, 11, 0), 1, (5, 9, 0)),  # Saturday: Monday morning
    ],
)
def test_a_callback_is_always_inside_the_working_day(
    settings: Settings,
    wednesday: date,
    missed: tuple[int, int, int],
    attempts_today: int,
    comes_back: tuple[int, int, int],
) -> None:
    settings = calls_settings(settings, calls_retry_delay_minutes=120)
    days, hour, minute = missed
    now = local(wednesday + timedelta(days=days), hour, minute)

    due = retry_at(settings, now, attempts_today)

    back_days, back_hour, back_minute = comes_back
    assert due == local(wednesday + timedelta(days=back_days), back_hour, back_minute)
    assert settings.calendar.is_working_time(due)
    assert due > now


def test_a_no_answer_late_in_the_evening_comes_back_at_nine_the_next_morning(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    _queue(session, settings, [0.5])
    evening = local(QUEUE_DAY, 20, 30)
    call = take_next_call(session, settings, user_id=1, now=evening)
    assert call is not None

    record_attempt(
        session, settings, call_id=call.id, user_id=1, result=AttemptResult.NO_ANSWER, now=evening
    )

    assert call.status == CallStatus.RETRY
    assert call.next_attempt_at == local(QUEUE_DAY + timedelta(days=1), 9)
    assert take_next_call(session, settings, user_id=2, now=local(QUEUE_DAY, 23)) is None
