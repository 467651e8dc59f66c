"""JSON API for patients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.pagination import Page, PageParams, page_params
from app.patients import repository
from app.patients.schemas import PatientOut, PatientSummary

router = APIRouter(
    prefix="/api/patients",
    tags=["patients"],
    dependencies=[Depends(require_role(Role.NAVIGATOR))],
)


@router.get("", response_model=Page[PatientSummary])
def list_patients(
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    core20: Annotated[bool | None, Query()] = None,
) -> Page[PatientSummary]:
    rows, total = repository.list_patients(
        session, limit=page.limit, offset=page.offset, core20=core20
    )
    return Page(
        items=[PatientSummary.model_validate(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{patient_id}", response_model=PatientOut)
def read_patient(
    patient_id: RecordId,
    session: SessionDep,
    user: Annotated[User, Depends(require_role(Role.NAVIGATOR))],
) -> PatientOut:
    patient = repository.get_patient(session, patient_id)
    if patient is None:
        raise NotFoundError("No patient with that id.")
    record_audit(session, user_id=user.id, action="patient.viewed", patient_id=patient.id)
    return PatientOut.model_validate(patient)
