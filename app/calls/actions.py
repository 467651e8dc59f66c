"""What navigators and managers do to calls, each with its audit record.

The JSON API (`router.py`) and the pages (`pages.py`) both call these, so an action leaves the
same audit trail whichever way it was done: who viewed which patient, who took which call,
who recorded which outcome. The audit rows join the caller's transaction, so they stand or
fall with the change they describe.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.calls import documents, service
from app.calls.schemas import CallDetail, OutcomeIn
from app.calls.tables import AttemptResult, Call, CallDocument, CallOutcome, CallStatus
from app.settings import Settings
from app.tasks.tables import NavigatorTask


def _call_event(session: Session, user_id: int, action: str, call: Call, **detail: object) -> None:
    record_audit(
        session,
        user_id=user_id,
        action=action,
        patient_id=call.patient_id,
        detail={"call_id": call.id, **detail},
    )


def view_call(session: Session, *, call_id: int, user_id: int) -> CallDetail:
    """The call screen's content; the patient counts as viewed by this user."""
    detail = service.call_detail(session, call_id=call_id)
    record_audit(
        session,
        user_id=user_id,
        action="patient.viewed_via_call",
        patient_id=detail.patient.id,
        detail={"call_id": call_id},
    )
    return detail


def take_next(session: Session, settings: Settings, *, user_id: int) -> Call | None:
    call = service.take_next_call(session, settings, user_id=user_id)
    if call is not None:
        _call_event(session, user_id, "call.taken", call)
    return call


def record_attempt(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    result: AttemptResult,
    channel: str,
) -> Call:
    call = service.record_attempt(
        session, settings, call_id=call_id, user_id=user_id, result=result, channel=channel
    )
    _call_event(
        session, user_id, "call.attempt_recorded", call, result=result.value, channel=channel
    )
    return call


def record_outcomes(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user_id: int,
    outcomes: list[OutcomeIn],
    complete: bool,
) -> list[CallOutcome]:
    """Save the outcomes and, when asked and the call is still open, complete it: both or
    neither (the caller's transaction rolls back on an `InvalidInputError`)."""
    saved = service.record_outcomes(
        session, settings, call_id=call_id, user_id=user_id, outcomes=outcomes
    )
    call = service.get_call(session, call_id)
    for outcome in saved:
        record_audit(
            session,
            user_id=user_id,
            action="call.outcome_recorded",
            patient_id=call.patient_id,
            appointment_id=outcome.appointment_id,
            detail={"call_id": call_id, "outcome_id": outcome.id, "kind": outcome.kind},
        )
    if complete and call.status == CallStatus.IN_PROGRESS:
        complete_call(session, call_id=call_id, user_id=user_id)
    return saved


def complete_call(session: Session, *, call_id: int, user_id: int) -> Call:
    call = service.complete_call(session, call_id=call_id, user_id=user_id)
    _call_event(session, user_id, "call.completed", call)
    return call


def complete_task(session: Session, *, task_id: int, user_id: int) -> NavigatorTask:
    task = service.complete_task(session, task_id=task_id, user_id=user_id)
    record_audit(
        session,
        user_id=user_id,
        action="navigator_task.done",
        patient_id=task.patient_id,
        detail={"task_id": task.id},
    )
    return task


def edit_document(
    session: Session, *, slug: str, body: str, user_id: int, title: str | None = None
) -> CallDocument:
    document = documents.add_version(session, slug=slug, body=body, title=title, user_id=user_id)
    record_audit(
        session,
        user_id=user_id,
        action="call_document.edited",
        detail={"slug": document.slug, "version": document.version},
    )
    return document
