"""JSON API for appointments."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from app.appointments import repository
from app.appointments.schemas import AppointmentChangeOut, AppointmentDetail, AppointmentOut
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.db.errors import MAX_RECORD_ID, RecordId
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.pagination import Page, PageParams, page_params

router = APIRouter(
    prefix="/api/appointments",
    tags=["appointments"],
    dependencies=[Depends(require_role(Role.NAVIGATOR))],
)


def _local_midnight(day: date | None, timezone: str) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


@router.get("", response_model=Page[AppointmentOut])
def list_appointments(
    request: Request,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    start_from: Annotated[date | None, Query(alias="from", description="first day")] = None,
    start_to: Annotated[date | None, Query(alias="to", description="day after the last")] = None,
    clinic: Annotated[str | None, Query(max_length=32)] = None,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
) -> Page[AppointmentOut]:
    timezone = request.app.state.settings.timezone
    rows, total = repository.list_appointments(
        session,
        limit=page.limit,
        offset=page.offset,
        start_from=_local_midnight(start_from, timezone),
        start_to=_local_midnight(start_to, timezone),
        clinic_code=clinic,
        patient_id=patient_id,
    )
    return Page(
        items=[AppointmentOut.model_validate(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{appointment_id}", response_model=AppointmentDetail)
def read_appointment(
    appointment_id: RecordId,
    session: SessionDep,
    user: Annotated[User, Depends(require_role(Role.NAVIGATOR))],
) -> AppointmentDetail:
    appointment = repository.get_appointment(session, appointment_id)
    if appointment is None:
        raise NotFoundError("No appointment with that id.")
    record_audit(
        session,
        user_id=user.id,
        action="appointment.viewed",
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
    )
    changes = repository.list_changes(session, appointment_id)
    return AppointmentDetail(
        **AppointmentOut.model_validate(appointment).model_dump(),
        changes=[AppointmentChangeOut.model_validate(change) for change in changes],
    )
