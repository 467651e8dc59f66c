"""The audit log: who did what, when, to which patient or appointment (ids only, never names)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import nhs_number
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.auth.audit_words import action_words
from app.auth.tables import AuditEvent, User
from app.errors import InvalidInputError
from app.localtime import TrustCalendar
from app.patients.tables import Patient

# Actions of patient-level reads (`app.auth.reads` and every other door that shows a patient's
# record): the unusual-access report counts these. `tests/auth/test_audit.py` calls every
# patient-level route and fails when one writes no row with one of these actions.
READ_ACTIONS = (
    "patient.viewed",
    "patient.listed",
    "appointment.viewed",
    "appointment.listed",
    "call.viewed",
    "call.history_viewed",
    "patient.calls_viewed",
    "patient.viewed_via_call",
    "patient.history_viewed",
    "patient.messages_viewed",
    "appointment.messages_viewed",
    "sms.history_viewed",
    "booking_requests.viewed",
    "booking_requests.exported",
    "patient.found_by_search",
    "queue.viewed",
    "calls.history_listed",
)
SEARCH_ACTION = "patient.found_by_search"


def record_audit(
    session: Session,
    *,
    user_id: int | None,
    action: str,
    patient_id: int | None = None,
    appointment_id: int | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add one audit entry in the caller's transaction (it is kept only if the work commits).

    `action` is a dotted verb such as "patient.viewed"; `detail` is a small JSON object of ids,
    codes and counts: never names, NHS numbers, phone numbers or message bodies. `now` is the
    request's clock time (without it the column default stamps it).
    """
    event = AuditEvent(
        user_id=user_id,
        action=action[:64],
        patient_id=patient_id,
        appointment_id=appointment_id,
        detail=detail,
    )
    if now is not None:
        event.occurred_at = now
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


# --- searching and exporting the log (the API and the page both come here) -----------------

NHS_NUMBER_PROBLEM = "Enter a valid NHS number, 10 digits, for example 943 476 5919"
EXPORT_LIMIT = 50_000


@dataclass(frozen=True)
class AuditSearch:
    """What a reader asked of the audit log, before it is checked. Days are the trust's local
    days and both are included; `nhs_number` is as typed (spaces and dashes allowed)."""

    user_id: int | None = None
    username: str | None = None
    nhs_number: str | None = None
    patient_id: int | None = None
    action: str | None = None
    first_day: date | None = None
    last_day: date | None = None


@dataclass(frozen=True)
class CheckedSearch:
    """A search that passed its checks: the filter to run and the days it covers."""

    filters: AuditFilter
    first_day: date | None
    last_day: date | None


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def valid_nhs_number(text: str) -> str | None:
    """The 10 digits of a valid NHS number (modulus 11 check digit), or None."""
    digits = re.sub(r"[\s-]", "", text)
    if len(digits) == 10 and digits.isdigit() and nhs_number.is_valid(digits):
        return digits
    return None


def search_problems(session: Session, search: AuditSearch) -> tuple[int | None, list[dict]]:
    """(the patient id the NHS number names, every problem with the search at once)."""
    problems: list[dict] = []
    patient_id = search.patient_id
    if search.nhs_number:
        digits = valid_nhs_number(search.nhs_number)
        if digits is None:
            problems.append(_problem("nhs_number", NHS_NUMBER_PROBLEM))
        else:
            patient_id = session.scalar(select(Patient.id).where(Patient.nhs_number == digits))
            if patient_id is None:
                problems.append(_problem("nhs_number", "No patient has that NHS number"))
    if search.user_id is not None and session.get(User, search.user_id) is None:
        problems.append(_problem("user_id", "Choose a user from the list"))
    first, last = search.first_day, search.last_day
    if first is not None and last is not None and last < first:
        problems.append(
            _problem(
                "to",
                f"The last day ({last:%-d %b %Y}) is before the first day ({first:%-d %b %Y})",
            )
        )
    return patient_id, problems


def check_search(session: Session, search: AuditSearch, calendar: TrustCalendar) -> CheckedSearch:
    """The filter for a search, or InvalidInputError listing every problem (by field)."""
    patient_id, problems = search_problems(session, search)
    if problems:
        raise InvalidInputError("The audit log was not searched.", details=problems)
    first, last = search.first_day, search.last_day
    return CheckedSearch(
        filters=AuditFilter(
            user_id=search.user_id,
            username=search.username or None,
            patient_id=patient_id,
            action=search.action or None,
            occurred_from=calendar.day_start(first) if first else None,
            occurred_to=calendar.day_start(last + timedelta(days=1)) if last else None,
        ),
        first_day=first,
        last_day=last,
    )


def search_audit(
    session: Session,
    filters: AuditFilter,
    *,
    reader_id: int,
    now: datetime,
    limit: int,
    offset: int = 0,
) -> tuple[list[AuditRow], int]:
    """One page of the log; looking up one patient's trail is itself recorded (by id)."""
    rows, total = list_audit(session, filters, limit=limit, offset=offset)
    if filters.patient_id is not None:
        record_audit(
            session,
            user_id=reader_id,
            action="audit.patient_filtered",
            patient_id=filters.patient_id,
            detail={"entries": total},
            now=now,
        )
    return rows, total


@dataclass(frozen=True)
class AuditExport:
    text: str
    rows: int
    total: int


CSV_HEADER = ["when", "username", "action", "action_code", "patient_id", "appointment_id", "detail"]


