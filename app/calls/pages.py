"""HTML pages of the navigator's day: my queue, the call screen with its outcome form, call
histories (mine and per patient), the managers' queue overview and script/SOP editing.

Thin like the JSON API: the calls service does the work and the same audit actions are
recorded. Navigators see a call only while they hold it or after they worked on it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments.tables import Clinic
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls import actions, documents, service
from app.calls.schemas import AppointmentOnCall, OutcomeIn
from app.calls.tables import AttemptResult, Call, OutcomeKind
from app.db.session import SessionDep
from app.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from app.patients.tables import Patient
from app.settings import Settings
from app.sms import repository as sms_repository
from app.sms.tables import SmsInbound
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Navigator = Annotated[User, Depends(require_role(Role.NAVIGATOR))]
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]

ATTEMPT_LABELS = {
    AttemptResult.ANSWERED: "Answered",
    AttemptResult.NO_ANSWER: "No answer",
    AttemptResult.VOICEMAIL: "Voicemail (message left)",
    AttemptResult.WRONG_NUMBER: "Wrong number",
}
DECISION_LABELS = {
    "": "Nothing recorded for this appointment",
    OutcomeKind.CONFIRMED: "Confirmed: the patient will attend",
    OutcomeKind.REBOOKED: "Rebooked to a new date and time",
    OutcomeKind.CANCELLED: "Cancelled at the patient's request",
}
OTHER_LABELS = {
    OutcomeKind.TRAVEL_COSTS: "Help with travel costs",
    OutcomeKind.PARKING: "Parking arranged",
    OutcomeKind.TRANSPORT: "Patient transport arranged",
    OutcomeKind.LONGER_APPOINTMENT: "Longer appointment arranged",
    OutcomeKind.BSL_INTERPRETER: "BSL interpreter booked",
    OutcomeKind.SPOKEN_INTERPRETER: "Spoken-language interpreter booked",
    OutcomeKind.OTHER_ADJUSTMENT: "Other reasonable adjustment",
    OutcomeKind.DECLINED_HELP: "Patient declined help",
    OutcomeKind.UNREACHABLE: "Unreachable: close the call without reaching the patient",
}
OUTCOME_LABELS: dict[str, str] = {
    **{str(kind): text for kind, text in DECISION_LABELS.items() if kind},
    **{str(kind): text for kind, text in OTHER_LABELS.items()},
}
STATUS_LABELS = {
    "ready": "To call",
    "in_progress": "In progress",
    "retry": "Callback",
    "completed": "Done",
    "unreachable": "Unreachable",
}
NOTICES = {
    "retry": "The attempt was saved and the call went back to the queue for a callback.",
    "unreachable": "The attempt was saved. The call is closed as unreachable.",
    "empty": "There are no calls to take right now.",
    "completed": "The call was completed and saved.",
    "task-done": "The task was marked done.",
    "saved": "The outcomes were saved.",
}
HEADING_TAG = re.compile(r"<(/?)h([1-6])>")
TIME = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$")


def _demoted(html: str, levels: int = 2) -> str:
    """Scripts are written with # headings; inside a page they sit under its h2 sections, so
    their headings move down (h1 -> h3) to keep one h1 per page and a sensible outline."""
    return HEADING_TAG.sub(
        lambda match: f"<{match.group(1)}h{min(6, int(match.group(2)) + levels)}>", html
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _usernames(session: Session, ids: set[int | None] | set[int]) -> dict[int, str]:
    wanted = {user_id for user_id in ids if user_id is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


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


def _visible_call(session: Session, user: User, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFoundError("No call with that id.")
    if not user.has_role(Role.MANAGER) and not service.handled_by(session, call, user.id):
        raise PermissionDeniedError(
            "This call is not yours: it belongs to another navigator or has not been taken. "
            "Take your next call from your queue."
        )
    return call


# --- my queue --------------------------------------------------------------------------------


@router.get("/queue")
def my_queue(request: Request, session: SessionDep, user: Navigator) -> Response:
    settings = _settings(request)
    now = datetime.now(UTC)
    view = service.my_queue(session, settings, user_id=user.id, now=now)
    # Callbacks show no patient details: a navigator sees a patient once the call is theirs.
    callbacks = service.callbacks_due(session, now)
    counts = view.counts
    return render(
        request,
        "calls/queue.html",
        {
            "page_title": "My queue for today",
            "view": view,
            "to_call": counts.get("ready", 0) + counts.get("retry", 0),
            "in_progress": counts.get("in_progress", 0),
            "done": counts.get("completed", 0) + counts.get("unreachable", 0),
            "callbacks": callbacks,
            "task_names": _names(session, {task.patient_id for task in view.tasks}),
            "notice": _notice(request),
        },
    )


@router.post("/queue/next")
def take_next(request: Request, session: SessionDep, user: Navigator) -> Response:
    call = actions.take_next(session, _settings(request), user_id=user.id)
    if call is None:
        return RedirectResponse("/queue?notice=empty", status_code=303)
    return RedirectResponse(f"/calls/{call.id}", status_code=303)


@router.post("/tasks/{task_id}/done")
def task_done(task_id: int, session: SessionDep, user: Navigator) -> Response:
    actions.complete_task(session, task_id=task_id, user_id=user.id)
    return RedirectResponse("/queue?notice=task-done", status_code=303)


# --- the call screen -------------------------------------------------------------------------


def _sms_of_patient(session: Session, patient_id: int) -> dict[str, Any]:
    messages = sms_repository.messages_for(session, patient_id=patient_id, limit=20)
    replies = list(
        session.scalars(
            select(SmsInbound)
            .where(SmsInbound.patient_id == patient_id)
            .order_by(SmsInbound.received_at.desc())
            .limit(20)
        )
    )
    return {"messages": messages, "replies": replies}


def _rebook_clinics(
    session: Session, appointments: list[AppointmentOnCall]
) -> dict[int, list[tuple[str, str]]]:
    """For each appointment, the clinics it can be rebooked into: its own (the default) and
    the other clinics of its specialty, at any site."""
    own = {
        clinic.code: clinic
        for clinic in session.scalars(
            select(Clinic).where(Clinic.code.in_({item.clinic_code for item in appointments}))
        )
    }
    specialties = {clinic.specialty_code for clinic in own.values() if clinic.specialty_code}
    same_specialty = list(
        session.scalars(
            select(Clinic)
            .where(Clinic.specialty_code.in_(specialties))
            .order_by(Clinic.site, Clinic.code)
        )
    )
    choices: dict[int, list[tuple[str, str]]] = {}
    for item in appointments:
        specialty = own[item.clinic_code].specialty_code if item.clinic_code in own else None
        choices[item.id] = [("", f"The same clinic ({item.clinic_code})")] + [
            (clinic.code, f"{clinic.site or 'Site not recorded'}: {clinic.code}")
            for clinic in same_specialty
            if specialty and clinic.specialty_code == specialty and clinic.code != item.clinic_code
        ]
    return choices


def _call_page(
    request: Request,
    session: Session,
    user: User,
    call: Call,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    detail = actions.view_call(session, call_id=call.id, user_id=user.id)
    for document in [*detail.script, detail.sop]:
        document.html = _demoted(document.html)
    holding = call.status == "in_progress" and call.taken_by == user.id
    answered = any(attempt.result == AttemptResult.ANSWERED for attempt in detail.attempts)
    decidable = [
        appointment
        for appointment in detail.appointments
        if appointment.covered_by_this_call or appointment.start_at >= datetime.now(UTC)
    ]
    return render(
        request,
        "calls/call.html",
        {
            "page_title": "Call",
            "detail": detail,
            "holding": holding,
            "answered": answered,
            "decidable": decidable,
            "rebook_clinics": _rebook_clinics(session, decidable),
            "attempt_items": [(str(kind), text) for kind, text in ATTEMPT_LABELS.items()],
            "decision_items": [(str(kind), text) for kind, text in DECISION_LABELS.items()],
            "other_items": [(str(kind), text) for kind, text in OTHER_LABELS.items()],
            "outcome_labels": OUTCOME_LABELS,
            "status_labels": STATUS_LABELS,
            "form": form or {},
            "errors": errors or {},
            "sms": _sms_of_patient(session, detail.patient.id),
            "notice": _notice(request),
        },
        status_code=status_code,
    )


@router.get("/calls/{call_id}")
def call_screen(call_id: int, request: Request, session: SessionDep, user: Navigator) -> Response:
    return _call_page(request, session, user, _visible_call(session, user, call_id))


@router.post("/calls/{call_id}/attempts")
async def record_attempt(
    call_id: int, request: Request, session: SessionDep, user: Navigator
) -> Response:
    form = await request.form()
    call = _visible_call(session, user, call_id)
    result = str(form.get("result") or "")
    channel = str(form.get("channel") or "")
    errors = {}
    if result not in set(AttemptResult):
        errors["result"] = "Choose what happened when you rang"
    if channel not in service.PHONE_CHANNELS:
        errors["channel"] = "Choose which number you rang"
    if errors:
        return _call_page(
            request, session, user, call, form=dict(form), errors=errors, status_code=422
        )
    try:
        call = actions.record_attempt(
            session,
            _settings(request),
            call_id=call_id,
            user_id=user.id,
            result=AttemptResult(result),
            channel=channel,
        )
    except InvalidInputError as error:
        session.rollback()
        problems = {str(item["field"]): str(item["message"]) for item in error.details or []}
        return _call_page(
            request, session, user, call, form=dict(form), errors=problems, status_code=422
        )
    if call.status in ("retry", "unreachable"):
        return RedirectResponse(f"/queue?notice={call.status}", status_code=303)
    return RedirectResponse(f"/calls/{call.id}", status_code=303)


def _parse_outcomes(
    form: dict[str, Any], decidable_ids: list[int], timezone: str
) -> tuple[list[OutcomeIn], list[str], dict[str, str]]:
    """The outcomes the form asks for, the form field behind each, and form-level errors."""
    outcomes: list[OutcomeIn] = []
    fields: list[str] = []
    errors: dict[str, str] = {}
    zone = ZoneInfo(timezone)
    for appointment_id in decidable_ids:
        name = f"decision-{appointment_id}"
        decision = str(form.get(name) or "")
        if not decision:
            continue
        if decision not in {OutcomeKind.CONFIRMED, OutcomeKind.REBOOKED, OutcomeKind.CANCELLED}:
            errors[name] = "Choose what happened to this appointment"
            continue
        new_start_at = None
        if decision == OutcomeKind.REBOOKED:
            prefix = f"rebook-{appointment_id}"
            parts = [
                str(form.get(f"{prefix}-{part}") or "").strip() for part in ("day", "month", "year")
            ]
            clock = TIME.match(str(form.get(f"{prefix}-time") or "").strip())
            try:
                day = date(int(parts[2]), int(parts[1]), int(parts[0]))
            except ValueError:
                errors[prefix] = "Enter the new appointment date as a real date, e.g. 15 12 2026"
                continue
            if clock is None:
                errors[f"{prefix}-time"] = "Enter the new appointment time, e.g. 14:30"
                continue
            new_start_at = datetime.combine(
                day, time(int(clock.group(1)), int(clock.group(2))), zone
            )
        clinic_code = str(form.get(f"rebook-{appointment_id}-clinic") or "").strip()[:32]
        outcomes.append(
            OutcomeIn(
                kind=OutcomeKind(decision),
                appointment_id=appointment_id,
                new_start_at=new_start_at,
                clinic_code=(clinic_code or None) if decision == OutcomeKind.REBOOKED else None,
            )
        )
        fields.append(name if decision != OutcomeKind.REBOOKED else f"rebook-{appointment_id}")
    chosen = form.get("other")
    values = chosen if isinstance(chosen, list) else ([chosen] if chosen else [])
    for value in values:
        if value not in OTHER_LABELS:
            errors["other"] = "Choose outcomes from the list"
            continue
        kind = OutcomeKind(value)
        outcomes.append(
            OutcomeIn(
                kind=kind,
                language=str(form.get("language") or "").strip()[:8] or None
                if kind == OutcomeKind.SPOKEN_INTERPRETER
                else None,
                text=str(form.get("adjustment") or "").strip()[:500] or None
                if kind == OutcomeKind.OTHER_ADJUSTMENT
                else None,
            )
        )
        fields.append(
            "language"
            if kind == OutcomeKind.SPOKEN_INTERPRETER
            else "adjustment"
            if kind == OutcomeKind.OTHER_ADJUSTMENT
            else "other"
        )
    return outcomes, fields, errors


def _form_errors(details: list[dict[str, Any]], fields: list[str]) -> dict[str, str]:
    """Map the service's `outcomes[i].x` fields to the form field that produced outcome i."""
    errors: dict[str, str] = {}
    for item in details:
        field = str(item.get("field", ""))
        match = re.match(r"^outcomes\[(\d+)\]", field)
        target = "other"
        if match and int(match.group(1)) < len(fields):
            target = fields[int(match.group(1))]
            if target.startswith("rebook-") and field.endswith("clinic_code"):
                target += "-clinic"
            elif target.startswith("rebook-") and not field.endswith("new_start_at"):
                target = "decision-" + target.removeprefix("rebook-")
        elif field == "attempts":
            target = "result"
        message = str(item.get("message", ""))
        errors[target] = f"{errors[target]} {message}" if target in errors else message
    return errors


