"""HTML pages of the navigator's day: my queue, the call screen with its outcome form, call
histories (mine and per patient) and the managers' queue overview (script/SOP editing is in
`script_pages.py`).

Thin like the JSON API: the calls service does the work and the same audit actions are
recorded. Navigators see a call only while they hold it or after they worked on it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments.tables import Clinic
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.bookings import service as bookings_service
from app.calls import actions, day, languages, repository, service
from app.calls.router import HEARTBEAT_SECONDS
from app.calls.schemas import AppointmentOnCall, OutcomeIn
from app.calls.tables import AttemptResult, Call, OutcomeKind
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.isodate import parse_date_parts
from app.localtime import TrustCalendar
from app.patients import callbacks
from app.patients import repository as patients_repository
from app.patients.tables import Patient
from app.settings import Settings
from app.sms import repository as sms_repository
from app.sms.tables import SmsInbound
from app.tasks import repository as tasks_repository
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Navigator = Annotated[User, Depends(require_role(Role.NAVIGATOR))]
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]

ATTEMPT_LABELS = {
    AttemptResult.ANSWERED: "Answered",
    AttemptResult.NO_ANSWER: "No answer",
    AttemptResult.VOICEMAIL: "Voicemail (message left)",
    AttemptResult.WRONG_NUMBER: "Wrong number",
    AttemptResult.SOMEONE_ELSE: "Someone else picked up (say nothing about why you are calling)",
    AttemptResult.CALL_BACK: "The patient asked to be called back at a time (enter it below)",
    AttemptResult.SENT: "Text, email or letter sent",
}
CHANNEL_LABELS = {
    "mobile": "Mobile",
    "landline": "Landline",
    "video_relay": "Video relay (BSL)",
    "sms": "Text message",
    "email": "Email",
    "letter": "Letter",
}
IDENTITY_ITEMS = [
    ("confirmed", "Confirmed: name and date of birth match"),
    ("not_confirmed", "Not confirmed: say nothing about any appointment"),
]
DECISION_LABELS = {
    "": "Nothing recorded for this appointment",
    OutcomeKind.CONFIRMED: "Confirmed: the patient will attend",
    OutcomeKind.REBOOKED: "Rebook: ask the booking team for a new date and time",
    OutcomeKind.CANCELLED: "Cancel: ask the booking team to cancel it",
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
    # What happened, as history shows it: the PAS makes the change (app/bookings).
    OutcomeKind.REBOOKED: "Rebooking requested",
    OutcomeKind.CANCELLED: "Cancellation requested",
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
    "identity": "Identity confirmed. Go on with the script.",
    "note": "The note was saved.",
    "released": "The call went back to the queue for a colleague to take.",
    "undone": "The outcome was undone. The old version is kept in the call's history.",
    "corrected": "The corrected outcomes were saved.",
    "reopened": "The outcome was undone and the call is open again: record what happened.",
    "reassigned": "The call was reassigned.",
}
# The call screen renews its lease this often, and warns this long before a lease it could not
# renew (the network is down, the laptop slept) lapses.
LEASE_WARNING_SECONDS = 5 * 60
HEADING_TAG = re.compile(r"<(/?)h([1-6])>")
# ASCII digits only: `\d` alone also matches other scripts' digits, which int() accepts.
TIME = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$", re.ASCII)
DAY = re.compile(r"^(\d{1,2})[/ .-](\d{1,2})[/ .-](\d{4})$", re.ASCII)


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
    """The call if it is visible to this user (`repository.visible_to`), else 404."""
    return repository.get_visible(session, user, call_id)


# --- my queue --------------------------------------------------------------------------------


@router.get("/queue")
def my_queue(request: Request, session: SessionDep, user: Navigator, clock: ClockDep) -> Response:
    settings = _settings(request)
    now = clock.now()
    view = service.my_queue(session, settings, user_id=user.id, now=now)
    # The page shows a count of tasks linking to /tasks, not the tasks: it names none of them.
    actions.record_list_read(
        session,
        user=user,
        action="queue.viewed",
        patient_ids=actions.queue_patients(view.model_copy(update={"tasks": []})),
        now=now,
    )
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
            "my_tasks": tasks_repository.count_open(session, user)[1],
            "notice": _callback_notice(request, session, user, settings) or _notice(request),
        },
    )


@router.post("/queue/next")
def take_next(request: Request, session: SessionDep, user: Navigator, clock: ClockDep) -> Response:
    call = actions.take_next(session, _settings(request), user_id=user.id, now=clock.now())
    if call is None:
        return RedirectResponse("/queue?notice=empty", status_code=303)
    return RedirectResponse(f"/calls/{call.id}", status_code=303)


def _callback_notice(
    request: Request, session: Session, user: User, settings: Settings
) -> str | None:
    """After a missed attempt: when the call comes back, in local time."""
    call_id = request.query_params.get("call", "")
    if request.query_params.get("notice") != "retry" or not call_id.isdigit():
        return None
    try:
        call = repository.get_visible(session, user, int(call_id))
    except NotFoundError:
        return None
    if call.next_attempt_at is None:
        return None
    back = settings.calendar.local(call.next_attempt_at)
    return (
        f"The attempt was saved. Call {call.id} comes back for a callback on "
        f"{back:%A %-d %B} at {back:%H:%M}."
    )


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


def _refused(
    request: Request,
    session: Session,
    user: User,
    call_id: int,
    *,
    now: datetime,
    errors: dict[str, str],
    form: dict[str, Any] | None = None,
) -> Response:
    """Nothing was saved: roll back and show the call as it now stands, with the problems."""
    session.rollback()
    call = _visible_call(session, user, call_id)
    return _call_page(
        request, session, user, call, now=now, form=form, errors=errors, status_code=422
    )


def _call_page(
    request: Request,
    session: Session,
    user: User,
    call: Call,
    *,
    now: datetime,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    kept: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    detail = actions.view_call(session, call_id=call.id, user=user, now=now)
    for document in [*detail.script, detail.sop]:
        document.html = _demoted(document.html)
    holding = call.status == "in_progress" and call.taken_by == user.id
    answered = any(
        attempt.result == AttemptResult.ANSWERED and attempt.identity != "not_confirmed"
        for attempt in detail.attempts
    )
    last = detail.attempts[-1] if detail.attempts else None
    identity_due = (
        holding and last is not None and last.result == AttemptResult.ANSWERED and not last.identity
    )
    settings = _settings(request)
    decidable = [
        appointment
        for appointment in detail.appointments
        if appointment.covered_by_this_call or appointment.start_at >= now
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
            "channel_items": _channels(detail.patient),
            "calendar_start": settings.calendar.day_start_hour,
            "calendar_end": settings.calendar.day_end_hour,
            "channel_labels": CHANNEL_LABELS,
            "attempt_labels": ATTEMPT_LABELS,
            "identity_items": IDENTITY_ITEMS,
            "identity_due": identity_due,
            "correcting": day.can_correct(settings, call, user, now),
            "languages": languages.choices(),
            "language_name": languages.language_name,
            "usernames": _usernames(
                session,
                {note.written_by for note in detail.notes}
                | {change.changed_by for change in detail.corrections},
            ),
            "decision_items": [(str(kind), text) for kind, text in DECISION_LABELS.items()],
            "other_items": [(str(kind), text) for kind, text in OTHER_LABELS.items()],
            "outcome_labels": OUTCOME_LABELS,
            "status_labels": STATUS_LABELS,
            "form": form or {},
            "errors": errors or {},
            "sms": _sms_of_patient(session, detail.patient.id),
            "notice": _notice(request),
            "kept": kept,
            "lease": _lease(call, now) if holding else None,
            "display_phone": callbacks.display_phone,
        },
        status_code=status_code,
    )


def _channels(patient: Any) -> list[tuple[str, str]]:
    """The ways to try this patient: their phones, and for a BSL (or deafblind) user or a
    patient without a usable phone, video relay, text, email and letter."""
    phones = [
        channel
        for channel, number, invalid in (
            ("mobile", patient.mobile_phone, patient.mobile_phone_invalid),
            ("landline", patient.landline_phone, patient.landline_phone_invalid),
        )
        if number and not invalid
    ]
    needs = set(patient.communication_needs)
    written: list[str] = []
    if needs & {"bsl", "deafblind"}:
        written = ["video_relay", "sms", "email", "letter"]
    elif not phones:
        written = ["letter"]
    return [(channel, CHANNEL_LABELS[channel]) for channel in [*phones, *written]]


def _lease(call: Call, now: datetime) -> dict[str, Any]:
    """What the call screen's heartbeat script needs (`/static/js/call-lease.js`)."""
    expires_at = call.lease_expires_at or now
    return {
        "url": f"/api/calls/{call.id}/heartbeat",
        "expires_at": expires_at,
        "seconds_left": service.lease_seconds_left(expires_at, now),
        "every_seconds": HEARTBEAT_SECONDS,
        "warn_seconds": LEASE_WARNING_SECONDS,
    }


