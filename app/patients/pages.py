"""Pages for call-backs from patients: find a patient (audited search with a reason), their
page with the phone numbers as `tel:` links, log a call against them, correct a number.

Thin: `app.patients.callbacks` validates, saves and audits; a problem is shown in the NHS
error summary, by field, and nothing is saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.dependencies import require_role
from app.auth.reads import PatientReaderDep, record_patient_read
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import InvalidInputError
from app.patients import callbacks
from app.patients.access import SearchReason
from app.patients.tables import Patient
from app.settings import Settings
from app.tasks.tables import NavigatorTask, TaskStatus
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Navigator = Annotated[User, Depends(require_role(Role.NAVIGATOR))]

SEARCH_BY_ITEMS = [
    ("phone", "Phone number"),
    ("nhs_number", "NHS number"),
    ("name", "Name"),
]
REASON_ITEMS = [
    (SearchReason.PATIENT_CALLED_IN.value, "The patient rang us"),
    (SearchReason.CALL_BACK.value, "Returning a missed call or a requested call-back"),
    (SearchReason.CORRECT_DETAILS.value, "Correcting a phone number or contact detail"),
    (SearchReason.CALL_OUTSIDE_APP.value, "Recording a call made outside Navigator"),
]
DIRECTION_ITEMS = [
    ("inbound", "The patient rang us"),
    ("outside_app", "I rang the patient from a phone outside Navigator"),
]
RESULT_ITEMS = [
    ("answered", "Answered: I spoke to the patient"),
    ("no_answer", "No answer"),
    ("voicemail", "Voicemail (message left)"),
    ("someone_else", "Someone else picked up"),
]
RESULT_LABELS = dict(RESULT_ITEMS)
DIRECTION_LABELS = {"inbound": "The patient rang", "outside_app": "Rang from outside Navigator"}
PHONE_ITEMS = [("mobile", "Mobile"), ("landline", "Landline")]
NOTICES = {
    "opened": "You can see this patient's record for the next few hours.",
    "logged": "The call was logged. It shows in the patient's history.",
    "corrected": "The phone number was corrected. The old number is kept below.",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _problems(error: InvalidInputError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for item in error.details or []:
        field = str(item["field"])
        message = str(item["message"])
        problems[field] = f"{problems[field]} {message}" if field in problems else message
    return problems


@router.get("/patients/search")
def search_page(request: Request, session: SessionDep, reader: PatientReaderDep) -> Response:
    """The search form; with a query, the matches (audited, with the reason)."""
    params = request.query_params
    form = {key: params.get(key, "").strip() for key in ("by", "q", "reason")}
    errors: dict[str, str] = {}
    result = None
    searched = any(form.values())
    if searched:
        try:
            result = callbacks.search_patients(
                session,
                reader,
                by=form["by"],
                query=form["q"],
                reason=form["reason"],
                now=reader.now,
            )
            reader.limiter.record(reader.id, len(result.patients), reader.now.timestamp())
        except InvalidInputError as error:
            errors = _problems(error)
        if result is not None and not result.patients:
            label = dict(SEARCH_BY_ITEMS).get(form["by"], "details").lower()
            errors["q"] = (
                f"No patient was found with that {label}. Check it with the caller, or "
                "search by another detail"
            )
    else:
        # The empty form names nobody; one audited read keeps every GET of patients counted.
        record_patient_read(
            session, reader, action="patient.listed", patient_ids=[], filters={"search": "form"}
        )
    return render(
        request,
        "patients/search.html",
        {
            "page_title": "Find a patient",
            "form": form,
            "errors": errors,
            "result": result if result is not None and result.patients else None,
            "search_by_items": SEARCH_BY_ITEMS,
            "reason_items": REASON_ITEMS,
        },
        status_code=422 if errors and searched else 200,
    )


@router.post("/patients/{patient_id}/open")
async def open_patient(
    patient_id: RecordId, request: Request, session: SessionDep, user: Navigator, clock: ClockDep
) -> Response:
    form = await request.form()
    callbacks.open_from_search(
        session,
        _settings(request),
        user,
        patient_id=patient_id,
        reason=str(form.get("reason") or ""),
        now=clock.now(),
    )
    return RedirectResponse(f"/patients/{patient_id}?notice=opened", status_code=303)


def _refused(
    request: Request,
    session: Session,
    reader: Any,
    patient_id: int,
    *,
    error: InvalidInputError,
    form: dict[str, Any],
) -> Response:
    """Nothing was saved: roll back and show the patient as they now stand, with the problems."""
    session.rollback()
    patient = callbacks.visible_patient(session, reader, patient_id, reader.now)
    return _patient_page(
        request, session, reader, patient, errors=_problems(error), form=form, status_code=422
    )


def _patient_page(
    request: Request,
    session: Session,
    reader: Any,
    patient: Patient,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    contacts = callbacks.contacts_of(session, patient.id)
    changes = callbacks.phone_changes_of(session, patient.id)
    open_tasks = list(
        session.scalars(
            select(NavigatorTask)
            .where(NavigatorTask.patient_id == patient.id, NavigatorTask.status == TaskStatus.OPEN)
            .order_by(NavigatorTask.created_at)
        )
    )
    usernames = dict(
        session.execute(
            select(User.id, User.username).where(
                User.id.in_(
                    {contact.recorded_by for contact in contacts}
                    | {change.changed_by for change in changes}
                )
            )
        ).all()
    )
    return render(
        request,
        "patients/patient.html",
        {
            "page_title": "Patient",
            "patient": patient,
            "phones": [
                ("mobile", "Mobile", patient.mobile_phone, patient.mobile_phone_invalid),
                ("landline", "Landline", patient.landline_phone, patient.landline_phone_invalid),
            ],
            "display_phone": callbacks.display_phone,
            "contacts": contacts,
            "changes": changes,
            "open_tasks": open_tasks,
            "usernames": usernames,
            "direction_items": DIRECTION_ITEMS,
            "result_items": RESULT_ITEMS,
            "result_labels": RESULT_LABELS,
            "direction_labels": DIRECTION_LABELS,
            "phone_items": PHONE_ITEMS,
            "errors": errors or {},
            "form": form or {},
            "notice": NOTICES.get(request.query_params.get("notice", "")),
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}")
def patient_page(
    patient_id: RecordId, request: Request, session: SessionDep, reader: PatientReaderDep
) -> Response:
    patient = callbacks.visible_patient(session, reader, patient_id, reader.now)
    record_patient_read(session, reader, action="patient.viewed", patient_ids=[patient.id])
    return _patient_page(request, session, reader, patient)


@router.post("/patients/{patient_id}/calls")
async def log_call(
    patient_id: RecordId, request: Request, session: SessionDep, reader: PatientReaderDep
) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    now = reader.now
    patient = callbacks.visible_patient(session, reader, patient_id, now)
    occurred_at, time_problem = callbacks.parse_local_time(
        form.get("time", ""), _settings(request).calendar, now
    )
    problems = [{"field": "time", "message": time_problem}] if time_problem else []
    try:
        callbacks.log_call(
            session,
            reader,
            patient_id=patient.id,
            direction=form.get("direction", ""),
            result=form.get("result", ""),
            occurred_at=occurred_at,
            note=form.get("note"),
            now=now,
            problems=problems,
        )
    except InvalidInputError as error:
        return _refused(request, session, reader, patient_id, error=error, form=form)
    return RedirectResponse(f"/patients/{patient.id}?notice=logged", status_code=303)


@router.post("/patients/{patient_id}/phones")
async def correct_phone(
    patient_id: RecordId, request: Request, session: SessionDep, reader: PatientReaderDep
) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    now = reader.now
    patient = callbacks.visible_patient(session, reader, patient_id, now)
    try:
        callbacks.correct_phone(
            session,
            reader,
            patient_id=patient.id,
            phone=form.get("phone", ""),
            number=form.get("number", "")[:40],
            now=now,
        )
    except InvalidInputError as error:
        return _refused(request, session, reader, patient_id, error=error, form=form)
    return RedirectResponse(f"/patients/{patient.id}?notice=corrected", status_code=303)
