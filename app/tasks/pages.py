"""The task worklist page: the team's open tasks (or mine), filtered and paged, each linked to
its patient and call, marked done with an optional note and undone within the hour."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.reads import PatientReaderDep, record_patient_read
from app.auth.roles import Role
from app.auth.tables import User
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import ConflictError, InvalidInputError
from app.patients.tables import Patient
from app.settings import Settings
from app.tasks import repository, service
from app.tasks.repository import TaskAge, TaskFilter, TaskScope
from app.tasks.router import items
from app.tasks.tables import TaskKind, TaskStatus
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
KEPT = ("status", "kind", "age", "scope", "page")

KIND_LABELS = {
    TaskKind.DATA_QUALITY: "Wrong number or contact details",
    TaskKind.SEND_LETTER: "Send a letter",
    TaskKind.CANCEL_REQUEST: "Cancellation asked for by SMS",
    TaskKind.REBOOK_REQUEST: "Rebooking asked for by SMS",
    TaskKind.READ_REPLY: "SMS reply to read",
    TaskKind.CONFIRMED_NOTE: "Confirmed by SMS",
    TaskKind.BOOKING_OVERDUE: "Booking request overdue",
}
AGE_LABELS = {
    TaskAge.TODAY: "Opened today",
    TaskAge.OLDER: "Opened before today",
    TaskAge.OVER_A_WEEK: "Open a week or more",
}
NOTICES = {
    "done": "The task was marked done. You can undo this for an hour.",
    "undone": "The task is open again.",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _filters(request: Request) -> tuple[TaskFilter, dict[str, str], dict[str, str]]:
    """The filters asked for, the raw values (to show back) and a problem per bad value."""
    raw = {
        key: request.query_params.get(key, "").strip() for key in ("status", "kind", "age", "scope")
    }
    errors: dict[str, str] = {}
    status, kind, age, scope = TaskStatus.OPEN, None, None, TaskScope.TEAM
    if raw["status"]:
        if raw["status"] in set(TaskStatus):
            status = TaskStatus(raw["status"])
        else:
            errors["status"] = "Choose open or done tasks"
    if raw["kind"]:
        if raw["kind"] in set(TaskKind):
            kind = raw["kind"]
        else:
            errors["kind"] = "Choose a kind of task from the list"
    if raw["age"]:
        if raw["age"] in set(TaskAge):
            age = TaskAge(raw["age"])
        else:
            errors["age"] = "Choose how old the tasks are from the list"
    if raw["scope"]:
        if raw["scope"] in set(TaskScope):
            scope = TaskScope(raw["scope"])
        else:
            errors["scope"] = "Choose the team's tasks or yours"
    return TaskFilter(status=status, kind=kind, age=age, scope=scope), raw, errors


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) <= 100_000 else 1


def _names(session: Session, patient_ids: set[int]) -> dict[int, str]:
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Patient.id, Patient.given_name, Patient.family_name).where(
            Patient.id.in_(patient_ids)
        )
    )
    return {
        pid: f"{given or ''} {family or ''}".strip() or "(no name)" for pid, given, family in rows
    }


def _age_text(created_at: datetime, now: datetime) -> str:
    hours = int((now - created_at).total_seconds() // 3600)
    if hours < 1:
        return "less than an hour"
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours // 24} days"


@router.get("/tasks")
def tasks_page(request: Request, session: SessionDep, reader: PatientReaderDep) -> Response:
    return _render(request, session, reader.user, reader)


def _render(
    request: Request,
    session: Session,
    user: User,
    reader: Any,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    now = reader.now
    filters, raw, filter_errors = _filters(request)
    errors = {**filter_errors, **(errors or {})}
    page = _page_number(request)
    rows, total = repository.list_tasks(
        session,
        user,
        filters,
        calendar=_settings(request).calendar,
        now=now,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    record_patient_read(
        session,
        reader,
        action="patient.listed",
        patient_ids=[row.patient_id for row in rows],
        filters={
            "list": "tasks",
            "status": filters.status.value,
            "kind": filters.kind,
            "age": filters.age.value if filters.age else None,
            "scope": filters.scope.value,
            "page": page,
        },
    )
    kept = {key: value for key, value in raw.items() if value and key not in filter_errors}

    def page_link(number: int) -> str:
        return "/tasks?" + urlencode({**kept, "page": number})

    team, mine = repository.count_open(session, user)
    return render(
        request,
        "tasks/tasks.html",
        {
            "page_title": "Tasks",
            "tasks": items(rows, repository.linked_calls(session, user, rows), user, now),
            "total": total,
            "team_open": team,
            "mine_open": mine,
            "names": _names(session, {row.patient_id for row in rows}),
            "ages": {row.id: _age_text(row.created_at, now) for row in rows},
            "filters": filters,
            "raw": raw,
            "kind_items": [("", "Any kind")]
            + [(str(kind), label) for kind, label in KIND_LABELS.items()],
            "age_items": [("", "Any age")]
            + [(str(age), label) for age, label in AGE_LABELS.items()],
            "scope_items": [("team", "The team's tasks"), ("mine", "From my calls, or done by me")],
            "status_items": [("open", "Open"), ("done", "Done (undo within an hour)")],
            "kind_labels": KIND_LABELS,
            "errors": errors,
            "notice": NOTICES.get(request.query_params.get("notice", "")),
            "page": page,
            "previous_link": page_link(page - 1) if page > 1 else None,
            "next_link": page_link(page + 1) if page * PAGE_SIZE < total else None,
            "query": _query(request),
        },
        status_code=status_code,
    )


def _query(request: Request) -> str:
    """The list's own query (filters and page), without a notice."""
    return urlencode(
        [(key, value) for key, value in request.query_params.multi_items() if key in KEPT]
    )


def _back(request: Request, notice: str) -> str:
    """Back to the list the form was sent from (its query is on the form's action)."""
    query = _query(request)
    return f"/tasks?{query + '&' if query else ''}notice={notice}"


@router.post("/tasks/{task_id}/done")
async def task_done(
    task_id: RecordId, request: Request, session: SessionDep, reader: PatientReaderDep
) -> Response:
    form = await request.form()
    try:
        service.complete_task(
            session,
            task_id=task_id,
            user_id=reader.user.id,
            now=reader.now,
            note=str(form.get("note") or ""),
        )
    except InvalidInputError as error:
        session.rollback()
        problems = {f"note-{task_id}": str(item["message"]) for item in error.details or []}
        return _render(request, session, reader.user, reader, errors=problems, status_code=422)
    return RedirectResponse(_back(request, "done"), status_code=303)


@router.post("/tasks/{task_id}/undo")
async def task_undo(
    task_id: RecordId, request: Request, session: SessionDep, reader: PatientReaderDep
) -> Response:
    try:
        service.undo_task(
            session,
            task_id=task_id,
            user_id=reader.user.id,
            is_manager=reader.user.has_role(Role.MANAGER),
            now=reader.now,
        )
    except ConflictError as error:
        session.rollback()
        return _render(
            request,
            session,
            reader.user,
            reader,
            errors={f"undo-{task_id}": error.message},
            status_code=409,
        )
    return RedirectResponse(_back(request, "undone"), status_code=303)
