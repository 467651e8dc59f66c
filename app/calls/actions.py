"""What navigators and managers do to calls, each with its audit record.

The JSON API (`router.py`) and the pages (`pages.py`) both call these, so an action leaves the
same audit trail whichever way it was done: who viewed which patient, who took which call,
who recorded which outcome. The audit rows join the caller's transaction, so they stand or
fall with the change they describe.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.tables import User
from app.calls import day, documents, repository, service
from app.calls.schemas import CallDetail, CallHistory, CallSummary, OutcomeIn, QueueView
from app.calls.tables import (
    AttemptResult,
    Call,
    CallAttempt,
    CallDocument,
    CallNote,
    CallOutcome,
    CallOutcomeChange,
    CallStatus,
)
from app.errors import ConflictError, NotFoundError
from app.settings import Settings
from app.tasks import service as tasks_service
from app.tasks.tables import NavigatorTask


def _call_event(session: Session, user_id: int, action: str, call: Call, **detail: object) -> None:
    record_audit(
        session,
        user_id=user_id,
        action=action,
        patient_id=call.patient_id,
        detail={"call_id": call.id, **detail},
    )


def view_call(session: Session, *, call_id: int, user: User, now: datetime) -> CallDetail:
    """The call screen's content, if the call is visible to the user (else 404); the patient
    counts as viewed by this user."""
    call = repository.get_visible(session, user, call_id)
    detail = service.call_detail(session, call_id=call.id, now=now)
    record_audit(
        session,
        user_id=user.id,
        action="patient.viewed_via_call",
        patient_id=detail.patient.id,
        detail={"call_id": call_id},
    )
    return detail


def call_history(
    session: Session, *, call_id: int, user: User, now: datetime | None = None
) -> CallHistory:
    call = repository.get_visible(session, user, call_id)
    history = service.call_history(session, call_id=call.id)
    record_audit(
        session,
        user_id=user.id,
        action="call.history_viewed",
        patient_id=call.patient_id,
        detail={"call_id": call.id},
        now=now,
    )
    return history


def calls_of_patient(
    session: Session, *, patient_id: int, user: User, now: datetime | None = None
) -> list[CallSummary]:
    """The patient's calls this user may see; 404 when there are none (a navigator only sees
    patients they have called)."""
    calls = repository.calls_of_patient(session, user, patient_id)
    if not calls and not repository.sees_every_call(user):
        raise NotFoundError("No patient with that id.")
    record_audit(
        session,
        user_id=user.id,
        action="patient.calls_viewed",
        patient_id=patient_id,
        detail={"call_ids": [call.id for call in calls]},
        now=now,
    )
    return [CallSummary.model_validate(call) for call in calls]


def record_list_read(
    session: Session, *, user: User, action: str, patient_ids: set[int], now: datetime
) -> None:
    """One audit row for a page or list that names patients (the queue, "My calls"): every
    patient id it showed, never a name."""
    ids = sorted(patient_ids)
    record_audit(
        session,
        user_id=user.id,
        action=action,
        patient_id=ids[0] if len(ids) == 1 else None,
        detail={"patient_ids": ids, "count": len(ids)},
        now=now,
    )


def queue_patients(view: QueueView) -> set[int]:
    """The patients a navigator's queue view names: the call in hand, the next call, tasks."""
    shown = {task.patient_id for task in view.tasks}
    for call in (view.next_call, view.my_current_call):
        if call is not None:
            shown.add(call.patient_id)
    return shown


def keep_call(
    session: Session, settings: Settings, *, call_id: int, user: User, now: datetime
) -> datetime:
    """The call screen's heartbeat (one UPDATE when all is well; not audited: it records no
    new fact). A call that is not the user's answers 404 as every other read does."""
    try:
        return service.renew_lease(session, settings, call_id=call_id, user_id=user.id, now=now)
    except ConflictError:
        repository.get_visible(session, user, call_id)
        raise


def take_next(session: Session, settings: Settings, *, user_id: int, now: datetime) -> Call | None:
    call = service.take_next_call(session, settings, user_id=user_id, now=now)
    if call is not None:
        _call_event(session, user_id, "call.taken", call)
    return call


def record_attempt(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user: User,
    result: AttemptResult,
    channel: str | None,
    now: datetime,
    callback_at: datetime | None = None,
) -> Call:
    repository.get_visible(session, user, call_id)
    user_id = user.id
    call = service.record_attempt(
        session,
        settings,
        call_id=call_id,
        user_id=user_id,
        result=result,
        channel=channel,
        now=now,
        callback_at=callback_at,
    )
    attempt_channel = session.scalar(
        select(CallAttempt.channel)
        .where(CallAttempt.call_id == call.id)
        .order_by(CallAttempt.number.desc())
        .limit(1)
    )
    _call_event(
        session,
        user_id,
        "call.attempt_recorded",
        call,
        result=result.value,
        channel=attempt_channel,
    )
    return call


def record_identity(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user: User,
    confirmed: bool,
    now: datetime,
) -> Call:
    repository.get_visible(session, user, call_id)
    call = service.record_identity(
        session, settings, call_id=call_id, user_id=user.id, confirmed=confirmed, now=now
    )
    _call_event(session, user.id, "call.identity_checked", call, confirmed=confirmed)
    return call


