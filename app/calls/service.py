"""Working the queue: taking calls, attempts and retries, structured outcomes, completion.

Services flush and never commit; the request or unit of work owns the transaction. Taking a
call is an atomic conditional UPDATE (`... WHERE id = :id AND <still takeable>`) whose row
count says who won, so two navigators never get the same call on PostgreSQL or SQLite; on
PostgreSQL the candidate rows are also read with `FOR UPDATE SKIP LOCKED` so a navigator does
not wait behind another's claim.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.bookings import service as bookings_service
from app.calls import documents, languages
from app.calls.queue import call_window, no_usable_phone
from app.calls.schemas import (
    AppointmentOnCall,
    AttemptOut,
    CallDetail,
    CallHistory,
    CallSummary,
    NavigatorLoad,
    NoteOut,
    OutcomeChangeOut,
    OutcomeIn,
    OutcomeOut,
    Overview,
    PatientOnCall,
    QueueView,
    RenderedDocument,
    TaskOut,
)
from app.calls.tables import (
    Arm,
    AttemptResult,
    Call,
    CallAssignment,
    CallAttempt,
    CallDocument,
    CallNote,
    CallOutcome,
    CallOutcomeChange,
    CallStatus,
    Identity,
    OutcomeKind,
)
from app.db.dialect import skip_locked
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.patients.tables import Patient
from app.reference.codes import CANCELLED_CODES, NOT_YET_KNOWN, specialty_name
from app.risk.tables import RiskScore
from app.settings import Settings
from app.sms import service as sms_service
from app.sms.tables import MessageKind
from app.tasks import service as tasks_service
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

logger = logging.getLogger("navigator.calls")

CANCELLED_BY_PATIENT = "2"
NAVIGATOR_SOURCE = "navigator"
APPOINTMENT_DECISIONS = frozenset(
    {OutcomeKind.CONFIRMED, OutcomeKind.REBOOKED, OutcomeKind.CANCELLED}
)
SUPPORT_KINDS = frozenset(
    {
        OutcomeKind.TRAVEL_COSTS,
        OutcomeKind.PARKING,
        OutcomeKind.TRANSPORT,
        OutcomeKind.LONGER_APPOINTMENT,
        OutcomeKind.BSL_INTERPRETER,
        OutcomeKind.SPOKEN_INTERPRETER,
        OutcomeKind.OTHER_ADJUSTMENT,
    }
)
PHONE_CHANNELS = frozenset({"mobile", "landline"})
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


# --- taking a call ---------------------------------------------------------------------------


def _still_booked(now: datetime) -> Any:
    """The call still covers an appointment that is booked and has not started."""
    return exists().where(
        CallAssignment.call_id == Call.id,
        Appointment.id == CallAssignment.appointment_id,
        Appointment.attendance_code == NOT_YET_KNOWN,
        Appointment.start_at > now,
    )


def _take_buckets(now: datetime, today: date) -> tuple[Any, ...]:
    """What a navigator may take now, in the order it is offered.

    Callbacks that are due come first, then calls another navigator took and abandoned (their
    lease expired: work already started is finished before new work), then queued calls from
    today or earlier. Within each, highest priority first, then the order they were queued.
    Each bucket is one status, so the database walks the (status, priority, id) index in order
    and stops at the first row it can lock, rather than sorting the whole day's queue.
    """
    return (
        and_(Call.status == CallStatus.RETRY, Call.next_attempt_at <= now),
        and_(Call.status == CallStatus.IN_PROGRESS, Call.lease_expires_at < now),
        and_(Call.status == CallStatus.READY, Call.queue_date <= today),
    )


def _takeable(now: datetime, today: date) -> Any:
    """A call anyone may take now: queued, a callback that is due, or an expired lease.

    A call whose appointments have all been cancelled or have passed since it was queued (the
    patient cancelled by SMS, say) is not offered: there is nothing left to call about.
    """
    return and_(or_(*_take_buckets(now, today)), _still_booked(now))


def _next_takeable_id(
    session: Session, now: datetime, today: date, *, lock: bool = True
) -> int | None:
    """The first call anyone may take now; locked (skipping calls others hold locked) unless
    `lock` is false, for showing what comes next."""
    for bucket in _take_buckets(now, today):
        query = (
            select(Call.id)
            .where(bucket, _still_booked(now))
            .order_by(Call.priority.desc(), Call.id)
            .limit(1)
        )
        call_id = session.scalar(skip_locked(query) if lock else query)
        if call_id is not None:
            return int(call_id)
    return None


def local_today(settings: Settings, now: datetime) -> date:
    """The trust's local day of `now` (kept for scripts; features use `settings.calendar`)."""
    return settings.calendar.today(now)


def current_call(session: Session, user_id: int, now: datetime) -> Call | None:
    """The call this navigator holds. A lapsed lease still counts until someone else takes the
    call: the lease only lets colleagues pick up work that was left, it never takes a call
    away from a navigator who is still on it."""
    return session.scalar(
        select(Call)
        .where(Call.status == CallStatus.IN_PROGRESS, Call.taken_by == user_id)
        .order_by(Call.taken_at)
        .limit(1)
    )


class HeldByAnotherError(ConflictError):
    """The call is now held by a colleague (this navigator's lease lapsed and they took it)."""

    def __init__(self, message: str, *, holder_id: int, can_take_back: bool) -> None:
        super().__init__(message)
        self.holder_id = holder_id
        self.can_take_back = can_take_back


