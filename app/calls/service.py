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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentChange, AppointmentContact, Clinic
from app.calls import documents
from app.calls.queue import call_window
from app.calls.schemas import (
    AppointmentOnCall,
    AttemptOut,
    CallDetail,
    CallHistory,
    CallSummary,
    NavigatorLoad,
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
    CallOutcome,
    CallStatus,
    OutcomeKind,
)
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN, specialty_name
from app.risk.tables import RiskScore
from app.settings import Settings
from app.sms import service as sms_service
from app.sms.tables import MessageKind
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
        call_id = session.scalar(query.with_for_update(skip_locked=True) if lock else query)
        if call_id is not None:
            return int(call_id)
    return None


def local_today(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.timezone)).date()


def current_call(session: Session, user_id: int, now: datetime) -> Call | None:
    return session.scalar(
        select(Call)
        .where(
            Call.status == CallStatus.IN_PROGRESS,
            Call.taken_by == user_id,
            Call.lease_expires_at >= now,
        )
        .order_by(Call.taken_at)
        .limit(1)
    )


def take_next_call(
    session: Session, settings: Settings, *, user_id: int, now: datetime | None = None
) -> Call | None:
    """The navigator's current call, else the next one claimed; None when the queue is empty."""
    now = now or datetime.now(UTC)
    mine = current_call(session, user_id, now)
    if mine is not None:
        return mine
    today = local_today(settings, now)
    lease_until = now + timedelta(minutes=settings.calls_lease_minutes)
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
    if call.status != CallStatus.IN_PROGRESS or call.taken_by != user_id:
        raise ConflictError(
            "You no longer hold this call (it was returned to the queue or taken by someone "
            "else). Nothing was saved; take the next call."
        )
    return call


# --- attempts and retries --------------------------------------------------------------------


def _next_working_morning(settings: Settings, local: datetime) -> datetime:
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:  # navigators work Monday to Friday
        day += timedelta(days=1)
    return datetime.combine(day, time(settings.calls_day_start_hour), local.tzinfo)


def retry_at(settings: Settings, now: datetime, attempts_today: int) -> datetime:
    """First miss of the day: later today after the delay; otherwise the next working morning."""
    zone = ZoneInfo(settings.timezone)
    local_now = now.astimezone(zone)
    later = (now + timedelta(minutes=settings.calls_retry_delay_minutes)).astimezone(zone)
    end_of_day = datetime.combine(local_now.date(), time(0), zone) + timedelta(
        hours=settings.calls_day_end_hour
    )
    if attempts_today <= 1 and later <= end_of_day and later.date() == local_now.date():
        return later.astimezone(UTC)
    return _next_working_morning(settings, local_now).astimezone(UTC)


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
    for appointment_id in covered_appointment_ids(session, call.id):
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


def record_attempt(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    result: AttemptResult,
    channel: str = "mobile",
    now: datetime | None = None,
) -> Call:
    """Record one dialling attempt; a miss schedules a retry or closes the call unreachable."""
    now = now or datetime.now(UTC)
    if result == AttemptResult.WRONG_NUMBER and channel not in PHONE_CHANNELS:
        raise InvalidInputError(
            "A wrong number is a phone result.",
            details=[{"field": "channel", "message": "Choose mobile or landline."}],
        )
    call = _held_call(session, call_id, user_id, now)
    patient = session.get_one(Patient, call.patient_id)
    call.attempts += 1
    session.add(
        CallAttempt(
            call_id=call.id,
            number=call.attempts,
            result=result,
            channel=channel,
            attempted_at=now,
            attempted_by=user_id,
        )
    )
    if result == AttemptResult.ANSWERED:
        call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
        session.flush()
        return call
    if result == AttemptResult.WRONG_NUMBER:
        _flag_wrong_number(session, call, patient, channel)
    usable = (patient.mobile_phone and not patient.mobile_phone_invalid) or (
        patient.landline_phone and not patient.landline_phone_invalid
    )
    if call.attempts >= settings.calls_max_attempts or not usable:
        _finish_unreachable(session, call, user_id, now)
    else:
        today = local_today(settings, now)
        zone = ZoneInfo(settings.timezone)
        earlier_today = session.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.call_id == call.id,
                CallAttempt.attempted_at >= datetime.combine(today, time(0), zone),
            )
        )
        call.status = CallStatus.RETRY
        call.next_attempt_at = retry_at(settings, now, (earlier_today or 0) + 1)
        call.taken_by = None
        call.lease_expires_at = None
    session.flush()
    logger.info("call %s attempt %s: %s", call.id, call.attempts, result.value)
    return call