def add_note(session: Session, *, call_id: int, user: User, body: str, now: datetime) -> CallNote:
    """A note on a call the user can see; the audit records that a note was written, never
    what it says."""
    call = repository.get_visible(session, user, call_id)
    note = service.add_note(session, call_id=call.id, user_id=user.id, body=body, now=now)
    _call_event(session, user.id, "call.note_added", call, note_id=note.id)
    return note


def release_call(session: Session, *, call_id: int, user: User, now: datetime) -> Call:
    repository.get_visible(session, user, call_id)
    call = day.release_call(session, call_id=call_id, user_id=user.id, now=now)
    _call_event(session, user.id, "call.released", call)
    return call


def reassign_call(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    manager: User,
    to_user_id: int | None,
    now: datetime,
) -> Call:
    call, previous = day.reassign_call(
        session, settings, call_id=call_id, to_user_id=to_user_id, now=now
    )
    _call_event(
        session,
        manager.id,
        "call.reassigned",
        call,
        to_user_id=to_user_id,
        from_user_id=previous,
    )
    return call


def undo_outcome(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    outcome_id: int,
    user: User,
    now: datetime,
) -> CallOutcomeChange:
    repository.get_visible(session, user, call_id)
    change = day.undo_outcome(
        session, settings, call_id=call_id, outcome_id=outcome_id, user=user, now=now
    )
    record_audit(
        session,
        user_id=user.id,
        action="call.outcome_undone",
        patient_id=service.get_call(session, call_id).patient_id,
        appointment_id=change.old_appointment_id,
        detail={"call_id": call_id, "outcome_id": outcome_id, "kind": change.old_kind},
    )
    return change


def correct_outcomes(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user: User,
    outcomes: list[OutcomeIn],
    now: datetime,
) -> list[CallOutcome]:
    """Add outcomes to a call completed today (the correction of a mistake; with
    `undo_outcome`, an edit). Audited as corrections."""
    repository.get_visible(session, user, call_id)
    call = day.correctable_call(session, settings, call_id=call_id, user=user, now=now)
    saved = service.record_outcomes(
        session,
        settings,
        call_id=call_id,
        user_id=user.id,
        outcomes=outcomes,
        now=now,
        correcting=call,
    )
    for outcome in saved:
        record_audit(
            session,
            user_id=user.id,
            action="call.outcome_corrected",
            patient_id=call.patient_id,
            appointment_id=outcome.appointment_id,
            detail={"call_id": call_id, "outcome_id": outcome.id, "kind": outcome.kind},
        )
    return saved


def record_outcomes(
    session: Session,
    settings: Settings,
    *,
    call_id: int,
    user: User,
    outcomes: list[OutcomeIn],
    complete: bool,
    now: datetime,
    take_back: bool = False,
) -> list[CallOutcome]:
    """Save the outcomes and, when asked and the call is still open, complete it: both or
    neither (the caller's transaction rolls back on an `InvalidInputError`). With `take_back`
    the navigator first takes the call back from a colleague who picked it up after their
    lease lapsed and has done nothing on it yet."""
    repository.get_visible(session, user, call_id)
    user_id = user.id
    if take_back:
        call = service.get_call(session, call_id)
        previous_holder = call.taken_by
        call = service.take_back(session, settings, call_id=call_id, user_id=user_id, now=now)
        if previous_holder != user_id:
            _call_event(session, user_id, "call.taken_back", call, from_user_id=previous_holder)
    saved = service.record_outcomes(
        session, settings, call_id=call_id, user_id=user_id, outcomes=outcomes, now=now
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
        complete_call(session, call_id=call_id, user=user, now=now)
    return saved


def complete_call(session: Session, *, call_id: int, user: User, now: datetime) -> Call:
    repository.get_visible(session, user, call_id)
    call = service.complete_call(session, call_id=call_id, user_id=user.id, now=now)
    _call_event(session, user.id, "call.completed", call)
    return call


def complete_task(
    session: Session, *, task_id: int, user_id: int, now: datetime, note: str | None = None
) -> NavigatorTask:
    """Kept for the calls API's older route: the tasks feature does the work and the audit."""
    return tasks_service.complete_task(
        session, task_id=task_id, user_id=user_id, now=now, note=note
    )


def save_document(
    session: Session, *, slug: str, body: str, user_id: int, title: str | None = None
) -> documents.Saved:
    """A manager's edit: audited when it made a new version (a no-op save records nothing)."""
    saved = documents.save_version(session, slug=slug, body=body, title=title, user_id=user_id)
    if saved.changed:
        record_audit(
            session,
            user_id=user_id,
            action="call_document.edited",
            detail={"slug": saved.document.slug, "version": saved.document.version},
        )
    return saved


def revert_document(session: Session, *, slug: str, version: int, user_id: int) -> documents.Saved:
    """Restore an earlier version as a new one, audited with the version it came from."""
    saved = documents.revert_to(session, slug=slug, version=version, user_id=user_id)
    if saved.changed:
        record_audit(
            session,
            user_id=user_id,
            action="call_document.reverted",
            detail={
                "slug": saved.document.slug,
                "version": saved.document.version,
                "from_version": version,
            },
        )
    return saved


def add_specialty_script(session: Session, *, code: str, user_id: int) -> CallDocument:
    document = documents.add_specialty_script(session, code=code, user_id=user_id)
    record_audit(
        session,
        user_id=user_id,
        action="call_document.created",
        detail={"slug": document.slug, "version": document.version},
    )
    return document
