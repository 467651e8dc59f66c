"""JSON API for patients: every read scoped to what the reader may see, and audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import require_role
from app.auth.reads import PatientReaderDep, record_patient_read
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.pagination import Page, PageParams, page_params
from app.patients import callbacks, repository
from app.patients.schemas import (
    GrantOut,
    LoggedCallIn,
    LoggedCallOut,
    OpenIn,
    PatientMatch,
    PatientOut,
    PatientSummary,
    PhoneCorrectionIn,
    PhoneCorrectionOut,
    SearchOut,
)

router = APIRouter(
    prefix="/api/patients",
    tags=["patients"],
    dependencies=[Depends(require_role(Role.NAVIGATOR))],
)
NavigatorDep = Annotated[User, Depends(require_role(Role.NAVIGATOR))]


@router.get("", response_model=Page[PatientSummary])
def list_patients(
    session: SessionDep,
    reader: PatientReaderDep,
    page: Annotated[PageParams, Depends(page_params)],
    core20: Annotated[bool | None, Query()] = None,
) -> Page[PatientSummary]:
    """The patients the reader may see (all for managers; a navigator's own for navigators)."""
    rows, total = repository.list_patients(
        session, reader, reader.now, limit=page.limit, offset=page.offset, core20=core20
    )
    record_patient_read(
        session,
        reader,
        action="patient.listed",
        patient_ids=[row.id for row in rows],
        filters={"core20": core20, "limit": page.limit, "offset": page.offset},
    )
    return Page(
        items=[PatientSummary.model_validate(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/search", response_model=SearchOut)
def search(
    session: SessionDep,
    reader: PatientReaderDep,
    by: Annotated[str, Query(max_length=16)],
    q: Annotated[str, Query(max_length=120)],
    reason: Annotated[str, Query(max_length=32)],
) -> SearchOut:
    """Patients matching a phone number (any UK format), NHS number or name, for a recorded
    reason (`SearchReason`). Audited; every problem with the input is listed in one 422."""
    result = callbacks.search_patients(
        session, reader, by=by, query=q, reason=reason, now=reader.now
    )
    reader.limiter.record(reader.id, len(result.patients), reader.now.timestamp())
    return SearchOut(
        items=[PatientMatch.model_validate(patient) for patient in result.patients],
        more=result.more,
    )


@router.post("/{patient_id}/open", response_model=GrantOut, status_code=201)
def open_from_search(
    patient_id: RecordId,
    body: OpenIn,
    request: Request,
    session: SessionDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> GrantOut:
    """Pick a patient from your own recent search: audited, and the patient is in your sight
    for the configured hours. A patient no search of yours listed answers 404."""
    grant = callbacks.open_from_search(
        session,
        request.app.state.settings,
        user,
        patient_id=patient_id,
        reason=body.reason,
        now=clock.now(),
    )
    return GrantOut.model_validate(grant)


@router.post("/{patient_id}/calls", response_model=LoggedCallOut, status_code=201)
def log_call(
    patient_id: RecordId,
    body: LoggedCallIn,
    request: Request,
    session: SessionDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> LoggedCallOut:
    """Log an inbound call, or a call made outside the app, against a patient in sight."""
    now = clock.now()
    occurred_at = body.occurred_at
    if occurred_at is not None and occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=request.app.state.settings.calendar.zone)
    contact = callbacks.log_call(
        session,
        user,
        patient_id=patient_id,
        direction=body.direction,
        result=body.result,
        occurred_at=occurred_at,
        note=body.note,
        now=now,
    )
    return LoggedCallOut.model_validate(contact)


@router.post("/{patient_id}/phones", response_model=PhoneCorrectionOut, status_code=201)
def correct_phone(
    patient_id: RecordId,
    body: PhoneCorrectionIn,
    session: SessionDep,
    user: NavigatorDep,
    clock: ClockDep,
) -> PhoneCorrectionOut:
    """Correct a mobile or landline number (a UK number); the old value is kept."""
    change = callbacks.correct_phone(
        session, user, patient_id=patient_id, phone=body.phone, number=body.number, now=clock.now()
    )
    return PhoneCorrectionOut.model_validate(change)


@router.get("/{patient_id}", response_model=PatientOut)
def read_patient(patient_id: RecordId, session: SessionDep, reader: PatientReaderDep) -> PatientOut:
    patient = repository.get_visible_patient(session, reader, patient_id, reader.now)
    if patient is None:
        # Out of scope reads exactly like missing, so ids cannot be probed.
        raise NotFoundError("No patient with that id.")
    record_patient_read(session, reader, action="patient.viewed", patient_ids=[patient.id])
    return PatientOut.model_validate(patient)