def _flag_wrong_number(session: Session, call: Call, patient: Patient, phone: str) -> None:
    if phone == "landline":
        patient.landline_phone_invalid = True
    else:
        patient.mobile_phone_invalid = True
    ref = f"{call.id}:{phone}"
    exists = session.scalar(
        select(NavigatorTask.id).where(
            NavigatorTask.source == "call",
            NavigatorTask.source_ref == ref,
            NavigatorTask.kind == TaskKind.DATA_QUALITY,
        )
    )
    if exists is None:
        session.add(
            NavigatorTask(
                kind=TaskKind.DATA_QUALITY,
                status=TaskStatus.OPEN,
                patient_id=patient.id,
                source="call",
                source_ref=ref,
                detail=f"Wrong number: the {phone} number on record did not reach the patient "
                f"(call {call.id}). Find a correct number.",
            )
        )


# --- outcomes --------------------------------------------------------------------------------


def _has_answered(session: Session, call_id: int) -> bool:
    return (
        session.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.call_id == call_id, CallAttempt.result == AttemptResult.ANSWERED
            )
        )
        or 0
    ) > 0


def _validate_outcomes(
    session: Session,
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
            elif item.new_start_at <= now:
                errors.append(
                    {
                        "field": f"{field}.new_start_at",
                        "message": "The new date and time must be in the future.",
                    }
                )
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
        if item.kind == OutcomeKind.SPOKEN_INTERPRETER and not (
            item.language and LANGUAGE_CODE.match(item.language.strip().lower())
        ):
            errors.append(
                {
                    "field": f"{field}.language",
                    "message": "Enter the interpreter's language as an ISO 639-1 code, e.g. pl.",
                }
            )
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
    now: datetime | None = None,
) -> list[CallOutcome]:
    """Validate every outcome first (saving nothing on any problem), then apply them all."""
    now = now or datetime.now(UTC)
    call = _held_call(session, call_id, user_id, now)
    errors, appointments, clinics = _validate_outcomes(session, call, outcomes, now)
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
            replacement = _rebook(
                session,
                appointment,
                item.new_start_at or now,
                clinics.get(item.clinic_code or ""),
                now,
            )
            detail = {
                "new_appointment_id": replacement.id,
                "new_start_at": replacement.start_at.astimezone(UTC).isoformat(),
                "slot_freed": True,
            }
        elif item.kind == OutcomeKind.CANCELLED and appointment is not None:
            _cancel_by_patient(session, appointment, now)
            detail = {"slot_freed": True}
        elif item.kind == OutcomeKind.SPOKEN_INTERPRETER:
            detail = {"language": (item.language or "").strip().lower()}
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
    call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
    session.flush()
    _after_outcomes(session, settings, call, saved)
    logger.info("call %s: %s outcomes recorded", call.id, len(outcomes))
    return saved


def _change(session: Session, appointment: Appointment, field: str, old: str, new: str) -> None:
    session.add(
        AppointmentChange(
            appointment_id=appointment.id,
            source=NAVIGATOR_SOURCE,
            field=field,
            old_value=old,
            new_value=new,
        )
    )


def _cancel_by_patient(session: Session, appointment: Appointment, now: datetime) -> None:
    _change(session, appointment, "attendance_code", appointment.attendance_code, "2")
    appointment.attendance_code = CANCELLED_BY_PATIENT
    appointment.outcome_recorded_at = now


def _rebook(
    session: Session,
    old: Appointment,
    new_start_at: datetime,
    clinic: Clinic | None,
    now: datetime,
) -> Appointment:
    _cancel_by_patient(session, old, now)
    replacement = Appointment(
        pas_appointment_id=f"NAV-{old.id}",
        patient_id=old.patient_id,
        clinic_id=clinic.id if clinic is not None else old.clinic_id,
        booked_at=now,
        start_at=new_start_at,
        first_attendance=old.first_attendance,
        attendance_code=NOT_YET_KNOWN,
        replaces_appointment_id=old.id,
    )
    session.add(replacement)
    session.flush()
    return replacement


def _after_outcomes(
    session: Session, settings: Settings, call: Call, outcomes: list[CallOutcome]
) -> None:
    """Queue SMS confirmations in the caller's transaction: one per rebooked appointment (for
    the new booking) and one for arranged support. The dispatcher sends them only after the
    request commits, so a rolled-back outcome never texts the patient. Patients without an
    SMS channel get nothing (`queue_confirmation` returns None): the navigator spoke to them.
    """
    rebooked: dict[int, int] = {}
    for outcome in outcomes:
        if outcome.kind == OutcomeKind.REBOOKED and outcome.detail.get("new_appointment_id"):
            new_id = int(outcome.detail["new_appointment_id"])
            if outcome.appointment_id is not None:
                rebooked[outcome.appointment_id] = new_id
            sms_service.queue_confirmation(
                session,
                appointment_id=new_id,
                kind=MessageKind.CONFIRM_REBOOKED,
                timezone=settings.timezone,
            )
    support = [outcome for outcome in outcomes if outcome.kind in SUPPORT_KINDS]
    if not support:
        return
    # The appointment the support is for: the outcome's own, else the first one this call
    # covers that is still booked (its replacement when it was just rebooked).
    target = next((o.appointment_id for o in support if o.appointment_id is not None), None)
    if target is None:
        for appointment_id in covered_appointment_ids(session, call.id):
            appointment = session.get_one(Appointment, appointment_id)
            if appointment_id in rebooked:
                target = rebooked[appointment_id]
                break
            if appointment.attendance_code == NOT_YET_KNOWN:
                target = appointment_id
                break
    if target is not None:
        sms_service.queue_confirmation(
            session,
            appointment_id=rebooked.get(target, target),
            kind=MessageKind.CONFIRM_SUPPORT,
            timezone=settings.timezone,
        )