def take_next_call(
    session: Session, settings: Settings, *, user_id: int, now: datetime
) -> Call | None:
    """The navigator's current call, else the next one claimed; None when the queue is empty."""
    lease_until = now + timedelta(minutes=settings.calls_lease_minutes)
    mine = current_call(session, user_id, now)
    if mine is not None:
        mine.lease_expires_at = max(mine.lease_expires_at or now, lease_until)
        session.flush()
        return mine
    today = settings.calendar.today(now)
    # Lock one candidate at a time: locking a batch would hide it from other navigators.
    for _round in range(20):
        call_id = _next_takeable_id(session, now, today)
        if call_id is None:
            return None
        claimed = session.execute(
            update(Call)
            .where(Call.id == call_id, _takeable(now, today))
            .values(
                status=CallStatus.IN_PROGRESS,
                taken_by=user_id,
                taken_at=now,
                lease_expires_at=lease_until,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            logger.info("call %s taken by user %s", call_id, user_id)
            return session.get_one(Call, call_id, populate_existing=True)
    return None


def _held_call(session: Session, call_id: int, user_id: int, now: datetime) -> Call:
    """The call, locked, if this navigator holds it; a clear conflict otherwise."""
    call = session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if call is None:
        raise NotFoundError("No call with that id.")
    if call.status in (CallStatus.COMPLETED, CallStatus.UNREACHABLE):
        raise ConflictError(
            "This call has already been completed"
            + (" by someone else." if call.completed_by != user_id else ".")
            + " Nothing was saved."
        )
    if call.status == CallStatus.IN_PROGRESS and call.taken_by not in (None, user_id):
        raise HeldByAnotherError(
            "A colleague took this call after your hold on it lapsed. Nothing was saved yet.",
            holder_id=int(call.taken_by or 0),
            can_take_back=_untouched_since_taken(session, call),
        )
    if call.status != CallStatus.IN_PROGRESS or call.taken_by != user_id:
        raise ConflictError(
            "You no longer hold this call (it went back to the queue for a callback). "
            "Nothing was saved; take the next call."
        )
    return call


def _untouched_since_taken(session: Session, call: Call) -> bool:
    """Whether the current holder has recorded nothing since taking the call."""
    since = call.taken_at
    if since is None:
        return True
    attempts = session.scalar(
        select(func.count(CallAttempt.id)).where(
            CallAttempt.call_id == call.id, CallAttempt.attempted_at >= since
        )
    )
    outcomes = session.scalar(
        select(func.count(CallOutcome.id)).where(
            CallOutcome.call_id == call.id, CallOutcome.recorded_at >= since
        )
    )
    return not attempts and not outcomes


# --- keeping a call: leases ------------------------------------------------------------------


def renew_lease(
    session: Session, settings: Settings, *, call_id: int, user_id: int, now: datetime
) -> datetime:
    """The call screen's heartbeat: keep holding the call while its screen is open.

    One conditional UPDATE: it succeeds while this navigator holds the call, lapsed or not, so
    a lapsed call nobody else took is simply kept. Otherwise the reason comes back as an error
    (someone else holds it, it was completed, or it went back to the queue).
    """
    lease_until = now + timedelta(minutes=settings.calls_lease_minutes)
    renewed = session.execute(
        update(Call)
        .where(
            Call.id == call_id,
            Call.status == CallStatus.IN_PROGRESS,
            Call.taken_by == user_id,
        )
        .values(lease_expires_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount != 1:  # type: ignore[attr-defined]
        _held_call(session, call_id, user_id, now)  # raises the reason
    return lease_until


def lease_seconds_left(until: datetime, now: datetime) -> int:
    """Whole seconds a hold has left on the server's clock (0 once lapsed)."""
    return max(0, int((until - now).total_seconds()))


def take_back(
    session: Session, settings: Settings, *, call_id: int, user_id: int, now: datetime
) -> Call:
    """Take a call back from a colleague who picked it up after this navigator's lease lapsed,
    as long as the colleague has recorded nothing on it since (then it is theirs to finish)."""
    call = session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if call is None:
        raise NotFoundError("No call with that id.")
    if call.status == CallStatus.IN_PROGRESS and call.taken_by == user_id:
        return call
    if call.status != CallStatus.IN_PROGRESS or not _untouched_since_taken(session, call):
        raise ConflictError(
            "Your colleague has already started working on this call, so it stays with them. "
            "Nothing was saved: give them what the patient told you."
        )
    call.taken_by = user_id
    call.taken_at = now
    call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
    session.flush()
    logger.info("call %s taken back by user %s", call.id, user_id)
    return call


# --- attempts and retries --------------------------------------------------------------------


def retry_at(settings: Settings, now: datetime, attempts_today: int) -> datetime:
    """When an unanswered call comes back: never outside the working day.

    The first miss of a working day comes back after the retry delay, but not before the day's
    start (a miss recorded early is retried at 09:00) and only while the day is still open;
    any other miss, a miss too late in the day or on a closed day, comes back at the start of
    the next working morning (Monday for a Friday afternoon), in local time all year round.
    """
    calendar = settings.calendar
    today = calendar.today(now)
    if attempts_today <= 1 and calendar.is_working_day(today):
        later = max(
            now + timedelta(minutes=settings.calls_retry_delay_minutes),
            calendar.working_day_start(today),
        )
        if later < calendar.working_day_end(today):
            return later
    return calendar.next_working_morning(now)


def covered_appointment_ids(session: Session, call_id: int) -> list[int]:
    return list(
        session.scalars(
            select(CallAssignment.appointment_id)
            .where(CallAssignment.call_id == call_id)
            .order_by(CallAssignment.appointment_id)
        )
    )


def _write_contacts(session: Session, call: Call, *, reached: bool, now: datetime) -> None:
    # appointment_contacts is unique on (channel, source_ref) and a call covers several
    # appointments, so the ref is "<call id>:<appointment id>".
    # A call reopened by undoing its outcomes and completed again writes no second row.
    written = set(
        session.scalars(
            select(AppointmentContact.source_ref).where(
                AppointmentContact.channel == "call",
                AppointmentContact.source_ref.like(f"{call.id}:%"),
            )
        )
    )
    for appointment_id in covered_appointment_ids(session, call.id):
        if f"{call.id}:{appointment_id}" in written:
            continue
        session.add(
            AppointmentContact(
                appointment_id=appointment_id,
                channel="call",
                contacted_at=now,
                reached=reached,
                source_ref=f"{call.id}:{appointment_id}",
            )
        )


def _finish_unreachable(session: Session, call: Call, user_id: int, now: datetime) -> CallOutcome:
    call.status = CallStatus.UNREACHABLE
    call.completed_by = user_id
    call.completed_at = now
    call.lease_expires_at = None
    call.next_attempt_at = None
    outcome = CallOutcome(
        call_id=call.id,
        appointment_id=None,
        kind=OutcomeKind.UNREACHABLE,
        detail={"attempts": call.attempts},
        recorded_by=user_id,
        recorded_at=now,
    )
    session.add(outcome)
    _write_contacts(session, call, reached=False, now=now)
    return outcome


VOICE_CHANNELS = frozenset({"mobile", "landline", "video_relay"})
WRITTEN_CHANNELS = frozenset({"sms", "email", "letter"})
CHANNELS = VOICE_CHANNELS | WRITTEN_CHANNELS
# Results that only a voice call can have; a written attempt (text, email, letter) is "sent"
# or, once the patient replies, "answered".
VOICE_RESULTS = frozenset(
    {
        AttemptResult.NO_ANSWER,
        AttemptResult.VOICEMAIL,
        AttemptResult.SOMEONE_ELSE,
        AttemptResult.CALL_BACK,
    }
)
NOTE_MAX_CHARS = 2000


def _channel_problems(
    result: AttemptResult, channel: str, patient: Patient
) -> list[dict[str, Any]]:
    if channel not in CHANNELS:
        return [{"field": "channel", "message": "Choose how you tried to reach the patient."}]
    if result == AttemptResult.WRONG_NUMBER and channel not in PHONE_CHANNELS:
        return [
            {
                "field": "channel",
                "message": "A wrong number is a phone result: choose mobile or landline.",
            }
        ]
    if result in VOICE_RESULTS and channel not in VOICE_CHANNELS:
        return [
            {
                "field": "channel",
                "message": "A text, email or letter is sent, not rung: choose Sent, or a phone.",
            }
        ]
    if result == AttemptResult.SENT and channel not in WRITTEN_CHANNELS:
        return [{"field": "channel", "message": "Sent goes with a text, an email or a letter."}]
    if result == AttemptResult.ANSWERED and channel == "letter":
        return [{"field": "result", "message": "A letter cannot be answered: choose Sent."}]
    if channel == "mobile" and not patient.mobile_phone:
        return [{"field": "channel", "message": "The patient has no mobile number recorded."}]
    if channel == "landline" and not patient.landline_phone:
        return [{"field": "channel", "message": "The patient has no landline number recorded."}]
    return []


def callback_problems(
    settings: Settings, callback_at: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    """Why a callback time the patient asked for cannot be used (empty when it can): it must
    be later than now and inside the navigators' working hours, in local time."""
    calendar = settings.calendar
    opens, closes = f"{calendar.day_start_hour:02d}:00", f"{calendar.day_end_hour:02d}:00"
    if callback_at is None:
        return [
            {
                "field": "callback-time",
                "message": "Enter the time the patient asked for, e.g. 15:00",
            }
        ]
    if callback_at <= now:
        return [{"field": "callback-time", "message": "The callback time must be later than now."}]
    day = calendar.today(callback_at)
    if not calendar.is_working_day(day):
        return [
            {
                "field": "callback-date",
                "message": "Callbacks are made Monday to Friday: choose a working day.",
            }
        ]
    if not calendar.is_working_time(callback_at):
        return [
            {
                "field": "callback-time",
                "message": f"The callback time must be between {opens} and {closes}, "
                "when navigators are working.",
            }
        ]
    if day > calendar.add_working_days(calendar.today(now), 10):
        return [
            {
                "field": "callback-date",
                "message": "A callback can be at most two working weeks ahead.",
            }
        ]
    return []


def _first_phone(patient: Patient) -> str:
    if patient.mobile_phone and not patient.mobile_phone_invalid:
        return "mobile"
    if patient.landline_phone and not patient.landline_phone_invalid:
        return "landline"
    return "mobile" if patient.mobile_phone else "landline"


def _usable_phone(patient: Patient) -> bool:
    return bool(
        (patient.mobile_phone and not patient.mobile_phone_invalid)
        or (patient.landline_phone and not patient.landline_phone_invalid)
    )


def _back_to_queue(call: Call, at: datetime) -> None:
    call.status = CallStatus.RETRY
    call.next_attempt_at = at
    call.taken_by = None
    call.lease_expires_at = None


def record_attempt(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    result: AttemptResult,
    channel: str | None = None,
    now: datetime,
    callback_at: datetime | None = None,
) -> Call:
    """Record one attempt to reach the patient.

    Answered keeps the call with the navigator. A miss (no answer, voicemail, someone else
    answered) schedules a retry, or closes the call unreachable after the last attempt. "Call
    me back at 3pm" brings the call back at the time asked for. A text, email or letter sent
    brings the call back the next working morning, to look for the reply. A wrong number flags
    that phone; when no usable phone is left the call closes unreachable and a "send a letter"
    task is opened, so the patient still has a way to hear from the team.
    """
    call = _held_call(session, call_id, user_id, now)
    patient = session.get_one(Patient, call.patient_id)
    # Not given: the phone a navigator rings first (mobile, then landline).
    channel = channel or _first_phone(patient)
    problems = _channel_problems(result, channel, patient)
    if result == AttemptResult.CALL_BACK:
        problems += callback_problems(settings, callback_at, now)
    if problems:
        raise InvalidInputError("The attempt was not saved.", details=problems)
    call.attempts += 1
    session.add(
        CallAttempt(
            call_id=call.id,
            number=call.attempts,
            result=result,
            channel=channel,
            attempted_at=now,
            attempted_by=user_id,
            callback_at=callback_at if result == AttemptResult.CALL_BACK else None,
        )
    )
    if result == AttemptResult.ANSWERED:
        call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
        session.flush()
        return call
    if result == AttemptResult.CALL_BACK and callback_at is not None:
        _back_to_queue(call, callback_at)
    elif result == AttemptResult.WRONG_NUMBER:
        _flag_wrong_number(session, settings, call, patient, channel, now)
        if not _usable_phone(patient):
            _finish_unreachable(session, call, user_id, now)
            open_letter_task(session, call, now=now, why="no phone number on record reaches them")
    if call.status == CallStatus.IN_PROGRESS:
        if call.attempts >= settings.calls_max_attempts:
            _finish_unreachable(session, call, user_id, now)
        elif result == AttemptResult.SENT:
            _back_to_queue(call, settings.calendar.next_working_morning(now))
        else:
            day_start = settings.calendar.day_start(settings.calendar.today(now))
            earlier_today = session.scalar(
                select(func.count(CallAttempt.id)).where(
                    CallAttempt.call_id == call.id, CallAttempt.attempted_at >= day_start
                )
            )
            _back_to_queue(call, retry_at(settings, now, (earlier_today or 0) + 1))
    session.flush()
    logger.info("call %s attempt %s: %s", call.id, call.attempts, result.value)
    return call


def open_letter_task(session: Session, call: Call, *, now: datetime, why: str) -> NavigatorTask:
    """A "send a letter" task for the patient of a call that cannot be made by phone."""
    return tasks_service.open_task(
        session,
        kind=TaskKind.SEND_LETTER,
        patient_id=call.patient_id,
        source="call",
        source_ref=f"{call.id}:letter",
        detail=f"Send a letter about the upcoming appointment(s) of call {call.id}: {why}.",
        now=now,
        call_id=call.id,
    )


def record_identity(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    confirmed: bool,
    now: datetime,
) -> Call:
    """The identity check on the answered attempt (name and date of birth, as the SOP says).

    Not confirmed never marks the number wrong (the patient may simply not have been the one
    who answered, or may not have wanted to give their details): the call goes back to the
    queue for another try, and nothing about the appointments is recorded.
    """
    call = _held_call(session, call_id, user_id, now)
    attempt = session.scalar(
        select(CallAttempt)
        .where(CallAttempt.call_id == call.id)
        .order_by(CallAttempt.number.desc())
        .limit(1)
    )
    if attempt is None or attempt.result != AttemptResult.ANSWERED:
        raise InvalidInputError(
            "The identity check was not saved.",
            details=[{"field": "identity", "message": "Record the answered attempt first."}],
        )
    if attempt.identity is not None:
        raise ConflictError("The identity check for this attempt is already recorded.")
    attempt.identity = Identity.CONFIRMED if confirmed else Identity.NOT_CONFIRMED
    if not confirmed:
        day_start = settings.calendar.day_start(settings.calendar.today(now))
        earlier_today = session.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.call_id == call.id, CallAttempt.attempted_at >= day_start
            )
        )
        if call.attempts >= settings.calls_max_attempts:
            _finish_unreachable(session, call, user_id, now)
        else:
            _back_to_queue(call, retry_at(settings, now, earlier_today or 1))
    session.flush()
    logger.info("call %s identity %s", call.id, attempt.identity)
    return call


def add_note(session: Session, *, call_id: int, user_id: int, body: str, now: datetime) -> CallNote:
    """A free-text note on a call (patient data: never logged, only its length is)."""
    call = get_call(session, call_id)
    text = body.strip()
    if not text or len(text) > NOTE_MAX_CHARS:
        raise InvalidInputError(
            "The note was not saved.",
            details=[
                {
                    "field": "note",
                    "message": "Enter the note"
                    if not text
                    else f"The note must be {NOTE_MAX_CHARS} characters or fewer",
                }
            ],
        )
    note = CallNote(call_id=call.id, body=text, written_by=user_id, written_at=now)
    session.add(note)
    session.flush()
    logger.info("call %s: note of %s characters added", call.id, len(text))
    return note


def notes_of(session: Session, call_ids: list[int]) -> dict[int, list[CallNote]]:
    result: dict[int, list[CallNote]] = {call_id: [] for call_id in call_ids}
    if call_ids:
        for note in session.scalars(
            select(CallNote).where(CallNote.call_id.in_(call_ids)).order_by(CallNote.id)
        ):
            result[note.call_id].append(note)
    return result


def _flag_wrong_number(
    session: Session, settings: Settings, call: Call, patient: Patient, phone: str, now: datetime
) -> None:
    if phone == "landline":
        patient.landline_phone_invalid = True
    else:
        patient.mobile_phone_invalid = True
    # One task per patient per day, however many numbers or messages turned out wrong.
    tasks_service.open_wrong_number_task(
        session,
        patient_id=patient.id,
        day=settings.calendar.today(now),
        detail=f"Wrong number: the {phone} number on record did not reach the patient "
        f"(call {call.id}). Find a correct number.",
        now=now,
        call_id=call.id,
    )


def _interpreter_language(typed: str | None) -> str | None:
    """The ISO code of a language chosen or typed by name ("Polish") or code ("pl")."""
    code = languages.language_code(typed)
    if code is None and typed and LANGUAGE_CODE.match(typed.strip().lower()):
        code = typed.strip().lower()
    return code


# --- outcomes --------------------------------------------------------------------------------


def _has_answered(session: Session, call_id: int) -> bool:
    return (
        session.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.call_id == call_id,
                CallAttempt.result == AttemptResult.ANSWERED,
                or_(
                    CallAttempt.identity.is_(None),
                    CallAttempt.identity != Identity.NOT_CONFIRMED,
                ),
            )
        )
        or 0
    ) > 0


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _slot_problems(
    settings: Settings, field: str, start_at: datetime, now: datetime
) -> list[dict[str, Any]]:
    """Why a rebooking slot is not one a booking clerk would accept (empty when it is): in
    the past, beyond the horizon, on a day without clinics or outside clinic hours, all in
    the trust's local time."""
    calendar = settings.calendar
    local = calendar.local(start_at)
    day_field, time_field = f"{field}.new_start_at", f"{field}.new_start_at.time"
    if start_at <= now:
        return [{"field": day_field, "message": "The new appointment date must be in the future."}]
    horizon = calendar.today(now) + timedelta(weeks=settings.calls_rebook_horizon_weeks)
    if local.date() > horizon:
        return [
            {
                "field": day_field,
                "message": f"The new appointment date must be within "
                f"{settings.calls_rebook_horizon_weeks} weeks, by "
                f"{horizon.strftime('%-d %B %Y')}.",
            }
        ]
    if local.weekday() not in settings.calls_rebook_weekdays:
        days = ", ".join(WEEKDAY_NAMES[day] for day in sorted(settings.calls_rebook_weekdays))
        return [
            {
                "field": day_field,
                "message": f"The new appointment date is a {WEEKDAY_NAMES[local.weekday()]}: "
                f"clinics run on {days}.",
            }
        ]
    opens, closes = settings.calls_rebook_opens, settings.calls_rebook_closes
    if not opens <= local.time().replace(tzinfo=None) < closes:
        return [
            {
                "field": time_field,
                "message": f"The new appointment time must be between {opens:%H:%M} and "
                f"{closes:%H:%M}, when clinics run.",
            }
        ]
    return []


def _validate_outcomes(
    session: Session,
    settings: Settings,
    call: Call,
    items: list[OutcomeIn],
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[int, Appointment], dict[str, Clinic]]:
    """Field-level problems (empty when valid), the appointments and clinics referred to."""
    errors: list[dict[str, Any]] = []
    if not items:
        errors.append({"field": "outcomes", "message": "Record at least one outcome."})
        return errors, {}, {}
    upcoming = {
        appointment.id: appointment
        for appointment in session.scalars(
            select(Appointment).where(
                Appointment.patient_id == call.patient_id,
                Appointment.start_at >= now - timedelta(days=1),
            )
        )
    }
    covered = covered_appointment_ids(session, call.id)
    answered = _has_answered(session, call.id)
    kinds = [item.kind for item in items]
    if OutcomeKind.UNREACHABLE in kinds:
        if len(items) > 1:
            errors.append(
                {"field": "outcomes", "message": "Unreachable cannot go with other outcomes."}
            )
        if answered:
            errors.append(
                {
                    "field": "outcomes",
                    "message": "The patient answered this call, so it is not unreachable.",
                }
            )
    elif not answered:
        errors.append(
            {
                "field": "outcomes",
                "message": "Record the answered attempt before the outcomes of the call.",
            }
        )
    existing = list(session.scalars(select(CallOutcome).where(CallOutcome.call_id == call.id)))
    decisions: dict[int, str] = {
        outcome.appointment_id: outcome.kind
        for outcome in existing
        if outcome.kind in APPOINTMENT_DECISIONS and outcome.appointment_id is not None
    }
    support_seen = any(outcome.kind in SUPPORT_KINDS for outcome in existing)
    declined_seen = any(outcome.kind == OutcomeKind.DECLINED_HELP for outcome in existing)
    clinics: dict[str, Clinic] = {}
    for index, item in enumerate(items):
        field = f"outcomes[{index}]"
        appointment_id = item.appointment_id
        if appointment_id is None and item.kind in APPOINTMENT_DECISIONS and len(covered) == 1:
            appointment_id = covered[0]
            item.appointment_id = appointment_id
        if item.kind in APPOINTMENT_DECISIONS and appointment_id is None:
            errors.append(
                {"field": f"{field}.appointment_id", "message": "Choose the appointment."}
            )
        if appointment_id is not None:
            appointment = upcoming.get(appointment_id)
            if appointment is None:
                errors.append(
                    {
                        "field": f"{field}.appointment_id",
                        "message": "That is not one of this patient's upcoming appointments.",
                    }
                )
            elif item.kind in APPOINTMENT_DECISIONS:
                if appointment.attendance_code != NOT_YET_KNOWN:
                    errors.append(
                        {
                            "field": f"{field}.appointment_id",
                            "message": "That appointment is no longer booked.",
                        }
                    )
                earlier = decisions.get(appointment_id)
                if earlier is not None:
                    errors.append(
                        {
                            "field": f"{field}.kind",
                            "message": f"This appointment is already recorded as {earlier}; "
                            f"it cannot also be {item.kind.value}.",
                        }
                    )
                decisions[appointment_id] = item.kind
        if item.kind == OutcomeKind.REBOOKED:
            if item.new_start_at is None:
                errors.append(
                    {"field": f"{field}.new_start_at", "message": "Enter the new date and time."}
                )
            elif item.new_start_at.tzinfo is None:
                errors.append(
                    {
                        "field": f"{field}.new_start_at",
                        "message": "Give the new time with its time zone offset.",
                    }
                )
            else:
                errors.extend(_slot_problems(settings, field, item.new_start_at, now))
            if item.clinic_code:
                clinic = session.scalar(select(Clinic).where(Clinic.code == item.clinic_code))
                if clinic is None:
                    errors.append(
                        {"field": f"{field}.clinic_code", "message": "No clinic with that code."}
                    )
                else:
                    clinics[item.clinic_code] = clinic
        elif item.new_start_at is not None:
            errors.append(
                {
                    "field": f"{field}.new_start_at",
                    "message": "A new date and time only goes with a rebooking.",
                }
            )
        if item.kind == OutcomeKind.SPOKEN_INTERPRETER:
            code = _interpreter_language(item.language)
            if code is None:
                errors.append(
                    {
                        "field": f"{field}.language",
                        "message": "Choose the interpreter's language from the list, or type "
                        "its name, for example Polish.",
                    }
                )
            else:
                item.language = code
        if item.kind == OutcomeKind.OTHER_ADJUSTMENT and not (item.text and item.text.strip()):
            errors.append({"field": f"{field}.text", "message": "Describe the adjustment."})
        if item.kind in SUPPORT_KINDS:
            support_seen = True
        if item.kind == OutcomeKind.DECLINED_HELP:
            declined_seen = True
    if support_seen and declined_seen:
        errors.append(
            {
                "field": "outcomes",
                "message": "Declined help cannot go with support that was arranged.",
            }
        )
    return errors, upcoming, clinics


def record_outcomes(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    outcomes: list[OutcomeIn],
    now: datetime,
    correcting: Call | None = None,
) -> list[CallOutcome]:
    """Validate every outcome first (saving nothing on any problem), then apply them all.

    `correcting` is a completed call whose outcomes are being corrected the same day (checked
    by `app.calls.day.correctable_call`); otherwise the navigator must hold the call.
    """
    call = correcting if correcting is not None else _held_call(session, call_id, user_id, now)
    errors, appointments, clinics = _validate_outcomes(session, settings, call, outcomes, now)
    if errors:
        raise InvalidInputError("The outcomes were not saved.", details=errors)
    if outcomes[0].kind == OutcomeKind.UNREACHABLE:  # validated: then it is the only one
        saved = [_finish_unreachable(session, call, user_id, now)]
        session.flush()
        return saved
    saved = []
    for item in outcomes:
        detail: dict[str, Any] = {}
        appointment = appointments.get(item.appointment_id) if item.appointment_id else None
        if item.kind == OutcomeKind.REBOOKED and appointment is not None:
            # A request to the booking team, never a booking of Navigator's own: the PAS
            # books it, and reconciliation confirms it to the patient (app/bookings).
            request = bookings_service.request_rebook(
                session,
                appointment=appointment,
                preferred_start_at=item.new_start_at,
                clinic=clinics.get(item.clinic_code or ""),
                reason=item.text,
                call_id=call.id,
                user_id=user_id,
                now=now,
            )
            detail = {
                "booking_request_id": request.id,
                "requested_start_at": item.new_start_at.astimezone(UTC).isoformat()
                if item.new_start_at
                else None,
                "requested": True,
            }
        elif item.kind == OutcomeKind.CANCELLED and appointment is not None:
            request = bookings_service.request_cancel(
                session,
                appointment=appointment,
                reason=item.text,
                call_id=call.id,
                user_id=user_id,
                now=now,
            )
            detail = {"booking_request_id": request.id, "requested": True}
        elif item.kind == OutcomeKind.SPOKEN_INTERPRETER:
            detail = {"language": item.language or ""}
        elif item.kind == OutcomeKind.OTHER_ADJUSTMENT:
            detail = {"text": (item.text or "").strip()}
        outcome = CallOutcome(
            call_id=call.id,
            appointment_id=item.appointment_id,
            kind=item.kind,
            detail=detail,
            recorded_by=user_id,
            recorded_at=now,
        )
        session.add(outcome)
        saved.append(outcome)
    if correcting is None:
        call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
    session.flush()
    _after_outcomes(session, settings, call, saved)
    logger.info("call %s: %s outcomes recorded", call.id, len(outcomes))
    return saved


def _after_outcomes(
    session: Session, settings: Settings, call: Call, outcomes: list[CallOutcome]
) -> None:
    """Queue the SMS confirmation of arranged support in the caller's transaction; the
    dispatcher sends it only after the request commits, so a rolled-back outcome never texts
    the patient. Patients without an SMS channel get nothing (`queue_confirmation` returns
    None): the navigator spoke to them. Rebookings and cancellations are confirmed later, when
    the PAS has made them (`app.bookings.service.reconcile`), with the PAS's own time.
    """
    support = [outcome for outcome in outcomes if outcome.kind in SUPPORT_KINDS]
    if not support:
        return
    # The appointment the support is for: the outcome's own, else the first one this call
    # covers that is still booked.
    target = next((o.appointment_id for o in support if o.appointment_id is not None), None)
    if target is None:
        for appointment_id in covered_appointment_ids(session, call.id):
            appointment = session.get_one(Appointment, appointment_id)
            if appointment.attendance_code == NOT_YET_KNOWN:
                target = appointment_id
                break
    if target is not None:
        sms_service.queue_confirmation(
            session,
            appointment_id=target,
            kind=MessageKind.CONFIRM_SUPPORT,
            timezone=settings.timezone,
        )


def complete_call(session: Session, *, call_id: int, user_id: int, now: datetime) -> Call:
    """Close a reached call; it needs an answered attempt and at least one outcome."""
    call = _held_call(session, call_id, user_id, now)
    problems = []
    if not _has_answered(session, call.id):
        problems.append(
            {
                "field": "attempts",
                "message": "Record the answered attempt (or the unanswered ones) first.",
            }
        )
    if not session.scalar(select(func.count(CallOutcome.id)).where(CallOutcome.call_id == call.id)):
        problems.append({"field": "outcomes", "message": "Record at least one outcome."})
    if problems:
        raise InvalidInputError("The call cannot be completed yet.", details=problems)
    call.status = CallStatus.COMPLETED
    call.completed_by = user_id
    call.completed_at = now
    call.lease_expires_at = None
    _write_contacts(session, call, reached=True, now=now)
    session.flush()
    return call


# --- reading ---------------------------------------------------------------------------------


def _attempts(session: Session, call_id: int) -> list[AttemptOut]:
    rows = session.scalars(
        select(CallAttempt).where(CallAttempt.call_id == call_id).order_by(CallAttempt.number)
    )
    return [AttemptOut.model_validate(row) for row in rows]


def _outcomes(session: Session, call_id: int) -> list[OutcomeOut]:
    rows = session.scalars(
        select(CallOutcome).where(CallOutcome.call_id == call_id).order_by(CallOutcome.id)
    )
    return [OutcomeOut.model_validate(row) for row in rows]


def _corrections(session: Session, call_id: int) -> list[OutcomeChangeOut]:
    rows = session.scalars(
        select(CallOutcomeChange)
        .where(CallOutcomeChange.call_id == call_id)
        .order_by(CallOutcomeChange.id)
    )
    return [OutcomeChangeOut.model_validate(row) for row in rows]


def _rendered(document: CallDocument) -> RenderedDocument:
    return RenderedDocument(
        id=document.id,
        slug=document.slug,
        version=document.version,
        title=document.title,
        html=documents.render_markdown(document.body),
    )


def get_call(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFoundError("No call with that id.")
    return call


def call_detail(session: Session, *, call_id: int, now: datetime) -> CallDetail:
    """What the navigator needs for the call; records the script and SOP versions shown."""
    call = get_call(session, call_id)
    patient = session.get_one(Patient, call.patient_id)
    covered = set(covered_appointment_ids(session, call.id))
    rows = session.execute(
        select(Appointment, Clinic, RiskScore)
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .outerjoin(RiskScore, RiskScore.appointment_id == Appointment.id)
        .where(
            Appointment.patient_id == patient.id,
            or_(
                and_(Appointment.start_at >= now, Appointment.attendance_code == NOT_YET_KNOWN),
                Appointment.id.in_(covered),
            ),
        )
        .order_by(Appointment.start_at)
    ).all()
    appointments = [
        AppointmentOnCall(
            id=appointment.id,
            start_at=appointment.start_at,
            clinic_code=clinic.code,
            site=clinic.site,
            specialty=specialty_name(clinic.specialty_code),
            sensitive=clinic.sensitive,
            covered_by_this_call=appointment.id in covered,
            # Band and plain-words reasons only: the raw probability is never shown.
            risk_band=score.band if score is not None else None,
            risk_reasons=list(score.reasons) if score is not None else [],
            cancelled_in_pas_since_queued=appointment.attendance_code in CANCELLED_CODES
            and appointment.outcome_recorded_at is not None
            and appointment.outcome_recorded_at > call.created_at,
        )
        for appointment, clinic, score in rows
    ]
    reasons = sorted(
        {
            reason
            for assignment_reasons in session.scalars(
                select(CallAssignment.reasons).where(CallAssignment.call_id == call.id)
            )
            for reason in assignment_reasons
        }
    )
    if call.documents_shown:
        by_id = {
            document.id: document
            for document in session.scalars(
                select(CallDocument).where(CallDocument.id.in_(call.documents_shown))
            )
        }
        shown = [by_id[document_id] for document_id in call.documents_shown]
        script, sop = shown[:-1], shown[-1]
    else:
        selection = documents.select_documents(
            session,
            patient=patient,
            specialty_codes=[
                clinic.specialty_code for _, clinic, _ in rows if clinic.specialty_code
            ],
            sensitive_clinic=any(clinic.sensitive for _, clinic, _ in rows),
        )
        call.documents_shown = selection.ids
        session.flush()
        script, sop = selection.script, selection.sop
    return CallDetail(
        call=CallSummary.model_validate(call),
        patient=PatientOnCall(
            id=patient.id,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            mobile_phone=patient.mobile_phone,
            landline_phone=patient.landline_phone,
            mobile_phone_invalid=patient.mobile_phone_invalid,
            landline_phone_invalid=patient.landline_phone_invalid,
            preferred_language=patient.preferred_language,
            interpreter_needed=patient.interpreter_needed,
            communication_needs=patient.communication_need_list,
            learning_disability=patient.learning_disability,
            sms_opt_out=patient.sms_opt_out,
        ),
        eligibility_reasons=reasons,
        appointments=appointments,
        script=[_rendered(document) for document in script],
        sop=_rendered(sop),
        attempts=_attempts(session, call.id),
        outcomes=_outcomes(session, call.id),
        notes=[NoteOut.model_validate(note) for note in notes_of(session, [call.id])[call.id]],
        corrections=_corrections(session, call.id),
    )


def call_history(session: Session, *, call_id: int) -> CallHistory:
    call = get_call(session, call_id)
    return CallHistory(
        call=CallSummary.model_validate(call),
        attempts=_attempts(session, call.id),
        outcomes=_outcomes(session, call.id),
        notes=[NoteOut.model_validate(note) for note in notes_of(session, [call.id])[call.id]],
        corrections=_corrections(session, call.id),
    )


def _open_tasks(session: Session, limit: int = 50) -> tuple[int, list[TaskOut]]:
    total = (
        session.scalar(
            select(func.count(NavigatorTask.id)).where(NavigatorTask.status == TaskStatus.OPEN)
        )
        or 0
    )
    rows = session.scalars(
        select(NavigatorTask)
        .where(NavigatorTask.status == TaskStatus.OPEN)
        .order_by(NavigatorTask.created_at, NavigatorTask.id)
        .limit(limit)
    )
    return total, [TaskOut.model_validate(row) for row in rows]


def _day_calls(queue_date: date) -> Any:
    """The day's work: calls queued that day plus open calls carried from earlier days."""
    return or_(
        Call.queue_date == queue_date,
        and_(
            Call.queue_date < queue_date,
            Call.status.in_([CallStatus.READY, CallStatus.RETRY, CallStatus.IN_PROGRESS]),
        ),
    )


def _status_counts(session: Session, queue_date: date) -> dict[str, int]:
    counts = {status.value: 0 for status in CallStatus}
    for status, count in session.execute(
        select(Call.status, func.count(Call.id)).where(_day_calls(queue_date)).group_by(Call.status)
    ):
        counts[status] = count
    return counts


def my_counts(
    session: Session, settings: Settings, *, user_id: int, now: datetime
) -> dict[str, int]:
    """This navigator's own day so far: attempts made, calls completed, closed unreachable,
    and whether they are on a call now (the team's counts are the queue's)."""
    start, end = settings.calendar.day_bounds(settings.calendar.today(now))
    attempts = session.scalar(
        select(func.count(CallAttempt.id)).where(
            CallAttempt.attempted_by == user_id,
            CallAttempt.attempted_at >= start,
            CallAttempt.attempted_at < end,
        )
    )
    finished = dict(
        session.execute(
            select(Call.status, func.count(Call.id))
            .where(
                Call.completed_by == user_id, Call.completed_at >= start, Call.completed_at < end
            )
            .group_by(Call.status)
        ).all()
    )
    return {
        "attempts": attempts or 0,
        "completed": finished.get(CallStatus.COMPLETED, 0),
        "unreachable": finished.get(CallStatus.UNREACHABLE, 0),
        "in_progress": 1 if current_call(session, user_id, now) is not None else 0,
    }


def my_queue(
    session: Session,
    settings: Settings,
    *,
    user_id: int,
    queue_date: date | None = None,
    now: datetime,
) -> QueueView:
    """The navigator's view of a day: counts, callbacks due, the next call, open SMS tasks."""
    today = settings.calendar.today(now)
    queue_date = queue_date or today
    callbacks_due = (
        session.scalar(
            select(func.count(Call.id)).where(
                Call.status == CallStatus.RETRY, Call.next_attempt_at <= now
            )
        )
        or 0
    )
    next_id = _next_takeable_id(session, now, queue_date, lock=False)
    next_call = session.get(Call, next_id) if next_id is not None else None
    mine = current_call(session, user_id, now)
    total_tasks, tasks = _open_tasks(session)
    return QueueView(
        queue_date=queue_date,
        counts=_status_counts(session, queue_date),
        mine=my_counts(session, settings, user_id=user_id, now=now),
        callbacks_due=callbacks_due,
        next_call=CallSummary.model_validate(next_call) if next_call is not None else None,
        my_current_call=CallSummary.model_validate(mine) if mine is not None else None,
        open_tasks=total_tasks,
        tasks=tasks,
    )


def overview(session: Session, settings: Settings, *, queue_date: date, now: datetime) -> Overview:
    """The manager's view: capacity, every navigator's work, arms and outcome mix for a day."""
    window_start, window_end = call_window(settings, queue_date)
    assignments = dict.fromkeys([Arm.CALL.value, Arm.HOLDOUT.value], 0)
    for arm, count in session.execute(
        select(CallAssignment.arm, func.count(CallAssignment.id))
        .where(CallAssignment.queue_date == queue_date)
        .group_by(CallAssignment.arm)
    ):
        assignments[arm] = count
    waiting = (
        session.scalar(
            select(func.count(func.distinct(CallAssignment.patient_id)))
            .join(Appointment, Appointment.id == CallAssignment.appointment_id)
            .join(Patient, Patient.id == CallAssignment.patient_id)
            .where(
                CallAssignment.arm == Arm.CALL,
                CallAssignment.call_id.is_(None),
                # Patients without a phone get a letter task, not a call: not waiting.
                ~no_usable_phone(),
                Appointment.attendance_code == NOT_YET_KNOWN,
                Appointment.start_at >= window_start,
                Appointment.start_at < window_end,
            )
        )
        or 0
    )
    day_start, day_end = settings.calendar.day_bounds(queue_date)
    outcome_mix: dict[str, int] = {}
    for kind, count in session.execute(
        select(CallOutcome.kind, func.count(CallOutcome.id))
        .where(CallOutcome.recorded_at >= day_start, CallOutcome.recorded_at < day_end)
        .group_by(CallOutcome.kind)
    ):
        outcome_mix[kind] = count
    loads: dict[int, dict[str, int]] = {}
    for user, status, count in session.execute(
        select(func.coalesce(Call.completed_by, Call.taken_by), Call.status, func.count(Call.id))
        .where(
            or_(
                and_(Call.completed_at >= day_start, Call.completed_at < day_end),
                and_(Call.status == CallStatus.IN_PROGRESS, Call.lease_expires_at >= now),
            )
        )
        .group_by(func.coalesce(Call.completed_by, Call.taken_by), Call.status)
    ):
        if user is None:
            continue
        loads.setdefault(user, {"completed": 0, "unreachable": 0, "in_progress": 0})[status] = count
    total_tasks, _ = _open_tasks(session, limit=0)
    return Overview(
        queue_date=queue_date,
        capacity=settings.calls_navigators_on_duty * settings.calls_per_navigator_per_day,
        navigators_on_duty=settings.calls_navigators_on_duty,
        calls_per_navigator_per_day=settings.calls_per_navigator_per_day,
        calls_queued_today=session.scalar(
            select(func.count(Call.id)).where(Call.queue_date == queue_date)
        )
        or 0,
        counts=_status_counts(session, queue_date),
        assignments_today=assignments,
        call_arm_waiting_beyond_capacity=waiting,
        outcomes_today=outcome_mix,
        by_navigator=[
            NavigatorLoad(user_id=user, **counts) for user, counts in sorted(loads.items())
        ],
        open_tasks=total_tasks,
    )


# --- pages: tasks, callbacks, histories ------------------------------------------------------


def callbacks_due(session: Session, now: datetime, limit: int = 50) -> list[Call]:
    return list(
        session.scalars(
            select(Call)
            .where(Call.status == CallStatus.RETRY, Call.next_attempt_at <= now)
            .order_by(Call.next_attempt_at, Call.id)
            .limit(limit)
        )
    )


def outcomes_by_call(session: Session, call_ids: list[int]) -> dict[int, list[CallOutcome]]:
    result: dict[int, list[CallOutcome]] = {call_id: [] for call_id in call_ids}
    if call_ids:
        for outcome in session.scalars(
            select(CallOutcome).where(CallOutcome.call_id.in_(call_ids)).order_by(CallOutcome.id)
        ):
            result[outcome.call_id].append(outcome)
    return result


def calls_in_progress(session: Session, now: datetime) -> list[Call]:
    return list(
        session.scalars(
            select(Call)
            .where(Call.status == CallStatus.IN_PROGRESS, Call.lease_expires_at >= now)
            .order_by(Call.taken_at)
        )
    )
