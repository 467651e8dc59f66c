"""The day around the calls: handing a call back or to a colleague, correcting a completed
call the same day, tomorrow's list and a navigator's own counts.

Services flush and never commit; `app.calls.actions` adds the audit records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import User
from app.bookings import service as bookings_service
from app.bookings.tables import OPEN_STATUSES, BookingRequest, RequestStatus
from app.calls.service import current_call
from app.calls.tables import (
    Call,
    CallAttempt,
    CallOutcome,
    CallOutcomeChange,
    CallStatus,
    OutcomeChange,
)
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.settings import Settings

logger = logging.getLogger("navigator.calls")

OPEN = (CallStatus.READY, CallStatus.RETRY, CallStatus.IN_PROGRESS)


def _locked(session: Session, call_id: int) -> Call:
    call = session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if call is None:
        raise NotFoundError("No call with that id.")
    return call


# --- handing a call on -----------------------------------------------------------------------


def release_call(session: Session, *, call_id: int, user_id: int, now: datetime) -> Call:
    """Give a call this navigator holds back to the queue, untouched (a break, the end of a
    shift): a call never tried goes back to "to call", one already tried is due again now."""
    call = _locked(session, call_id)
    if call.status != CallStatus.IN_PROGRESS or call.taken_by != user_id:
        raise ConflictError("You are not holding this call, so there is nothing to release.")
    if call.attempts == 0:
        call.status = CallStatus.READY
        call.next_attempt_at = None
    else:
        call.status = CallStatus.RETRY
        call.next_attempt_at = now
    call.taken_by = None
    call.taken_at = None
    call.lease_expires_at = None
    session.flush()
    logger.info("call %s released by user %s", call.id, user_id)
    return call


def navigators(session: Session) -> list[User]:
    """Active navigator accounts, by username: who a manager can hand a call to."""
    return list(
        session.scalars(
            select(User)
            .where(User.role == Role.NAVIGATOR, User.active.is_(True))
            .order_by(User.username)
        )
    )


def reassign_call(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    to_user_id: int | None,
    now: datetime,
) -> tuple[Call, int | None]:
    """A manager hands an open call to a navigator: it becomes their current call (leased to
    them), whoever held it before. Returns the call and the previous holder."""
    target = session.get(User, to_user_id) if to_user_id is not None else None
    if target is None or not target.active or target.role != Role.NAVIGATOR:
        raise InvalidInputError(
            "The call was not reassigned.",
            details=[{"field": "navigator", "message": "Choose a navigator from the list"}],
        )
    call = _locked(session, call_id)
    if call.status not in OPEN:
        raise ConflictError("This call is finished, so it cannot be reassigned.")
    previous = call.taken_by if call.status == CallStatus.IN_PROGRESS else None
    if previous == target.id:
        raise ConflictError(f"{target.username} already holds this call.")
    busy = current_call(session, target.id, now)
    if busy is not None:
        raise ConflictError(
            f"{target.username} is on call {busy.id} now: reassign when they have finished it."
        )
    call.status = CallStatus.IN_PROGRESS
    call.taken_by = target.id
    call.taken_at = now
    call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
    session.flush()
    logger.info("call %s reassigned to user %s", call.id, target.id)
    return call, previous


# --- correcting a completed call the same day ------------------------------------------------


def correctable_call(
    session: Session, settings: Settings, *, call_id: int, user: User, now: datetime
) -> Call:
    """The completed call, locked, if this user may still correct its outcomes: whoever
    completed it (or a manager), on the same local day it was completed."""
    call = _locked(session, call_id)
    if call.status != CallStatus.COMPLETED or call.completed_at is None:
        raise ConflictError("Only a completed call's outcomes can be corrected.")
    if call.completed_by != user.id and not user.has_role(Role.MANAGER):
        raise ConflictError("Only the navigator who completed this call can correct it.")
    calendar = settings.calendar
    if calendar.today(call.completed_at) != calendar.today(now):
        raise ConflictError(
            "A call can only be corrected on the day it was completed. Nothing was changed: "
            "ask a manager to record the change."
        )
    return call


def can_correct(settings: Settings, call: Call, user: User, now: datetime) -> bool:
    """Whether the call screen should offer corrections (the same rule, without locking)."""
    return (
        call.status == CallStatus.COMPLETED
        and call.completed_at is not None
        and (call.completed_by == user.id or user.has_role(Role.MANAGER))
        and settings.calendar.today(call.completed_at) == settings.calendar.today(now)
    )


def undo_outcome(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    outcome_id: int,
    user: User,
    now: datetime,
) -> CallOutcomeChange:
    """Take back one outcome of a call completed today. The old version is kept in
    `call_outcome_changes`; a rebooking or cancellation asked of the booking team is withdrawn
    (refused once the PAS has made it). With no outcome left the call is reopened for this
    navigator, to record what really happened."""
    call = correctable_call(session, settings, call_id=call_id, user=user, now=now)
    outcome = session.get(CallOutcome, outcome_id)
    if outcome is None or outcome.call_id != call.id:
        raise NotFoundError("No outcome with that id on this call.")
    request_id = (outcome.detail or {}).get("booking_request_id")
    if request_id is not None:
        request = session.get(BookingRequest, int(request_id))
        if request is not None and request.status == RequestStatus.CONFIRMED:
            raise ConflictError(
                "The PAS has already made this change, so it cannot be undone here. "
                "Ask the booking team."
            )
        if request is not None and request.status in OPEN_STATUSES:
            bookings_service.withdraw(
                session,
                request.id,
                user_id=user.id,
                note="Undone by the navigator: recorded in error on the call.",
                now=now,
            )
    change = CallOutcomeChange(
        call_id=call.id,
        outcome_id=outcome.id,
        change=OutcomeChange.UNDONE,
        old_kind=outcome.kind,
        old_appointment_id=outcome.appointment_id,
        old_detail=dict(outcome.detail or {}),
        old_recorded_by=outcome.recorded_by,
        old_recorded_at=outcome.recorded_at,
        changed_by=user.id,
        changed_at=now,
    )
    session.add(change)
    session.delete(outcome)
    session.flush()
    left = session.scalar(select(func.count(CallOutcome.id)).where(CallOutcome.call_id == call.id))
    if not left:
        call.status = CallStatus.IN_PROGRESS
        call.taken_by = user.id
        call.taken_at = now
        call.completed_by = None
        call.completed_at = None
        call.lease_expires_at = now + timedelta(minutes=settings.calls_lease_minutes)
        session.flush()
    logger.info("call %s: outcome %s undone", call.id, outcome_id)
    return change


def changes_of(session: Session, call_ids: list[int]) -> dict[int, list[CallOutcomeChange]]:
    result: dict[int, list[CallOutcomeChange]] = {call_id: [] for call_id in call_ids}
    if call_ids:
        for change in session.scalars(
            select(CallOutcomeChange)
            .where(CallOutcomeChange.call_id.in_(call_ids))
            .order_by(CallOutcomeChange.id)
        ):
            result[change.call_id].append(change)
    return result


# --- tomorrow and my counts -----------------------------------------------------------------


@dataclass(frozen=True)
class TomorrowItem:
    call_id: int
    patient_id: int
    due_at: datetime | None
    attempts: int
    callback_asked: bool


def tomorrow_list(
    session: Session, settings: Settings, *, now: datetime
) -> tuple[date, list[TomorrowItem]]:
    """The next working day's known work, read only: callbacks due that day (those the patient
    asked for marked) and calls already queued for it, in the order they fall due."""
    calendar = settings.calendar
    day = calendar.next_working_day(calendar.today(now))
    start, end = calendar.day_bounds(day)
    calls = list(
        session.scalars(
            select(Call)
            .where(
                or_(
                    and_(
                        Call.status == CallStatus.RETRY,
                        Call.next_attempt_at >= start,
                        Call.next_attempt_at < end,
                    ),
                    and_(Call.status == CallStatus.READY, Call.queue_date == day),
                )
            )
            .order_by(Call.next_attempt_at, Call.priority.desc(), Call.id)
        )
    )
    asked: set[int] = set()
    if calls:
        last = (
            select(CallAttempt.call_id, func.max(CallAttempt.number).label("number"))
            .where(CallAttempt.call_id.in_([call.id for call in calls]))
            .group_by(CallAttempt.call_id)
            .subquery()
        )
        asked = set(
            session.scalars(
                select(CallAttempt.call_id)
                .join(
                    last,
                    and_(
                        last.c.call_id == CallAttempt.call_id, last.c.number == CallAttempt.number
                    ),
                )
                .where(CallAttempt.callback_at.is_not(None))
            )
        )
    return day, [
        TomorrowItem(
            call_id=call.id,
            patient_id=call.patient_id,
            due_at=call.next_attempt_at,
            attempts=call.attempts,
            callback_asked=call.id in asked,
        )
        for call in calls
    ]
