"""Patient queries, and the one access scope every read of patient data goes through.

`visible_to(reader, now)` is the rule: managers and admins see every patient; a navigator
sees the patients of calls they hold or worked (taken, completed, attempted or recorded an
outcome on), of the team's open tasks and tasks they completed, and a patient they found
through an audited search with a recorded reason, until that sight expires
(`app.patients.access`). The API, pages and CSV build their reads on it (appointments use
`visible_patient_condition` on their patient id), so no door can show more than another. A
patient outside the scope is answered as if it did not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, func, or_, select, true, union
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.tables import Call, CallAttempt, CallOutcome
from app.patients.tables import Patient, PatientAccessGrant
from app.tasks.tables import NavigatorTask, TaskStatus


class Reader(Protocol):
    """Whoever reads: an account (`User`) or its snapshot (`SignedInUser`)."""

    @property
    def id(self) -> int: ...

    def has_role(self, required: Role) -> bool: ...


def sees_every_patient(reader: Reader) -> bool:
    return reader.has_role(Role.MANAGER)


def navigator_patient_ids(user_id: int, now: datetime) -> Select[Any]:
    """The ids of the patients in a navigator's scope (read-only joins through calls/tasks)."""
    return union(
        select(Call.patient_id).where(or_(Call.taken_by == user_id, Call.completed_by == user_id)),
        select(Call.patient_id)
        .join(CallAttempt, CallAttempt.call_id == Call.id)
        .where(CallAttempt.attempted_by == user_id),
        select(Call.patient_id)
        .join(CallOutcome, CallOutcome.call_id == Call.id)
        .where(CallOutcome.recorded_by == user_id),
        select(NavigatorTask.patient_id).where(
            or_(NavigatorTask.status == TaskStatus.OPEN, NavigatorTask.completed_by == user_id)
        ),
        select(PatientAccessGrant.patient_id).where(
            PatientAccessGrant.user_id == user_id, PatientAccessGrant.expires_at > now
        ),
    )  # type: ignore[return-value]


def visible_patient_condition(
    patient_id: Any, reader: Reader, now: datetime
) -> ColumnElement[bool]:
    """A WHERE condition on a patient id column: true when `reader` may see that patient."""
    if sees_every_patient(reader):
        return true()
    condition: ColumnElement[bool] = patient_id.in_(navigator_patient_ids(reader.id, now))
    return condition


def visible_to(reader: Reader, now: datetime) -> Select[Any]:
    """Every read of patients starts here."""
    return select(Patient).where(visible_patient_condition(Patient.id, reader, now))


def get_visible_patient(
    session: Session, reader: Reader, patient_id: int, now: datetime
) -> Patient | None:
    """The patient when `reader` may see them; None when missing or out of scope alike."""
    return session.scalar(visible_to(reader, now).where(Patient.id == patient_id))


def can_see_patient(session: Session, reader: Reader, patient_id: int, now: datetime) -> bool:
    """Whether `reader` may see this patient (False for a patient that does not exist)."""
    found = session.scalar(
        select(Patient.id).where(
            Patient.id == patient_id, visible_patient_condition(Patient.id, reader, now)
        )
    )
    return found is not None


def get_patient(session: Session, patient_id: int) -> Patient | None:
    """Unscoped: for imports, jobs and services acting for the trust, never for a reader."""
    return session.get(Patient, patient_id)


def get_by_pas_id(session: Session, pas_patient_id: str) -> Patient | None:
    return session.scalar(select(Patient).where(Patient.pas_patient_id == pas_patient_id))


def list_patients(
    session: Session,
    reader: Reader,
    now: datetime,
    *,
    limit: int,
    offset: int,
    core20: bool | None = None,
) -> tuple[list[Patient], int]:
    query = visible_to(reader, now)
    if core20 is not None:
        query = query.where(Patient.core20.is_(core20))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Patient.id).limit(limit).offset(offset)).all()
    return list(rows), total


def add_access_grant(
    session: Session,
    *,
    user_id: int,
    patient_id: int,
    reason: str,
    granted_at: datetime,
    expires_at: datetime,
) -> PatientAccessGrant:
    grant = PatientAccessGrant(
        user_id=user_id,
        patient_id=patient_id,
        reason=reason,
        granted_at=granted_at,
        expires_at=expires_at,
    )
    session.add(grant)
    session.flush()
    return grant
