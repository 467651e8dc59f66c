"""JSON API of the task worklist: list with filters and paging, done with a note, undo."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import require_role
from app.auth.reads import PatientReaderDep, record_patient_read
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.pagination import Page, PageParams, page_params
from app.settings import Settings
from app.tasks import repository, service
from app.tasks.repository import TaskAge, TaskFilter, TaskScope
from app.tasks.schemas import TaskDoneIn, TaskItem
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

router = APIRouter(prefix="/api/tasks", tags=["tasks"])
NavigatorDep = Annotated[User, Depends(require_role(Role.NAVIGATOR))]


def items(
    tasks: list[NavigatorTask], links: dict[int, int], user: User, now: datetime
) -> list[TaskItem]:
    """The API shape of tasks: each with its call link and how long it can still be undone."""
    manager = user.has_role(Role.MANAGER)
    result = []
    for task in tasks:
        item = TaskItem.model_validate(task)
        item.call_id = links.get(task.id)
        if service.can_undo(task, user_id=user.id, is_manager=manager, now=now):
            item.undo_until = service.undo_deadline(task)
        result.append(item)
    return result


@router.get("", response_model=Page[TaskItem])
def list_tasks(
    request: Request,
    session: SessionDep,
    reader: PatientReaderDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[TaskStatus, Query()] = TaskStatus.OPEN,
    kind: Annotated[TaskKind | None, Query()] = None,
    age: Annotated[TaskAge | None, Query()] = None,
    scope: Annotated[TaskScope, Query()] = TaskScope.TEAM,
) -> Page[TaskItem]:
    """The worklist: the team's open tasks (or "mine": from my calls), oldest first; done ones
    (status=done) newest first, each with how long it can still be undone."""
    settings: Settings = request.app.state.settings
    filters = TaskFilter(status=status, kind=kind, age=age, scope=scope)
    rows, total = repository.list_tasks(
        session,
        reader.user,
        filters,
        calendar=settings.calendar,
        now=reader.now,
        limit=page.limit,
        offset=page.offset,
    )
    record_patient_read(
        session,
        reader,
        action="patient.listed",
        patient_ids=[row.patient_id for row in rows],
        filters={
            "list": "tasks",
            "status": status.value,
            "kind": kind.value if kind else None,
            "age": age.value if age else None,
            "scope": scope.value,
            "limit": page.limit,
            "offset": page.offset,
        },
    )
    links = repository.linked_calls(session, reader.user, rows)
    return Page(
        items=items(rows, links, reader.user, reader.now),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/{task_id}/done", response_model=TaskItem)
def mark_done(
    task_id: RecordId,
    session: SessionDep,
    user: NavigatorDep,
    clock: ClockDep,
    body: TaskDoneIn | None = None,
) -> TaskItem:
    now = clock.now()
    task = service.complete_task(
        session, task_id=task_id, user_id=user.id, now=now, note=body.note if body else None
    )
    return items([task], repository.linked_calls(session, user, [task]), user, now)[0]


@router.post("/{task_id}/undo", response_model=TaskItem)
def undo(task_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep) -> TaskItem:
    now = clock.now()
    task = service.undo_task(
        session,
        task_id=task_id,
        user_id=user.id,
        is_manager=user.has_role(Role.MANAGER),
        now=now,
    )
    return items([task], repository.linked_calls(session, user, [task]), user, now)[0]