@router.get("/calls/{call_id}")
def call_screen(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    return _call_page(
        request, session, user, _visible_call(session, user, call_id), now=clock.now()
    )


@router.post("/calls/{call_id}/attempts")
async def record_attempt(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    form = await request.form()
    call = _visible_call(session, user, call_id)
    result = str(form.get("result") or "")
    channel = str(form.get("channel") or "")
    errors = {}
    if result not in set(AttemptResult):
        errors["result"] = "Choose what happened when you tried to reach the patient"
    if channel not in service.CHANNELS:
        errors["channel"] = "Choose how you tried to reach the patient"
    callback_at = None
    if result == AttemptResult.CALL_BACK:
        callback_at = _parse_callback(form, _settings(request).calendar, now, errors)
    if errors:
        return _call_page(
            request, session, user, call, now=now, form=dict(form), errors=errors, status_code=422
        )
    try:
        call = actions.record_attempt(
            session,
            _settings(request),
            call_id=call_id,
            user=user,
            result=AttemptResult(result),
            channel=channel,
            now=now,
            callback_at=callback_at,
        )
    except InvalidInputError as error:
        problems = {str(item["field"]): str(item["message"]) for item in error.details or []}
        return _refused(request, session, user, call_id, now=now, form=dict(form), errors=problems)
    if call.status in ("retry", "unreachable"):
        return RedirectResponse(f"/queue?notice={call.status}&call={call.id}", status_code=303)
    return RedirectResponse(f"/calls/{call.id}", status_code=303)


def _parse_callback(
    form: Any, calendar: TrustCalendar, now: datetime, errors: dict[str, str]
) -> datetime | None:
    """The local time (and day, today when left empty) the patient asked to be called back."""
    clock = TIME.match(str(form.get("callback-time") or "").strip())
    typed = str(form.get("callback-date") or "").strip()
    day = calendar.today(now)
    if typed:
        match = DAY.match(typed)
        try:
            if match is None:
                raise ValueError(typed)
            day = parse_date_parts(match.group(1), match.group(2), match.group(3))
        except ValueError:
            errors["callback-date"] = "Enter the callback date as a real date, e.g. 15/12/2026"
    if clock is None:
        errors["callback-time"] = (
            "Enter the time the patient asked to be called back on the 24-hour clock, e.g. 15:00"
        )
    if clock is None or "callback-date" in errors:
        return None
    return calendar.at(day, time(int(clock.group(1)), int(clock.group(2))))


async def _submitted_outcomes(
    request: Request, session: Session, call: Call, now: datetime, settings: Settings
) -> tuple[dict[str, Any], list[OutcomeIn], list[str], dict[str, str]]:
    """The outcomes form as typed, the outcomes it asks for, their fields, and its errors."""
    raw = await request.form()
    form: dict[str, Any] = {key: raw.get(key) for key in raw}
    form["other"] = raw.getlist("other")
    decidable = [
        appointment.id
        for appointment in service.call_detail(session, call_id=call.id, now=now).appointments
    ]
    outcomes, fields, errors = _parse_outcomes(form, decidable, settings.calendar)
    if not errors and not outcomes:
        errors["other"] = "Record at least one outcome"
    return form, outcomes, fields, errors


def _parse_outcomes(
    form: dict[str, Any], decidable_ids: list[int], calendar: TrustCalendar
) -> tuple[list[OutcomeIn], list[str], dict[str, str]]:
    """The outcomes the form asks for, the form field behind each, and form-level errors."""
    outcomes: list[OutcomeIn] = []
    fields: list[str] = []
    errors: dict[str, str] = {}
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
            day = None
            try:
                day = parse_date_parts(parts[0], parts[1], parts[2])
            except ValueError:
                errors[prefix] = "Enter the new appointment date as a real date, e.g. 15 12 2026"
            if clock is None:
                # An impossible time (25:99) is a time error, reported with any date error.
                errors[f"{prefix}-time"] = (
                    "Enter the new appointment time as a real time on the 24-hour clock, e.g. 14:30"
                )
            if day is None or clock is None:
                continue
            new_start_at = calendar.at(day, time(int(clock.group(1)), int(clock.group(2))))
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
                language=str(form.get("language") or "").strip()[:40] or None
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
            elif target.startswith("rebook-") and field.endswith("new_start_at.time"):
                target += "-time"
            elif target.startswith("rebook-") and not field.endswith("new_start_at"):
                target = "decision-" + target.removeprefix("rebook-")
        elif field == "attempts":
            target = "result"
        message = str(item.get("message", ""))
        errors[target] = f"{errors[target]} {message}" if target in errors else message
    return errors


def _kept_outcomes(
    session: Session,
    form: dict[str, Any],
    outcomes: list[OutcomeIn],
    error: service.HeldByAnotherError,
    calendar: TrustCalendar,
) -> dict[str, Any]:
    """What the navigator typed, to show back and to resubmit as hidden fields."""
    described = []
    for outcome in outcomes:
        text = OUTCOME_LABELS.get(outcome.kind, str(outcome.kind))
        if outcome.new_start_at is not None:
            text += ": " + calendar.local(outcome.new_start_at).strftime("%A %-d %B %Y at %H:%M")
        if outcome.language:
            text += f": {languages.language_name(outcome.language)}"
        if outcome.text:
            text += f": {outcome.text}"
        described.append(text)
    fields: list[tuple[str, str]] = []
    for name, value in form.items():
        if name in {"csrf_token", "take_back"} or value in (None, ""):
            continue
        for item in value if isinstance(value, list) else [value]:
            fields.append((name, str(item)))
    holder = _usernames(session, {error.holder_id}).get(error.holder_id, "a colleague")
    return {
        "holder": holder,
        "can_take_back": error.can_take_back,
        "outcomes": described,
        "fields": fields,
    }


@router.post("/calls/{call_id}/outcomes")
async def record_outcomes(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    call = _visible_call(session, user, call_id)
    settings = _settings(request)
    form, outcomes, fields, errors = await _submitted_outcomes(
        request, session, call, now, settings
    )
    if errors:
        return _call_page(
            request, session, user, call, now=now, form=form, errors=errors, status_code=422
        )
    try:
        actions.record_outcomes(
            session,
            settings,
            call_id=call.id,
            user=user,
            outcomes=outcomes,
            complete=form.get("complete") == "yes",
            now=now,
            take_back=form.get("take_back") == "yes",
        )
    except service.HeldByAnotherError as error:
        # The lease lapsed and a colleague took the call: keep what was typed and let the
        # navigator choose, rather than losing it.
        session.rollback()
        call = _visible_call(session, user, call_id)
        return _call_page(
            request,
            session,
            user,
            call,
            now=now,
            kept=_kept_outcomes(session, form, outcomes, error, settings.calendar),
            status_code=409,
        )
    except InvalidInputError as error:
        # Nothing is saved: the outcomes and the completion stand or fall together.
        return _refused(
            request,
            session,
            user,
            call_id,
            now=now,
            form=form,
            errors=_form_errors(error.details or [], fields),
        )
    if call.status in ("completed", "unreachable"):
        return RedirectResponse("/queue?notice=completed", status_code=303)
    return RedirectResponse(f"/calls/{call.id}?notice=saved", status_code=303)


@router.post("/calls/{call_id}/complete")
def complete(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    call = _visible_call(session, user, call_id)
    try:
        actions.complete_call(session, call_id=call.id, user=user, now=now)
    except InvalidInputError as error:
        problems = {
            ("result" if item["field"] == "attempts" else "other"): str(item["message"])
            for item in error.details or []
        }
        return _refused(request, session, user, call_id, now=now, errors=problems)
    return RedirectResponse("/queue?notice=completed", status_code=303)


def _problems(error: InvalidInputError) -> dict[str, str]:
    return {str(item["field"]): str(item["message"]) for item in error.details or []}


@router.post("/calls/{call_id}/identity")
async def record_identity(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    form = await request.form()
    call = _visible_call(session, user, call_id)
    choice = str(form.get("identity") or "")
    if choice not in {"confirmed", "not_confirmed"}:
        return _call_page(
            request,
            session,
            user,
            call,
            now=now,
            errors={"identity": "Choose whether the patient's identity was confirmed"},
            status_code=422,
        )
    try:
        call = actions.record_identity(
            session,
            _settings(request),
            call_id=call.id,
            user=user,
            confirmed=choice == "confirmed",
            now=now,
        )
    except InvalidInputError as error:
        return _refused(request, session, user, call_id, now=now, errors=_problems(error))
    if call.status in ("retry", "unreachable"):
        return RedirectResponse(f"/queue?notice={call.status}&call={call.id}", status_code=303)
    return RedirectResponse(f"/calls/{call.id}?notice=identity", status_code=303)


@router.post("/calls/{call_id}/notes")
async def add_note(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    form = await request.form()
    call = _visible_call(session, user, call_id)
    body = str(form.get("note") or "")
    try:
        actions.add_note(session, call_id=call.id, user=user, body=body, now=now)
    except InvalidInputError as error:
        return _refused(
            request, session, user, call_id, now=now, form={"note": body}, errors=_problems(error)
        )
    return RedirectResponse(f"/calls/{call.id}?notice=note", status_code=303)


@router.post("/calls/{call_id}/release")
def release(call_id: RecordId, session: SessionDep, user: Navigator, clock: ClockDep) -> Response:
    actions.release_call(session, call_id=call_id, user=user, now=clock.now())
    return RedirectResponse("/queue?notice=released", status_code=303)


@router.post("/calls/{call_id}/outcomes/{outcome_id}/undo")
def undo_outcome(
    call_id: RecordId,
    outcome_id: RecordId,
    request: Request,
    session: SessionDep,
    user: Navigator,
    clock: ClockDep,
) -> Response:
    actions.undo_outcome(
        session,
        _settings(request),
        call_id=call_id,
        outcome_id=outcome_id,
        user=user,
        now=clock.now(),
    )
    call = _visible_call(session, user, call_id)
    notice = "reopened" if call.status == "in_progress" else "undone"
    return RedirectResponse(f"/calls/{call_id}?notice={notice}", status_code=303)


@router.post("/calls/{call_id}/corrections")
async def correct_outcomes(
    call_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    now = clock.now()
    call = _visible_call(session, user, call_id)
    settings = _settings(request)
    form, outcomes, fields, errors = await _submitted_outcomes(
        request, session, call, now, settings
    )
    if not errors:
        try:
            actions.correct_outcomes(
                session, settings, call_id=call.id, user=user, outcomes=outcomes, now=now
            )
        except InvalidInputError as error:
            session.rollback()
            errors = _form_errors(error.details or [], fields)
    if errors:
        call = _visible_call(session, user, call_id)
        return _call_page(
            request, session, user, call, now=now, form=form, errors=errors, status_code=422
        )
    return RedirectResponse(f"/calls/{call.id}?notice=corrected", status_code=303)


@router.get("/queue/tomorrow")
def tomorrow(request: Request, session: SessionDep, user: Navigator, clock: ClockDep) -> Response:
    """Read only: the next working day's callbacks and queued calls. Names only for calls
    this navigator may see (`repository.visible_to`); the rest are numbers."""
    settings = _settings(request)
    now = clock.now()
    day_, items = day.tomorrow_list(session, settings, now=now)
    visible = set(
        session.scalars(
            select(Call.id).where(
                Call.id.in_([item.call_id for item in items]), repository.visible_to(user)
            )
        )
    )
    named = {item.patient_id for item in items if item.call_id in visible}
    actions.record_list_read(session, user=user, action="queue.viewed", patient_ids=named, now=now)
    return render(
        request,
        "calls/tomorrow.html",
        {
            "page_title": "Tomorrow's list",
            "day": day_,
            "items": items,
            "visible": visible,
            "names": _names(session, named),
        },
    )


# --- histories -------------------------------------------------------------------------------


@router.get("/history")
def my_history(request: Request, session: SessionDep, user: Navigator, clock: ClockDep) -> Response:
    calls = repository.calls_worked_by(session, user.id)
    actions.record_list_read(
        session,
        user=user,
        action="calls.history_listed",
        patient_ids={call.patient_id for call in calls},
        now=clock.now(),
    )
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
    patient_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFoundError("No patient with that id.")
    calls = repository.calls_of_patient(session, user, patient_id)
    if not calls and not patients_repository.can_see_patient(
        session, user, patient_id, clock.now()
    ):
        # A navigator sees the history of patients they have called (only those calls), or
        # found through an audited search.
        raise NotFoundError("No patient with that id.")
    record_audit(session, user_id=user.id, action="patient.history_viewed", patient_id=patient_id)
    contacts = callbacks.contacts_of(session, patient_id)
    return render(
        request,
        "calls/patient_history.html",
        {
            "page_title": "Patient history",
            "patient": patient,
            "calls": calls,
            "outcomes": service.outcomes_by_call(session, [call.id for call in calls]),
            "attempts": {call.id: service.call_history(session, call_id=call.id) for call in calls},
            "channel_labels": CHANNEL_LABELS,
            "navigators": _usernames(
                session,
                {call.completed_by for call in calls}
                | {call.taken_by for call in calls}
                | {contact.recorded_by for contact in contacts},
            ),
            "contacts": contacts,
            "outcome_labels": OUTCOME_LABELS,
            "status_labels": STATUS_LABELS,
            "sms": _sms_of_patient(session, patient_id),
            "booking_requests": bookings_service.requests_for_patient(session, patient_id),
        },
    )


# --- managers: overview and scripts ----------------------------------------------------------


# How far back a manager may look at an earlier day's queues.
OVERVIEW_DAYS_BACK = 366


def _overview_day(request: Request, today: date) -> tuple[date, dict[str, str], str | None]:
    """The day the queues page shows: today, or the earlier day in `date-day`, `date-month`
    and `date-year` (what was typed, and the problem with it in words, if any)."""
    typed = {
        part: request.query_params.get(f"date-{part}", "").strip()[:6]
        for part in ("day", "month", "year")
    }
    if not any(typed.values()):
        return today, {}, None
    try:
        chosen = parse_date_parts(typed["day"], typed["month"], typed["year"])
    except ValueError:
        return today, typed, "The day must be a real date, for example 3 12 2026"
    if chosen > today:
        return today, typed, "The day must be today or earlier: later queues are not built yet"
    if chosen < today - timedelta(days=OVERVIEW_DAYS_BACK):
        return today, typed, f"The day must be within the last {OVERVIEW_DAYS_BACK} days"
    return chosen, typed, None


def _day_link(day: date, today: date) -> str | None:
    """The queues page's address for `day` (None when that day cannot be shown)."""
    if day > today or day < today - timedelta(days=OVERVIEW_DAYS_BACK):
        return None
    if day == today:
        return "/manage/queues"
    query = urlencode({"date-day": day.day, "date-month": day.month, "date-year": day.year})
    return f"/manage/queues?{query}"


@router.get("/manage/queues")
def overview(request: Request, session: SessionDep, _manager: Manager, clock: ClockDep) -> Response:
    now = clock.now()
    shown, typed, problem = _overview_day(request, _settings(request).calendar.today(now))
    return _overview_page(
        request,
        session,
        now,
        shown_day=shown,
        typed_day=typed,
        errors={"date": problem} if problem else None,
    )


def _overview_page(
    request: Request,
    session: Session,
    now: datetime,
    *,
    shown_day: date | None = None,
    typed_day: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    settings = _settings(request)
    today = settings.calendar.today(now)
    queue_date = shown_day or today
    view = service.overview(session, settings, queue_date=queue_date, now=now)
    is_today = queue_date == today
    working = service.calls_in_progress(session, now) if is_today else []
    users = _usernames(
        session,
        {call.taken_by for call in working} | {load.user_id for load in view.by_navigator},
    )
    return render(
        request,
        "calls/overview.html",
        {
            "page_title": "Call queues today"
            if is_today
            else f"Call queues on {queue_date:%A %-d %B %Y}",
            "view": view,
            "is_today": is_today,
            "typed_day": typed_day or queue_date,
            "previous_day": _day_link(queue_date - timedelta(days=1), today),
            "next_day": None if is_today else _day_link(queue_date + timedelta(days=1), today),
            "working": working,
            "users": users,
            "status_labels": STATUS_LABELS,
            "outcome_labels": OUTCOME_LABELS,
            "navigators": [(str(user.id), user.username) for user in day.navigators(session)],
            "errors": errors or {},
            "form": form or {},
            "notice": _notice(request),
        },
        status_code=422 if errors else 200,
    )


@router.post("/manage/calls/reassign")
async def reassign(
    request: Request, session: SessionDep, manager: Manager, clock: ClockDep
) -> Response:
    form = await request.form()
    call_text = str(form.get("call") or "").strip()
    navigator_text = str(form.get("navigator") or "").strip()
    errors: dict[str, str] = {}
    if not call_text.isdigit():
        errors["call"] = "Enter the call number, for example 1025"
    if not navigator_text.isdigit():
        errors["navigator"] = "Choose a navigator from the list"
    if not errors:
        try:
            repository.get_visible(session, manager, int(call_text))
            actions.reassign_call(
                session,
                _settings(request),
                call_id=int(call_text),
                manager=manager,
                to_user_id=int(navigator_text),
                now=clock.now(),
            )
        except NotFoundError:
            errors["call"] = "There is no call with that number"
        except InvalidInputError as error:
            session.rollback()
            errors = _problems(error)
        except ConflictError as error:
            session.rollback()
            errors["call"] = str(error)
    if errors:
        return _overview_page(request, session, clock.now(), errors=errors, form=dict(form))
    return RedirectResponse("/manage/queues?notice=reassigned", status_code=303)