def complete_call(
    session: Session, *, call_id: int, user_id: int, now: datetime | None = None
) -> Call:
    """Close a reached call; it needs an answered attempt and at least one outcome."""
    now = now or datetime.now(UTC)
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


def call_detail(session: Session, *, call_id: int, now: datetime | None = None) -> CallDetail:
    """What the navigator needs for the call; records the script and SOP versions shown."""
    now = now or datetime.now(UTC)
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
    )


def call_history(session: Session, *, call_id: int) -> CallHistory:
    call = get_call(session, call_id)
    return CallHistory(
        call=CallSummary.model_validate(call),
        attempts=_attempts(session, call.id),
        outcomes=_outcomes(session, call.id),
    )


def patient_calls(session: Session, *, patient_id: int) -> list[CallSummary]:
    rows = session.scalars(
        select(Call).where(Call.patient_id == patient_id).order_by(Call.queue_date.desc())
    )
    return [CallSummary.model_validate(row) for row in rows]


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


def my_queue(
    session: Session,
    settings: Settings,
    *,
    user_id: int,
    queue_date: date | None = None,
    now: datetime | None = None,
) -> QueueView:
    """The navigator's view of a day: counts, callbacks due, the next call, open SMS tasks."""
    now = now or datetime.now(UTC)
    today = local_today(settings, now)
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
        callbacks_due=callbacks_due,
        next_call=CallSummary.model_validate(next_call) if next_call is not None else None,
        my_current_call=CallSummary.model_validate(mine) if mine is not None else None,
        open_tasks=total_tasks,
        tasks=tasks,
    )


def overview(
    session: Session, settings: Settings, *, queue_date: date, now: datetime | None = None
) -> Overview:
    """The manager's view: capacity, every navigator's work, arms and outcome mix for a day."""
    now = now or datetime.now(UTC)
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
            .where(
                CallAssignment.arm == Arm.CALL,
                CallAssignment.call_id.is_(None),
                Appointment.attendance_code == NOT_YET_KNOWN,
                Appointment.start_at >= window_start,
                Appointment.start_at < window_end,
            )
        )
        or 0
    )
    zone = ZoneInfo(settings.timezone)
    day_start = datetime.combine(queue_date, time(0), zone)
    day_end = day_start + timedelta(days=1)
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


def complete_task(
    session: Session, *, task_id: int, user_id: int, now: datetime | None = None
) -> NavigatorTask:
    """Mark a navigator task (an SMS reply that needs a person) done; done twice is refused."""
    task = session.scalar(
        select(NavigatorTask)
        .where(NavigatorTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if task is None:
        raise NotFoundError("No task with that id.")
    if task.status == TaskStatus.DONE:
        raise ConflictError("This task was already marked done. Nothing was changed.")
    task.status = TaskStatus.DONE
    task.completed_at = now or datetime.now(UTC)
    task.completed_by = user_id
    session.flush()
    return task


def callbacks_due(session: Session, now: datetime, limit: int = 50) -> list[Call]:
    return list(
        session.scalars(
            select(Call)
            .where(Call.status == CallStatus.RETRY, Call.next_attempt_at <= now)
            .order_by(Call.next_attempt_at, Call.id)
            .limit(limit)
        )
    )


def handled_by(session: Session, call: Call, user_id: int) -> bool:
    """Whether this navigator holds the call or has worked on it (attempt or outcome)."""
    if user_id in (call.taken_by, call.completed_by):
        return True
    attempted = session.scalar(
        select(func.count(CallAttempt.id)).where(
            CallAttempt.call_id == call.id, CallAttempt.attempted_by == user_id
        )
    )
    return bool(attempted)


def calls_of_navigator(session: Session, *, user_id: int, limit: int = 100) -> list[Call]:
    """Calls this navigator holds, completed or dialled, newest first."""
    attempted = select(CallAttempt.call_id).where(CallAttempt.attempted_by == user_id)
    return list(
        session.scalars(
            select(Call)
            .where(
                or_(
                    Call.completed_by == user_id,
                    Call.taken_by == user_id,
                    Call.id.in_(attempted),
                )
            )
            .order_by(func.coalesce(Call.completed_at, Call.taken_at).desc(), Call.id.desc())
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
