"""JSON API for navigator call queues, calls, outcomes and scripts. Thin: services do the work."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls import actions, documents, service
from app.calls.queue import build_queue
from app.calls.schemas import (
    AttemptIn,
    CallDetail,
    CallHistory,
    CallSummary,
    DocumentIn,
    DocumentOut,
    OutcomeOut,
    OutcomesIn,
    Overview,
    QueueView,
    TaskOut,
)
from app.db.session import SessionDep
from app.settings import Settings

router = APIRouter(prefix="/api/calls", tags=["calls"])


def get_settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]


# Navigators work the queue; managers (and admins) also see the overview, build queues and
# edit scripts. Unsafe methods are CSRF-checked by require_role.
NavigatorDep = Annotated[User, Depends(require_role(Role.NAVIGATOR))]
ManagerDep = Annotated[User, Depends(require_role(Role.MANAGER))]


@router.get("/queue", response_model=QueueView)
def my_queue(
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    queue_date: Annotated[date | None, Query(alias="date")] = None,
) -> QueueView:
    return service.my_queue(session, settings, user_id=user.id, queue_date=queue_date)


@router.post("/next", response_model=CallSummary | None)
def take_next(session: SessionDep, settings: SettingsDep, user: NavigatorDep) -> CallSummary | None:
    call = actions.take_next(session, settings, user_id=user.id)
    return CallSummary.model_validate(call) if call is not None else None


@router.get("/overview", response_model=Overview)
def manager_overview(
    session: SessionDep,
    settings: SettingsDep,
    _manager: ManagerDep,
    queue_date: Annotated[date | None, Query(alias="date")] = None,
) -> Overview:
    day = queue_date or service.local_today(settings, datetime.now(UTC))
    return service.overview(session, settings, queue_date=day)


@router.post("/queue/build")
def build(
    session: SessionDep,
    settings: SettingsDep,
    manager: ManagerDep,
    queue_date: Annotated[date, Query(alias="date")],
) -> dict[str, object]:
    documents.ensure_default_documents(session)
    result = build_queue(session, settings, queue_date)
    record_audit(
        session,
        user_id=manager.id,
        action="call_queue.built",
        detail={"queue_date": queue_date.isoformat(), "calls_created": result.calls_created},
    )
    return result.as_dict()


@router.get("/documents", response_model=list[DocumentOut])
def list_documents(session: SessionDep, _user: NavigatorDep) -> list[DocumentOut]:
    documents.ensure_default_documents(session)
    latest = documents.latest_documents(session)
    return [DocumentOut.model_validate(latest[slug]) for slug in sorted(latest)]


@router.get("/documents/{slug}", response_model=list[DocumentOut])
def document_versions(slug: str, session: SessionDep, _user: NavigatorDep) -> list[DocumentOut]:
    return [DocumentOut.model_validate(row) for row in documents.list_versions(session, slug)]


@router.post("/documents/{slug}", response_model=DocumentOut, status_code=201)
def edit_document(
    slug: str, body: DocumentIn, session: SessionDep, manager: ManagerDep
) -> DocumentOut:
    document = actions.edit_document(
        session, slug=slug, body=body.body, title=body.title, user_id=manager.id
    )
    return DocumentOut.model_validate(document)


@router.post("/tasks/{task_id}/done", response_model=TaskOut)
def complete_task(task_id: int, session: SessionDep, user: NavigatorDep) -> TaskOut:
    task = actions.complete_task(session, task_id=task_id, user_id=user.id)
    return TaskOut.model_validate(task)


@router.get("/patients/{patient_id}", response_model=list[CallSummary])
def calls_of_patient(
    patient_id: int, session: SessionDep, _user: NavigatorDep
) -> list[CallSummary]:
    return service.patient_calls(session, patient_id=patient_id)


@router.get("/{call_id}", response_model=CallDetail)
def call_detail(call_id: int, session: SessionDep, user: NavigatorDep) -> CallDetail:
    return actions.view_call(session, call_id=call_id, user_id=user.id)


@router.get("/{call_id}/history", response_model=CallHistory)
def call_history(call_id: int, session: SessionDep, _user: NavigatorDep) -> CallHistory:
    return service.call_history(session, call_id=call_id)


@router.post("/{call_id}/attempts", response_model=CallSummary)
def record_attempt(
    call_id: int, body: AttemptIn, session: SessionDep, settings: SettingsDep, user: NavigatorDep
) -> CallSummary:
    call = actions.record_attempt(
        session,
        settings,
        call_id=call_id,
        user_id=user.id,
        result=body.result,
        channel=body.channel,
    )
    return CallSummary.model_validate(call)


@router.post("/{call_id}/outcomes", response_model=list[OutcomeOut])
def record_outcomes(
    call_id: int,
    body: OutcomesIn,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
) -> list[OutcomeOut]:
    saved = actions.record_outcomes(
        session,
        settings,
        call_id=call_id,
        user_id=user.id,
        outcomes=body.outcomes,
        complete=body.complete,
    )
    return [OutcomeOut.model_validate(outcome) for outcome in saved]


@router.post("/{call_id}/complete", response_model=CallSummary)
def complete(call_id: int, session: SessionDep, user: NavigatorDep) -> CallSummary:
    call = actions.complete_call(session, call_id=call_id, user_id=user.id)
    return CallSummary.model_validate(call)
