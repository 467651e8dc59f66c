"""Queries for the SMS feature that several callers share (history, stats, helpers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from app.patients.tables import Patient
from app.sms.tables import SmsMessage

# Twilio's message statuses in the only order they may move (DOMAIN.md section 6): a status
# with a lower rank never replaces a higher one, and "delivered" is final.
STATUS_RANK: dict[str, int] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "delivered": 5,
    "read": 6,
}


def status_rank(status: str | None) -> int:
    return STATUS_RANK.get(status or "", 0)


def status_rank_sql(column: Any) -> ColumnElement[int]:
    return case(*((column == status, rank) for status, rank in STATUS_RANK.items()), else_=0)


def messages_for(
    session: Session,
    *,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    limit: int = 200,
) -> list[SmsMessage]:
    query = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    if patient_id is not None:
        query = query.where(SmsMessage.patient_id == patient_id)
    if appointment_id is not None:
        query = query.where(SmsMessage.appointment_id == appointment_id)
    return list(session.scalars(query.limit(limit)))


def message_stats(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Volumes, delivery rates and failures by reason for messages created in [since, until)."""
    window = (SmsMessage.created_at >= since, SmsMessage.created_at < until)
    by_kind = session.execute(
        select(
            SmsMessage.kind,
            func.count(),
            func.sum(case((SmsMessage.state == "submitted", 1), else_=0)),
            func.sum(case((SmsMessage.delivery_status.in_(("delivered", "read")), 1), else_=0)),
            func.sum(case((SmsMessage.delivery_status.in_(("undelivered", "failed")), 1), else_=0)),
            func.sum(case((SmsMessage.state == "failed", 1), else_=0)),
            func.sum(SmsMessage.segments),
        )
        .where(*window)
        .group_by(SmsMessage.kind)
        .order_by(SmsMessage.kind)
    ).all()
    # Grouped on the raw code (PostgreSQL will not group by a bound-literal expression).
    failures_raw = session.execute(
        select(SmsMessage.error_code, func.count())
        .where(*window)
        .where(
            (SmsMessage.state == "failed")
            | SmsMessage.delivery_status.in_(("undelivered", "failed"))
        )
        .group_by(SmsMessage.error_code)
        .order_by(func.count().desc())
    ).all()
    failures = [(code or "unknown", count) for code, count in failures_raw]
    withdrawn = session.execute(
        select(SmsMessage.error_code, func.count())
        .where(*window, SmsMessage.state == "cancelled")
        .group_by(SmsMessage.error_code)
        .order_by(SmsMessage.error_code)
    ).all()
    kinds = []
    for kind, total, submitted_count, delivered, undelivered, rejected, segments in by_kind:
        submitted = int(submitted_count or 0)
        kinds.append(
            {
                "kind": kind,
                "total": int(total),
                "submitted": submitted,
                "delivered": int(delivered or 0),
                "undelivered": int(undelivered or 0),
                "rejected": int(rejected or 0),
                "segments": int(segments or 0),
                "delivery_rate": round(int(delivered or 0) / submitted, 4) if submitted else None,
            }
        )
    return {
        "since": since,
        "until": until,
        "by_kind": kinds,
        "failures_by_reason": [{"error_code": code, "count": count} for code, count in failures],
        # Reminders withdrawn before sending: appointment cancelled, moved, past or requested.
        "withdrawn_by_reason": [
            {"reason": reason or "unknown", "count": count} for reason, count in withdrawn
        ],
    }


def language_stats(
    session: Session, *, since: datetime, until: datetime, default_language: str
) -> dict[str, Any]:
    """Messages created in [since, until) by the language of their text, and those sent in
    `default_language` (English) because the patient's own language had no text (by the
    patient's preferred language)."""
    window = (SmsMessage.created_at >= since, SmsMessage.created_at < until)
    by_language = session.execute(
        select(SmsMessage.language, func.count())
        .where(*window)
        .group_by(SmsMessage.language)
        .order_by(SmsMessage.language)
    ).all()
    preferred = func.lower(Patient.preferred_language)
    fallback = session.execute(
        select(preferred, func.count())
        .select_from(SmsMessage)
        .join(Patient, Patient.id == SmsMessage.patient_id)
        .where(
            *window,
            SmsMessage.language == default_language,
            Patient.preferred_language.is_not(None),
            Patient.preferred_language != "",
            preferred != default_language,
        )
        .group_by(preferred)
        .order_by(func.count().desc(), preferred)
    ).all()
    return {
        "by_language": [{"language": code, "count": int(count)} for code, count in by_language],
        "fallback": [{"language": code, "count": int(count)} for code, count in fallback],
        "fallback_total": sum(int(count) for _, count in fallback),
    }