@router.post("/calls/{call_id}/outcomes")
async def record_outcomes(
    call_id: int, request: Request, session: SessionDep, user: Navigator
) -> Response:
    raw = await request.form()
    form: dict[str, Any] = {key: raw.get(key) for key in raw}
    form["other"] = raw.getlist("other")
    call = _visible_call(session, user, call_id)
    settings = _settings(request)
    decidable = [
        appointment.id for appointment in service.call_detail(session, call_id=call.id).appointments
    ]
    outcomes, fields, errors = _parse_outcomes(form, decidable, settings.timezone)
    if not errors and not outcomes:
        errors["other"] = "Record at least one outcome"
    if errors:
        return _call_page(request, session, user, call, form=form, errors=errors, status_code=422)
    try:
        actions.record_outcomes(
            session,
            settings,
            call_id=call.id,
            user_id=user.id,
            outcomes=outcomes,
            complete=form.get("complete") == "yes",
        )
    except InvalidInputError as error:
        # Nothing is saved: the outcomes and the completion stand or fall together.
        session.rollback()
        call = _visible_call(session, user, call_id)
        return _call_page(
            request,
            session,
            user,
            call,
            form=form,
            errors=_form_errors(error.details or [], fields),
            status_code=422,
        )
    if call.status in ("completed", "unreachable"):
        return RedirectResponse("/queue?notice=completed", status_code=303)
    return RedirectResponse(f"/calls/{call.id}?notice=saved", status_code=303)


