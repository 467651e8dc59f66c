"""Queries of the risk feature: appointment histories as columns, the model registry, scores.

Histories are fetched with plain SQL that returns integers (epoch seconds, codes) so that a
million rows turn into numpy arrays without building a Python datetime per value.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Table,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.db.dialect import upsert
from app.patients.tables import Patient
from app.risk.features import NEVER, AppointmentHistory
from app.risk.tables import RiskModel, RiskModelDecision, RiskScore


def _epoch(column: Any) -> ColumnElement[int]:
    return cast(extract("epoch", column), BigInteger)


def load_history(session: Session, patient_ids: Select[Any] | None = None) -> AppointmentHistory:
    """Every appointment of the patients `patient_ids` selects (all patients when None)."""
    called = (
        exists()
        .where(AppointmentContact.appointment_id == Appointment.id)
        .where(AppointmentContact.channel == "call")
    )
    appointments = select(
        Appointment.id,
        Appointment.patient_id,
        Appointment.clinic_id,
        _epoch(Appointment.booked_at),
        _epoch(Appointment.start_at),
        case(
            (Appointment.first_attendance.is_(None), -1),
            (Appointment.first_attendance.is_(True), 1),
            else_=0,
        ),
        cast(Appointment.attendance_code, Integer),
        func.coalesce(_epoch(Appointment.outcome_recorded_at), literal(int(NEVER), BigInteger)),
        case((Appointment.replaces_appointment_id.is_(None), 0), else_=1),
        case((called, 1), else_=0),
    ).order_by(Appointment.id)
    patients = select(
        Patient.id,
        _epoch(Patient.birth_date),
        Patient.sex,
        Patient.imd_decile,
        Patient.core20,
        Patient.interpreter_needed,
        Patient.communication_needs,
        Patient.learning_disability,
        Patient.ethnic_category,
    ).order_by(Patient.id)
    if patient_ids is not None:
        appointments = appointments.where(Appointment.patient_id.in_(patient_ids))
        patients = patients.where(Patient.id.in_(patient_ids))

    rows = session.execute(appointments).all()
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * 10
    patient_rows = session.execute(patients).all()
    patient_columns: list[Sequence[Any]] = (
        list(zip(*patient_rows, strict=True)) if patient_rows else [()] * 9
    )
    clinic_rows = session.execute(select(Clinic.id, Clinic.code, Clinic.specialty_code)).all()

    patient_ids_sorted = np.array(patient_columns[0], dtype=np.int64)
    clinic_ids = np.array([row[0] for row in clinic_rows], dtype=np.int64)
    clinic_order = np.argsort(clinic_ids)
    clinic_codes = np.array([row[1] for row in clinic_rows], dtype=object)[clinic_order]
    clinic_specialties = np.array([row[2] or "" for row in clinic_rows], dtype=object)[clinic_order]
    clinic_index = np.searchsorted(
        clinic_ids[clinic_order], np.array(columns[2], dtype=np.int64)
    ).astype(np.int64)
    first = np.array(columns[5], dtype=np.int64).astype(float)
    first[first < 0] = np.nan
    return AppointmentHistory(
        appointment_id=np.array(columns[0], dtype=np.int64),
        patient=np.searchsorted(patient_ids_sorted, np.array(columns[1], dtype=np.int64)).astype(
            np.int64
        ),
        clinic_code=clinic_codes[clinic_index] if len(clinic_codes) else np.array([], object),
        specialty_code=(
            clinic_specialties[clinic_index] if len(clinic_codes) else np.array([], object)
        ),
        booked_s=np.array(columns[3], dtype=np.int64),
        start_s=np.array(columns[4], dtype=np.int64),
        first_attendance=first,
        attendance_code=np.array(columns[6], dtype=np.int64),
        recorded_s=np.array(columns[7], dtype=np.int64),
        replaces_other=np.array(columns[8], dtype=bool),
        called=np.array(columns[9], dtype=bool),
        birth_day=np.array(patient_columns[1], dtype=np.int64) // 86_400,
        sex=np.array(patient_columns[2], dtype=object),
        imd_decile=np.array([np.nan if d is None else d for d in patient_columns[3]], dtype=float),
        core20=np.array(patient_columns[4], dtype=bool),
        interpreter_needed=np.array(patient_columns[5], dtype=bool),
        communication_needs=np.array(patient_columns[6], dtype=object),
        learning_disability=np.array(patient_columns[7], dtype=bool),
        ethnic_category=np.array(patient_columns[8], dtype=object),
    )


def patients_with_appointments_between(start: datetime, end: datetime) -> Select[Any]:
    return (
        select(Appointment.patient_id)
        .where(Appointment.start_at >= start, Appointment.start_at < end)
        .distinct()
    )


def appointment_extent(session: Session) -> tuple[datetime, datetime] | None:
    """The first and last appointment start in the data (None when there are none)."""
    first, last = session.execute(
        select(func.min(Appointment.start_at), func.max(Appointment.start_at))
    ).one()
    return None if first is None or last is None else (first, last)


def pas_ids(session: Session, appointment_ids: Sequence[int]) -> dict[int, str]:
    result: dict[int, str] = {}
    ids = list(appointment_ids)
    for offset in range(0, len(ids), 10_000):
        chunk = ids[offset : offset + 10_000]
        rows = session.execute(
            select(Appointment.id, Appointment.pas_appointment_id).where(Appointment.id.in_(chunk))
        )
        result.update({row[0]: row[1] for row in rows})
    return result


# Registry.


def list_models(session: Session) -> list[RiskModel]:
    return list(session.scalars(select(RiskModel).order_by(RiskModel.trained_at.desc())))


def get_model(session: Session, version: str) -> RiskModel | None:
    return session.scalars(select(RiskModel).where(RiskModel.version == version)).one_or_none()


def active_model(session: Session) -> RiskModel | None:
    return session.scalars(select(RiskModel).where(RiskModel.active.is_(True))).one_or_none()


def set_active(session: Session, model: RiskModel, *, now: datetime) -> None:
    session.execute(
        update(RiskModel).where(RiskModel.id != model.id).values(active=False, activated_at=None)
    )
    model.active = True
    model.activated_at = now
    session.flush()


# Scores.


def cast_table(table: Any) -> Table:
    return typing.cast(Table, table)


UPSERT_BATCH = 5_000


def upsert_scores(session: Session, scores: list[dict[str, Any]]) -> None:
    """Insert or replace the score of each appointment (one row per appointment)."""
    if not scores:
        return
    table = cast_table(RiskScore.__table__)
    for offset in range(0, len(scores), UPSERT_BATCH):
        statement = upsert(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.appointment_id],
            set_={
                "model_version": statement.excluded.model_version,
                "risk": statement.excluded.risk,
                "band": statement.excluded.band,
                "reasons": statement.excluded.reasons,
                "scored_at": statement.excluded.scored_at,
            },
        )
        session.execute(statement, scores[offset : offset + UPSERT_BATCH])
    session.flush()


# Monthly reviews.


def add_decision(session: Session, decision: RiskModelDecision) -> RiskModelDecision:
    session.add(decision)
    session.flush()
    return decision


def list_decisions(session: Session, limit: int = 24) -> list[RiskModelDecision]:
    return list(
        session.scalars(
            select(RiskModelDecision)
            .order_by(RiskModelDecision.decided_at.desc(), RiskModelDecision.id.desc())
            .limit(limit)
        )
    )


def latest_decision(session: Session) -> RiskModelDecision | None:
    decisions = list_decisions(session, limit=1)
    return decisions[0] if decisions else None


def decided_since(session: Session, moment: datetime) -> bool:
    """Whether a review was recorded at or after `moment`."""
    found = session.scalar(select(func.count()).where(RiskModelDecision.decided_at >= moment))
    return bool(found)
