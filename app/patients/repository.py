"""Patient queries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.patients.tables import Patient


def get_patient(session: Session, patient_id: int) -> Patient | None:
    return session.get(Patient, patient_id)


def get_by_pas_id(session: Session, pas_patient_id: str) -> Patient | None:
    return session.scalar(select(Patient).where(Patient.pas_patient_id == pas_patient_id))


def list_patients(
    session: Session, *, limit: int, offset: int, core20: bool | None = None
) -> tuple[list[Patient], int]:
    query = select(Patient)
    if core20 is not None:
        query = query.where(Patient.core20.is_(core20))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Patient.id).limit(limit).offset(offset)).all()
    return list(rows), total
