"""Appointment queries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.appointments.tables import Appointment, AppointmentChange, Clinic


def list_appointments(
    session: Session,
    *,
    limit: int,
    offset: int,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    clinic_code: str | None = None,
    patient_id: int | None = None,
) -> tuple[list[Appointment], int]:
    query = select(Appointment)
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


def get_appointment(session: Session, appointment_id: int) -> Appointment | None:
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
