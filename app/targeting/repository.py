"""Queries of the targeting feature: trial rows (assignments with their outcome) as columns,
and the benefit-model registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.calls.tables import Arm, CallAssignment
from app.db.base import UTCDateTime
from app.patients.tables import Patient
from app.reference.codes import DNA_CODES, NOT_YET_KNOWN
from app.targeting.policy import PRIORITY_GROUPS, groups_of_reasons
from app.targeting.tables import BenefitModel
from app.targeting.uplift import TargetingColumns

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
DAY_SECONDS = 86_400.0


@dataclass
class TrialRows:
    """Assigned appointments as columns: arm, call, outcome, features and subgroup keys."""

    assignment_id: npt.NDArray[np.int64]
    queue_day: npt.NDArray[np.int64]  # days since 1970-01-01
    call_arm: BoolArray
    called: BoolArray
    outcome_known: BoolArray
    dna: BoolArray
    priority: FloatArray
    band: npt.NDArray[np.object_]
    specialty: npt.NDArray[np.object_]
    membership: BoolArray  # rows x PRIORITY_GROUPS
    columns: TargetingColumns

    def __len__(self) -> int:
        return len(self.assignment_id)


_ROW = (
    CallAssignment.id,
    CallAssignment.queue_date,
    CallAssignment.arm,
    CallAssignment.reasons,
    CallAssignment.risk,
    CallAssignment.band,
    CallAssignment.priority,
    CallAssignment.call_id,
    Appointment.attendance_code,
    Appointment.start_at,
    Appointment.booked_at,
    Appointment.first_attendance,
    Clinic.specialty_code,
    Patient.birth_date,
    Patient.imd_decile,
    Patient.core20,
    Patient.interpreter_needed,
    Patient.communication_needs,
    Patient.learning_disability,
)


def load_trial_rows(session: Session, *conditions: ColumnElement[bool]) -> TrialRows:
    """Every assignment matching `conditions` (on assignments or their appointments)."""
    rows = session.execute(
        select(*_ROW)
        .join(Appointment, Appointment.id == CallAssignment.appointment_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .where(*conditions)
        .order_by(CallAssignment.id)
    ).all()
    return rows_to_columns(rows)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def rows_to_columns(rows: Sequence[Any]) -> TrialRows:
    epoch = date(1970, 1, 1)
    count = len(rows)
    membership = np.zeros((count, len(PRIORITY_GROUPS)), dtype=bool)
    for index, row in enumerate(rows):
        groups = groups_of_reasons(list(row.reasons or []))
        for column, group in enumerate(PRIORITY_GROUPS):
            membership[index, column] = group in groups
    lead = np.array(
        [max((r.start_at - r.booked_at).total_seconds() / DAY_SECONDS, 0.0) for r in rows],
        dtype=float,
    )
    age = np.array(
        [np.floor((r.start_at.date() - r.birth_date).days / 365.25) for r in rows], dtype=float
    )
    first = np.array(
        [np.nan if r.first_attendance is None else float(r.first_attendance) for r in rows],
        dtype=float,
    )
    columns = TargetingColumns(
        risk=np.array([np.nan if r.risk is None else r.risk for r in rows], dtype=float),
        lead_time_days=lead,
        first_attendance=first,
        interpreter_needed=np.array([bool(r.interpreter_needed) for r in rows], dtype=float),
        communication_need=np.array([bool(r.communication_needs) for r in rows], dtype=float),
        learning_disability=np.array([bool(r.learning_disability) for r in rows], dtype=float),
        core20=np.array([bool(r.core20) for r in rows], dtype=float),
        no_sms_channel=membership[:, PRIORITY_GROUPS.index("no_sms")].astype(float),
        imd_decile=np.array(
            [np.nan if r.imd_decile is None else float(r.imd_decile) for r in rows], dtype=float
        ),
        age_years=age,
    )
    return TrialRows(
        assignment_id=np.array([r.id for r in rows], dtype=np.int64),
        queue_day=np.array([(_as_date(r.queue_date) - epoch).days for r in rows], dtype=np.int64),
        call_arm=np.array([r.arm == Arm.CALL for r in rows], dtype=bool),
        called=np.array([r.call_id is not None for r in rows], dtype=bool),
        outcome_known=np.array([r.attendance_code != NOT_YET_KNOWN for r in rows], dtype=bool),
        dna=np.array([r.attendance_code in DNA_CODES for r in rows], dtype=bool),
        priority=np.array([r.priority for r in rows], dtype=float),
        band=np.array([r.band or "unscored" for r in rows], dtype=object),
        specialty=np.array([r.specialty_code or "unknown" for r in rows], dtype=object),
        membership=membership,
        columns=columns,
    )


def outcomes_between(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    """Assigned appointments that started in [start, end) and have a final outcome."""
    return [
        Appointment.start_at >= start,
        Appointment.start_at < end,
        Appointment.attendance_code != NOT_YET_KNOWN,
    ]


def window_assignments(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Appointment.start_at >= start, Appointment.start_at < end)


# Registry.


def list_models(session: Session) -> list[BenefitModel]:
    return list(session.scalars(select(BenefitModel).order_by(BenefitModel.trained_at.desc())))


def get_model(session: Session, version: str) -> BenefitModel | None:
    return session.scalars(
        select(BenefitModel).where(BenefitModel.version == version)
    ).one_or_none()


def active_model(session: Session) -> BenefitModel | None:
    return session.scalars(select(BenefitModel).where(BenefitModel.active.is_(True))).one_or_none()


def set_active(session: Session, model: BenefitModel, now: datetime) -> None:
    session.execute(
        update(BenefitModel)
        .where(BenefitModel.id != model.id)
        .values(active=False, activated_at=None)
    )
    model.active = True
    model.activated_at = now
    session.flush()


__all__ = ["TrialRows", "UTCDateTime", "load_trial_rows", "outcomes_between"]
