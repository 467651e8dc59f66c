"""The audit log: who did what, when, to which patient or appointment (ids only, never names)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent, User


def record_audit(
    session: Session,
    *,
    user_id: int | None,
    action: str,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit entry in the caller's transaction (it is kept only if the work commits).

    `action` is a dotted verb such as "patient.viewed"; `detail` is a small JSON object of ids,
    codes and counts: never names, NHS numbers, phone numbers or message bodies.
    """
    event = AuditEvent(
        user_id=user_id,
        action=action[:64],
        patient_id=patient_id,
        appointment_id=appointment_id,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class AuditFilter:
    user_id: int | None = None
    username: str | None = None
    patient_id: int | None = None
    action: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    username: str | None


def _filtered(query: Any, filters: AuditFilter) -> Any:
    """Apply the filters to a select over audit_events outer-joined to users."""
    if filters.user_id is not None:
        query = query.where(AuditEvent.user_id == filters.user_id)
    if filters.username:
        query = query.where(User.username == filters.username.strip().lower())
    if filters.patient_id is not None:
        query = query.where(AuditEvent.patient_id == filters.patient_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.occurred_from is not None:
        query = query.where(AuditEvent.occurred_at >= filters.occurred_from)
    if filters.occurred_to is not None:
        query = query.where(AuditEvent.occurred_at < filters.occurred_to)
    return query


def list_audit(
    session: Session, filters: AuditFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[AuditRow], int]:
    """Newest first, with the acting username joined in one query."""
    base = select(AuditEvent, User.username).outerjoin(User, User.id == AuditEvent.user_id)
    base = _filtered(base, filters)
    total = session.scalar(
        _filtered(
            select(func.count())
            .select_from(AuditEvent)
            .outerjoin(User, User.id == AuditEvent.user_id),
            filters,
        )
    )
    rows = session.execute(
        base.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [AuditRow(event=row[0], username=row[1]) for row in rows], int(total or 0)
