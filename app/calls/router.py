"""JSON API for navigator call queues, calls, outcomes and scripts. Thin: services do the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls import actions, day, documents, service
from app.calls.queue import build_queue
from app.calls.schemas import (
    AttemptIn,
    CallDetail,
    CallHistory,
    CallSummary,
    DocumentIn,
    DocumentOut,
    DocumentSaved,
    IdentityIn,
    LeaseOut,
    NoteIn,
    NoteOut,
    OutcomeChangeOut,
    OutcomeOut,
    OutcomesIn,
    Overview,
    QueueView,
    ReassignIn,
    TaskOut,
    TomorrowCall,
    TomorrowOut,
)
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.isodate import IsoDate
from app.settings import Settings

router = APIRouter(prefix="/api/calls", tags=["calls"])
# How often an open call screen renews its lease: well inside the shortest sensible lease.
HEARTBEAT_SECONDS = 60


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
    clock: ClockDep,
    queue_date: Annotated[IsoDate | None, Query(alias="date")] = None,
) -> QueueView:
    now = clock.now()
    view = service.my_queue(session, settings, user_id=user.id, queue_date=queue_date, now=now)
    actions.record_list_read(
        session, user=user, action="queue.viewed", patient_ids=actions.queue_patients(view), now=now
    )
    return view


@router.get("/tomorrow", response_model=TomorrowOut)
def tomorrow(
    session: SessionDep, settings: SettingsDep, _user: NavigatorDep, clock: ClockDep
) -> TomorrowOut:
    """The next working day's known work (callbacks due, calls queued), read only, without
    patient details."""
    day_, items = day.tomorrow_list(session, settings, now=clock.now())
    return TomorrowOut(
        day=day_,
        calls=[
            TomorrowCall(
                call_id=item.call_id,
                due_at=item.due_at,
                attempts=item.attempts,
                callback_asked=item.callback_asked,
            )
            for item in items
        ],
    )


@router.post("/next", response_model=CallSummary | None)
def take_next(
    session: SessionDep, settings: SettingsDep, user: NavigatorDep, clock: ClockDep
) -> CallSummary | None:
    call = actions.take_next(session, settings, user_id=user.id, now=clock.now())
    return CallSummary.model_validate(call) if call is not None else None


@router.get("/overview", response_model=Overview)
def manager_overview(
    session: SessionDep,
    settings: SettingsDep,
    _manager: ManagerDep,
    clock: ClockDep,
    queue_date: Annotated[IsoDate | None, Query(alias="date")] = None,
) -> Overview:
    now = clock.now()
    day = queue_date or settings.calendar.today(now)
    return service.overview(session, settings, queue_date=day, now=now)


@router.post("/queue/build")
def build(
    session: SessionDep,
    settings: SettingsDep,
    manager: ManagerDep,
    clock: ClockDep,
    queue_date: Annotated[IsoDate, Query(alias="date")],
) -> dict[str, object]:
    documents.ensure_default_documents(session)
    result = build_queue(session, settings, queue_date, now=clock.now())
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


@router.post(
    "/documents/{slug}",
    response_model=DocumentSaved,
    status_code=201,
    responses={
        200: {
            "model": DocumentSaved,
            "description": (
                "Unchanged: the text and title are the current version's, so no version was "
                "made; the current version is returned with `changed: false`."
            ),
        },
        201: {"description": "Saved as a new version (`changed: true`)."},
    },
)
def edit_document(
    slug: str, body: DocumentIn, response: Response, session: SessionDep, manager: ManagerDep
) -> DocumentSaved:
    saved = actions.save_document(
        session, slug=slug, body=body.body, title=body.title, user_id=manager.id
    )
    if not saved.changed:
        response.status_code = 200
    document = DocumentOut.model_validate(saved.document)
    return DocumentSaved(**document.model_dump(), changed=saved.changed)


@router.post("/tasks/{task_id}/done", response_model=TaskOut)
def complete_task(
    task_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> TaskOut:
    task = actions.complete_task(session, task_id=task_id, user_id=user.id, now=clock.now())
    return TaskOut.model_validate(task)


@router.get("/patients/{patient_id}", response_model=list[CallSummary])
def calls_of_patient(
    patient_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> list[CallSummary]:
    return actions.calls_of_patient(session, patient_id=patient_id, user=user, now=clock.now())


@router.get("/{call_id}", response_model=CallDetail)
def call_detail(
    call_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> CallDetail:
    return actions.view_call(session, call_id=call_id, user=user, now=clock.now())


@router.get("/{call_id}/history", response_model=CallHistory)
def call_history(
    call_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> CallHistory:
    return actions.call_history(session, call_id=call_id, user=user, now=clock.now())


@router.post("/{call_id}/attempts", response_model=CallSummary)
def record_attempt(
    call_id: RecordId,
    body: AttemptIn,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> CallSummary:
    call = actions.record_attempt(
        session,
        settings,
        call_id=call_id,
        user=user,
        result=body.result,
        channel=body.channel,
        now=clock.now(),
        callback_at=body.callback_at,
    )
    return CallSummary.model_validate(call)


@router.post("/{call_id}/identity", response_model=CallSummary)
def record_identity(
    call_id: RecordId,
    body: IdentityIn,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> CallSummary:
    call = actions.record_identity(
        session, settings, call_id=call_id, user=user, confirmed=body.confirmed, now=clock.now()
    )
    return CallSummary.model_validate(call)


@router.post("/{call_id}/notes", response_model=NoteOut, status_code=201)
def add_note(
    call_id: RecordId, body: NoteIn, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> NoteOut:
    note = actions.add_note(session, call_id=call_id, user=user, body=body.body, now=clock.now())
    return NoteOut.model_validate(note)


@router.post("/{call_id}/release", response_model=CallSummary)
def release(
    call_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> CallSummary:
    call = actions.release_call(session, call_id=call_id, user=user, now=clock.now())
    return CallSummary.model_validate(call)


@router.post("/{call_id}/reassign", response_model=CallSummary)
def reassign(
    call_id: RecordId,
    body: ReassignIn,
    session: SessionDep,
    settings: SettingsDep,
    manager: ManagerDep,
    clock: ClockDep,
) -> CallSummary:
    call = actions.reassign_call(
        session,
        settings,
        call_id=call_id,
        manager=manager,
        to_user_id=body.navigator_id,
        now=clock.now(),
    )
    return CallSummary.model_validate(call)


@router.post("/{call_id}/outcomes/{outcome_id}/undo", response_model=OutcomeChangeOut)
def undo_outcome(
    call_id: RecordId,
    outcome_id: RecordId,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> OutcomeChangeOut:
    change = actions.undo_outcome(
        session, settings, call_id=call_id, outcome_id=outcome_id, user=user, now=clock.now()
    )
    return OutcomeChangeOut.model_validate(change)


@router.post("/{call_id}/corrections", response_model=list[OutcomeOut])
def correct_outcomes(
    call_id: RecordId,
    body: OutcomesIn,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> list[OutcomeOut]:
    """Add outcomes to a call completed today (with undo, an edit of its outcomes)."""
    saved = actions.correct_outcomes(
        session, settings, call_id=call_id, user=user, outcomes=body.outcomes, now=clock.now()
    )
    return [OutcomeOut.model_validate(outcome) for outcome in saved]


@router.post("/{call_id}/outcomes", response_model=list[OutcomeOut])
def record_outcomes(
    call_id: RecordId,
    body: OutcomesIn,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> list[OutcomeOut]:
    saved = actions.record_outcomes(
        session,
        settings,
        call_id=call_id,
        user=user,
        outcomes=body.outcomes,
        complete=body.complete,
        now=clock.now(),
        take_back=body.take_back,
    )
    return [OutcomeOut.model_validate(outcome) for outcome in saved]


@router.post("/{call_id}/complete", response_model=CallSummary)
def complete(
    call_id: RecordId, session: SessionDep, user: NavigatorDep, clock: ClockDep
) -> CallSummary:
    call = actions.complete_call(session, call_id=call_id, user=user, now=clock.now())
    return CallSummary.model_validate(call)


@router.post("/{call_id}/heartbeat", response_model=LeaseOut)
def heartbeat(
    call_id: RecordId,
    session: SessionDep,
    settings: SettingsDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> LeaseOut:
    """Keep holding the call while its screen is open (the call screen's script sends this)."""
    now = clock.now()
    until = actions.keep_call(session, settings, call_id=call_id, user=user, now=now)
    return LeaseOut(
        call_id=call_id,
        lease_expires_at=until,
        lease_seconds_left=service.lease_seconds_left(until, now),
        renew_every_seconds=HEARTBEAT_SECONDS,
    )