def export_audit(
    session: Session,
    checked: CheckedSearch,
    *,
    reader_id: int,
    now: datetime,
    calendar: TrustCalendar,
    limit: int = EXPORT_LIMIT,
) -> AuditExport:
    """The filtered entries as CSV, newest first, with actions in words and as codes (UK
    local times). The export itself is recorded, with its filter but never an NHS number."""
    filters = checked.filters
    rows, total = list_audit(session, filters, limit=limit)
    record_audit(
        session,
        user_id=reader_id,
        action="audit.exported",
        patient_id=filters.patient_id,
        detail={
            "rows": len(rows),
            "filter": {
                "user_id": filters.user_id,
                "username": filters.username,
                "action": filters.action,
                "from": checked.first_day.isoformat() if checked.first_day else None,
                "to": checked.last_day.isoformat() if checked.last_day else None,
            },
        },
        now=now,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                calendar.local(row.event.occurred_at).strftime("%d/%m/%Y %H:%M:%S"),
                row.username or "",
                action_words(row.event.action),
                row.event.action,
                "" if row.event.patient_id is None else row.event.patient_id,
                "" if row.event.appointment_id is None else row.event.appointment_id,
                json.dumps(row.event.detail, sort_keys=True) if row.event.detail else "",
            ]
        )
    return AuditExport(text=out.getvalue(), rows=len(rows), total=total)


def audit_users(session: Session) -> list[tuple[int, str]]:
    """(id, username) of every account, by username: the audit page's user list."""
    rows = session.execute(select(User.id, User.username).order_by(User.username))
    return [(user_id, username) for user_id, username in rows]


# --- unusual access (managers' report on the audit page) ----------------------------------


@dataclass(frozen=True)
class UnusualAccess:
    """One finding: who, what kind, when (hour or moment), and how many patients."""

    kind: str  # "many_patients", "out_of_hours" or "search_without_call"
    user_id: int | None
    username: str | None
    at: datetime
    patients: int
    reads: int


def _patients_of(patient_id: int | None, detail: dict[str, Any] | None) -> set[int]:
    ids = (detail or {}).get("patient_ids")
    if isinstance(ids, list):
        return {int(value) for value in ids if isinstance(value, int)}
    return {patient_id} if patient_id is not None else set()


def _call_followed(session: Session, user_id: int, patient_id: int, since: datetime) -> bool:
    """Whether `user_id` took, tried, completed or recorded an outcome on a call to
    `patient_id` at or after `since` (read-only, through the calls tables)."""
    from app.calls.tables import Call, CallAttempt, CallOutcome

    ours = or_(
        and_(Call.taken_by == user_id, Call.taken_at >= since),
        and_(Call.completed_by == user_id, Call.completed_at >= since),
    )
    attempted = select(CallAttempt.id).where(
        CallAttempt.call_id == Call.id,
        CallAttempt.attempted_by == user_id,
        CallAttempt.attempted_at >= since,
    )
    recorded = select(CallOutcome.id).where(
        CallOutcome.call_id == Call.id,
        CallOutcome.recorded_by == user_id,
        CallOutcome.recorded_at >= since,
    )
    found = session.scalar(
        select(Call.id)
        .where(Call.patient_id == patient_id, or_(ours, attempted.exists(), recorded.exists()))
        .limit(1)
    )
    return found is not None


def unusual_access(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    calendar: TrustCalendar,
    patients_per_hour_limit: int,
) -> list[UnusualAccess]:
    """Patient-level reads in [start, end) worth a manager's look: a user reading more
    distinct patients in one clock hour than the limit, reads outside the working day (per
    user and local day), and patients found by a search that no call by that user followed."""
    rows = session.execute(
        select(
            AuditEvent.user_id,
            User.username,
            AuditEvent.action,
            AuditEvent.occurred_at,
            AuditEvent.patient_id,
            AuditEvent.detail,
        )
        .outerjoin(User, User.id == AuditEvent.user_id)
        .where(
            AuditEvent.action.in_(READ_ACTIONS),
            AuditEvent.occurred_at >= start,
            AuditEvent.occurred_at < end,
        )
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    names: dict[int | None, str | None] = {}
    per_hour: dict[tuple[int | None, datetime], tuple[set[int], list[int]]] = {}
    out_of_hours: dict[tuple[int | None, date], tuple[datetime, set[int], list[int]]] = {}
    findings: list[UnusualAccess] = []
    for user_id, username, action, occurred_at, patient_id, detail in rows:
        names[user_id] = username
        patients = _patients_of(patient_id, detail)
        hour = occurred_at.replace(minute=0, second=0, microsecond=0)
        seen, reads = per_hour.setdefault((user_id, hour), (set(), []))
        seen |= patients
        reads.append(1)
        if not calendar.is_working_time(occurred_at):
            day = calendar.today(occurred_at)
            first, day_seen, day_reads = out_of_hours.setdefault(
                (user_id, day), (occurred_at, set(), [])
            )
            day_seen |= patients
            day_reads.append(1)
        searched = action == SEARCH_ACTION and user_id is not None and patient_id is not None
        if searched and not _call_followed(session, user_id, patient_id, occurred_at):
            findings.append(
                UnusualAccess("search_without_call", user_id, username, occurred_at, 1, 1)
            )
    for (user_id, hour), (seen, reads) in per_hour.items():
        if len(seen) > patients_per_hour_limit:
            findings.append(
                UnusualAccess("many_patients", user_id, names[user_id], hour, len(seen), len(reads))
            )
    for (user_id, _day), (first, seen, reads) in out_of_hours.items():
        findings.append(
            UnusualAccess("out_of_hours", user_id, names[user_id], first, len(seen), len(reads))
        )
    return sorted(findings, key=lambda finding: (finding.at, finding.kind))