@router.post("/calls/{call_id}/complete")
def complete(call_id: int, request: Request, session: SessionDep, user: Navigator) -> Response:
    call = _visible_call(session, user, call_id)
    try:
        actions.complete_call(session, call_id=call.id, user_id=user.id)
    except InvalidInputError as error:
        session.rollback()
        call = _visible_call(session, user, call_id)
        problems = {
            ("result" if item["field"] == "attempts" else "other"): str(item["message"])
            for item in error.details or []
        }
        return _call_page(request, session, user, call, errors=problems, status_code=422)
    return RedirectResponse("/queue?notice=completed", status_code=303)


# --- histories -------------------------------------------------------------------------------


@router.get("/history")
def my_history(request: Request, session: SessionDep, user: Navigator) -> Response:
    calls = service.calls_of_navigator(session, user_id=user.id)
    return render(
        request,
        "calls/history.html",
        {
            "page_title": "My call history",
            "calls": calls,
            "names": _names(session, {call.patient_id for call in calls}),
            "outcomes": service.outcomes_by_call(session, [call.id for call in calls]),
            "outcome_labels": OUTCOME_LABELS,
            "status_labels": STATUS_LABELS,
        },
    )


@router.get("/patients/{patient_id}/history")
def patient_history(
    patient_id: int, request: Request, session: SessionDep, user: Navigator
) -> Response:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFoundError("No patient with that id.")
    calls = list(
        session.scalars(
            select(Call).where(Call.patient_id == patient_id).order_by(Call.queue_date.desc())
        )
    )
    if not user.has_role(Role.MANAGER) and not any(
        service.handled_by(session, call, user.id) for call in calls
    ):
        raise PermissionDeniedError("You can see the history of patients you have called.")
    record_audit(session, user_id=user.id, action="patient.history_viewed", patient_id=patient_id)
    return render(
        request,
        "calls/patient_history.html",
        {
            "page_title": "Patient history",
            "patient": patient,
            "calls": calls,
            "outcomes": service.outcomes_by_call(session, [call.id for call in calls]),
            "attempts": {call.id: service.call_history(session, call_id=call.id) for call in calls},
            "navigators": _usernames(
                session, {call.completed_by for call in calls} | {call.taken_by for call in calls}
            ),
            "outcome_labels": OUTCOME_LABELS,
            "status_labels": STATUS_LABELS,
            "sms": _sms_of_patient(session, patient_id),
        },
    )


