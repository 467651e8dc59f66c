"""JSON API for appointments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.appointments import repository
from app.appointments.schemas import AppointmentChangeOut, AppointmentDetail, AppointmentOut
from app.auth.dependencies import require_role
from app.auth.reads import PatientReaderDep, record_patient_read
from app.auth.roles import Role
from app.db.errors import MAX_RECORD_ID, RecordId
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.isodate import IsoDate
from app.pagination import Page, PageParams, page_params
from app.settings import Settings

router = APIRouter(
    prefix="/api/appointments",
    tags=["appointments"],
    dependencies=[Depends(require_role(Role.NAVIGATOR))],
)


def _local_midnight(day: date | None, settings: Settings) -> datetime | None:
    """The start of a local calendar day (Europe/London), in UTC."""
    return settings.calendar.day_start(day) if day is not None else None


@router.get("", response_model=Page[AppointmentOut])
def list_appointments(
    request: Request,
    session: SessionDep,
    reader: PatientReaderDep,
    page: Annotated[PageParams, Depends(page_params)],
    start_from: Annotated[IsoDate | None, Query(alias="from", description="first day")] = None,
    start_to: Annotated[IsoDate | None, Query(alias="to", description="day after the last")] = None,
    clinic: Annotated[str | None, Query(max_length=32)] = None,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
) -> Page[AppointmentOut]:
    settings: Settings = request.app.state.settings
    rows, total = repository.list_appointments(
        session,
        reader,
        reader.now,
        limit=page.limit,
        offset=page.offset,
        start_from=_local_midnight(start_from, settings),
        start_to=_local_midnight(start_to, settings),
        clinic_code=clinic,
        patient_id=patient_id,
    )
    record_patient_read(
        session,
        reader,
        action="appointment.listed",
        patient_ids=[row.patient_id for row in rows],
        filters={
            "from": start_from.isoformat() if start_from else None,
            "to": start_to.isoformat() if start_to else None,
            "clinic": clinic,
            "patient_id": patient_id,
            "limit": page.limit,
            "offset": page.offset,
            "appointment_ids": [row.id for row in rows],
        },
    )
    return Page(
        items=[AppointmentOut.model_validate(row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{appointment_id}", response_model=AppointmentDetail)
def read_appointment(
    appointment_id: RecordId, session: SessionDep, reader: PatientReaderDep
) -> AppointmentDetail:
    appointment = repository.get_visible_appointment(session, reader, appointment_id, reader.now)
    if appointment is None:
        # Out of scope reads exactly like missing, so ids cannot be probed.
        raise NotFoundError("No appointment with that id.")
    record_patient_read(
        session,
        reader,
        action="appointment.viewed",
        patient_ids=[appointment.patient_id],
        appointment_id=appointment.id,
    )
    changes = repository.list_changes(session, appointment_id)
    return AppointmentDetail(
        **AppointmentOut.model_validate(appointment).model_dump(),
        changes=[AppointmentChangeOut.model_validate(change) for change in changes],
    )
