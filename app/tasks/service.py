"""Navigator tasks: the one door other features use to add work to the task list, and the
worklist's own actions (done with an optional note, undo within an hour).

Opening is idempotent by (source, source_ref, kind), the table's unique key, so a rerun of
whatever made the task (a redelivered webhook, a rebuilt queue) never makes a second one.
Wrong numbers found on one local day make one task per patient (`open_wrong_number_task`),
whichever feature found them (an SMS the provider refused, a call that reached the wrong
person) and however many messages failed. Services flush; audit rows join the caller's
transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.db.dialect import insert_ignoring_conflicts
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

# A task marked done can be reopened by whoever marked it (or a manager) for this long.
UNDO_WINDOW = timedelta(hours=1)
DONE_NOTE_MAX_CHARS = 1000
WRONG_NUMBER_SOURCE = "data_quality"
DETAIL_MAX_CHARS = 4000


def open_task(
    session: Session,
    *,
    kind: TaskKind,
    patient_id: int,
    source: str,
    source_ref: str,
    detail: str,
    now: datetime,
    appointment_id: int | None = None,
    call_id: int | None = None,
) -> NavigatorTask:
    """The task for this source and ref, created open if there is none yet."""
    existing = session.scalar(
        select(NavigatorTask).where(
            NavigatorTask.source == source,
            NavigatorTask.source_ref == source_ref,
            NavigatorTask.kind == kind,
        )
    )
    if existing is not None:
        return existing
    task = NavigatorTask(
        kind=kind,
        status=TaskStatus.OPEN,
        patient_id=patient_id,
        appointment_id=appointment_id,
        call_id=call_id,
        source=source,
        source_ref=source_ref,
        detail=detail,
        created_at=now,
    )
    session.add(task)
    session.flush()
    return task


def wrong_number_ref(patient_id: int, day: date) -> str:
    return f"{patient_id}:{day.isoformat()}"


def open_wrong_number_task(
    session: Session,
    *,
    patient_id: int,
    day: date,
    detail: str,
    now: datetime,
    call_id: int | None = None,
) -> NavigatorTask:
    """The patient's one data-quality task for wrong numbers found on local `day`.

    Inserted with ON CONFLICT DO NOTHING, so two dispatchers failing messages to the same
    patient at once still make one task. A later finding the same day adds its line to the
    task (once) and reopens it if it had been marked done: there is something new to fix.
    """
    ref = wrong_number_ref(patient_id, day)
    session.execute(
        insert_ignoring_conflicts(session, NavigatorTask.__table__),
        {
            "kind": str(TaskKind.DATA_QUALITY),
            "status": str(TaskStatus.OPEN),
            "patient_id": patient_id,
            "appointment_id": None,
            "call_id": call_id,
            "source": WRONG_NUMBER_SOURCE,
            "source_ref": ref,
            "detail": detail,
            "created_at": now,
        },
    )
    task = session.scalars(
        select(NavigatorTask)
        .where(
            NavigatorTask.source == WRONG_NUMBER_SOURCE,
            NavigatorTask.source_ref == ref,
            NavigatorTask.kind == TaskKind.DATA_QUALITY,
        )
        .execution_options(populate_existing=True)
    ).one()
    lines = task.detail.split("\n")
    if detail not in lines:
        task.detail = "\n".join([*lines, detail])[:DETAIL_MAX_CHARS]
        if task.status == TaskStatus.DONE:
            task.status = TaskStatus.OPEN
            task.completed_at = None
            task.completed_by = None
            task.done_note = None
    if task.call_id is None and call_id is not None:
        task.call_id = call_id
    session.flush()
    return task


def _locked(session: Session, task_id: int) -> NavigatorTask:
    task = session.scalar(
        select(NavigatorTask)
        .where(NavigatorTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if task is None:
        raise NotFoundError("No task with that id.")
    return task


def complete_task(
    session: Session,
    *,
    task_id: int,
    user_id: int,
    now: datetime,
    note: str | None = None,
) -> NavigatorTask:
    """Mark a task done, with an optional note of what was done (never logged). Done twice is
    refused; a note that is too long is refused and nothing is saved."""
    text = (note or "").strip()
    if len(text) > DONE_NOTE_MAX_CHARS:
        raise InvalidInputError(
            "The task was not marked done.",
            details=[
                {
                    "field": "note",
                    "message": f"The note must be {DONE_NOTE_MAX_CHARS} characters or fewer",
                }
            ],
        )
    task = _locked(session, task_id)
    if task.status == TaskStatus.DONE:
        raise ConflictError("This task was already marked done. Nothing was changed.")
    task.status = TaskStatus.DONE
    task.completed_at = now
    task.completed_by = user_id
    task.done_note = text or None
    session.flush()
    record_audit(
        session,
        user_id=user_id,
        action="navigator_task.done",
        patient_id=task.patient_id,
        detail={"task_id": task.id, "with_note": bool(text)},
        now=now,
    )
    return task


def undo_deadline(task: NavigatorTask) -> datetime | None:
    return task.completed_at + UNDO_WINDOW if task.completed_at is not None else None


def can_undo(task: NavigatorTask, *, user_id: int, is_manager: bool, now: datetime) -> bool:
    deadline = undo_deadline(task)
    return (
        task.status == TaskStatus.DONE
        and deadline is not None
        and now < deadline
        and (is_manager or task.completed_by == user_id)
    )


def undo_task(
    session: Session, *, task_id: int, user_id: int, is_manager: bool, now: datetime
) -> NavigatorTask:
    """Reopen a task marked done less than an hour ago (by the clock), by whoever marked it or
    a manager. Audited with when it had been done and by whom."""
    task = _locked(session, task_id)
    if task.status != TaskStatus.DONE:
        raise ConflictError("This task is open: there is nothing to undo.")
    if not is_manager and task.completed_by != user_id:
        raise ConflictError("Only the person who marked this task done can undo it.")
    if not can_undo(task, user_id=user_id, is_manager=is_manager, now=now):
        raise ConflictError(
            "This task was marked done more than an hour ago and can no longer be undone."
        )
    done_at, done_by = task.completed_at, task.completed_by
    session.execute(
        update(NavigatorTask)
        .where(NavigatorTask.id == task.id)
        .values(status=TaskStatus.OPEN, completed_at=None, completed_by=None, done_note=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(task)
    record_audit(
        session,
        user_id=user_id,
        action="navigator_task.undone",
        patient_id=task.patient_id,
        detail={
            "task_id": task.id,
            "done_at": done_at.isoformat() if done_at else None,
            "done_by": done_by,
        },
        now=now,
    )
    return task