# --- managers: overview and scripts ----------------------------------------------------------


@router.get("/manage/queues")
def overview(request: Request, session: SessionDep, _manager: Manager) -> Response:
    settings = _settings(request)
    now = datetime.now(UTC)
    view = service.overview(session, settings, queue_date=service.local_today(settings, now))
    working = service.calls_in_progress(session, now)
    users = _usernames(
        session,
        {call.taken_by for call in working} | {load.user_id for load in view.by_navigator},
    )
    return render(
        request,
        "calls/overview.html",
        {
            "page_title": "Call queues today",
            "view": view,
            "working": working,
            "users": users,
            "status_labels": STATUS_LABELS,
            "outcome_labels": OUTCOME_LABELS,
        },
    )


@router.get("/manage/scripts")
def scripts(request: Request, session: SessionDep, _manager: Manager) -> Response:
    documents.ensure_default_documents(session)
    latest = documents.latest_documents(session)
    return render(
        request,
        "calls/scripts.html",
        {
            "page_title": "Call scripts and SOP",
            "documents": [latest[slug] for slug in sorted(latest)],
            "users": _usernames(
                session, {doc.created_by for doc in latest.values() if doc.created_by}
            ),
        },
    )


def _script_page(
    request: Request,
    session: Session,
    slug: str,
    *,
    body: str | None = None,
    preview: bool = False,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    versions = documents.list_versions(session, slug)
    text = versions[0].body if body is None else body
    return render(
        request,
        "calls/script_edit.html",
        {
            "page_title": f"Edit {versions[0].title}",
            "slug": slug,
            "current": versions[0],
            "versions": versions,
            "body": text,
            "preview_html": _demoted(documents.render_markdown(text))
            if preview or body is None
            else None,
            "users": _usernames(session, {version.created_by for version in versions}),
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/manage/scripts/{slug}")
def edit_script(slug: str, request: Request, session: SessionDep, _manager: Manager) -> Response:
    return _script_page(request, session, slug)


@router.post("/manage/scripts/{slug}")
async def save_script(
    slug: str, request: Request, session: SessionDep, manager: Manager
) -> Response:
    form = await request.form()
    body = str(form.get("body") or "")
    documents.list_versions(session, slug)  # 404 for an unknown document
    if form.get("action") == "preview":
        return _script_page(request, session, slug, body=body, preview=True)
    try:
        actions.edit_document(session, slug=slug, body=body, user_id=manager.id)
    except InvalidInputError as error:
        problems = {str(item["field"]): str(item["message"]) for item in error.details or []}
        return _script_page(request, session, slug, body=body, errors=problems, status_code=422)
    return RedirectResponse(f"/manage/scripts/{slug}", status_code=303)
