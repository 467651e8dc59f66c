"""Appointment queries; readers' queries start from `visible_to` (the patients' scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from app.appointments.tables import Appointment, AppointmentChange, Clinic
from app.patients.repository import Reader, visible_patient_condition


def visible_to(reader: Reader, now: datetime) -> Select[Any]:
    """Every reader's read of appointments starts here: those of patients they may see."""
    return select(Appointment).where(visible_patient_condition(Appointment.patient_id, reader, now))


def list_appointments(
    session: Session,
    reader: Reader,
    now: datetime,
    *,
    limit: int,
    offset: int,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    clinic_code: str | None = None,
    patient_id: int | None = None,
) -> tuple[list[Appointment], int]:
    query = visible_to(reader, now)
    if start_from is not None:
        query = query.where(Appointment.start_at >= start_from)
    if start_to is not None:
        query = query.where(Appointment.start_at < start_to)
    if clinic_code is not None:
        query = query.join(Clinic).where(Clinic.code == clinic_code)
    if patient_id is not None:
        query = query.where(Appointment.patient_id == patient_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(joinedload(Appointment.clinic))
        .order_by(Appointment.start_at, Appointment.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def get_visible_appointment(
    session: Session, reader: Reader, appointment_id: int, now: datetime
) -> Appointment | None:
    """The appointment when `reader` may see its patient; None when missing or out of scope."""
    return session.scalar(
        visible_to(reader, now)
        .options(joinedload(Appointment.clinic))
        .where(Appointment.id == appointment_id)
    )


def get_appointment(session: Session, appointment_id: int) -> Appointment | None:
    """Unscoped: for imports, jobs and services acting for the trust, never for a reader."""
    return session.scalar(
        select(Appointment)
        .options(joinedload(Appointment.clinic))
        .where(Appointment.id == appointment_id)
    )


def list_changes(session: Session, appointment_id: int) -> list[AppointmentChange]:
    return list(
        session.scalars(
            select(AppointmentChange)
            .where(AppointmentChange.appointment_id == appointment_id)
            .order_by(AppointmentChange.changed_at, AppointmentChange.id)
        )
    )
