"""Call-backs from patients: find a patient who rang, log a call no queued call records, and
correct a phone number.

Finding is by phone number (any UK format), NHS number or name, always with a recorded reason
(`app.patients.access.SearchReason`); the list of matches is audited as a read (the kind of
search and the reason, never what was typed: that is patient data), and opening one patient
from it is the audited search grant. Logging a call and correcting a number each write one
audit row of ids and codes. Every problem with the input is reported at once, by field, and
nothing is saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

import nhs_number
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.tables import AuditEvent
from app.errors import InvalidInputError, NotFoundError
from app.imports.phones import is_uk_mobile, normalise_uk_phone
from app.localtime import TrustCalendar
from app.patients import repository
from app.patients.access import SearchReason, grant_from_search
from app.patients.repository import Reader
from app.patients.tables import (
    ContactDirection,
    Patient,
    PatientAccessGrant,
    PatientContact,
    PatientPhoneChange,
)
from app.settings import Settings

SEARCH_LIMIT = 20
# A patient listed by a search can be opened from it for this long.
SEARCH_VALID_FOR = timedelta(hours=1)
NOTE_MAX_CHARS = 2000
NAME_TOKEN = re.compile(r"[^\W\d_][^\W\d_'\-]*", re.UNICODE)
TIME = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$", re.ASCII)


class SearchBy(StrEnum):
    PHONE = "phone"
    NHS_NUMBER = "nhs_number"
    NAME = "name"


class LoggedResult(StrEnum):
    """What happened on a call logged against a patient (the calls feature's words)."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    SOMEONE_ELSE = "someone_else"


class Phone(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"


@dataclass(frozen=True)
class SearchResult:
    patients: list[Patient]
    more: bool  # more matched than are shown: narrow the search


def _problem(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def display_phone(e164: str | None) -> str:
    """A stored E.164 number written the UK way: 07700 900123, 0113 496 0123, 020 7946 0000."""
    if not e164:
        return ""
    if not e164.startswith("+44"):
        return e164
    national = "0" + e164[3:]
    if national.startswith("02") and len(national) == 11:
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    if (national.startswith("011") or national[3] == "1") and len(national) == 11:
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    if len(national) == 11:
        return f"{national[:5]} {national[5:]}"
    return national


def search_problems(by: str, query: str) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    text = query.strip()
    if by not in set(SearchBy):
        return [_problem("by", "Choose how to find the patient: phone number, NHS number or name")]
    if not text:
        label = {"phone": "phone number", "nhs_number": "NHS number", "name": "name"}[by]
        return [_problem("q", f"Enter the patient's {label}")]
    if by == SearchBy.PHONE and normalise_uk_phone(text) is None:
        problems.append(
            _problem("q", "Enter a UK phone number, like 07700 900123 or 0113 496 0123")
        )
    if by == SearchBy.NHS_NUMBER:
        digits = re.sub(r"[\s-]", "", text)
        if not (len(digits) == 10 and digits.isdigit() and nhs_number.is_valid(digits)):
            problems.append(_problem("q", "Enter a valid 10-digit NHS number, like 485 777 3456"))
    if by == SearchBy.NAME and not NAME_TOKEN.findall(text):
        problems.append(_problem("q", "Enter the patient's name, for example Ada Lovelace"))
    return problems


def search_patients(
    session: Session, reader: Reader, *, by: str, query: str, reason: str, now: datetime
) -> SearchResult:
    """The patients matching a phone number, NHS number or name (at most SEARCH_LIMIT).

    A search is a read of patient data: it needs a reason and is audited (the kind of search,
    the reason and the ids found). It does not widen what the reader may see: opening a
    patient from the results does (`app.patients.access.grant_from_search`).
    """
    problems = search_problems(by, query)
    if reason not in set(SearchReason):
        problems.append(_problem("reason", "Choose why you are looking the patient up"))
    if problems:
        raise InvalidInputError("Nobody was searched for.", details=problems)
    text = query.strip()
    statement = select(Patient)
    if by == SearchBy.PHONE:
        number = normalise_uk_phone(text)
        statement = statement.where(
            or_(Patient.mobile_phone == number, Patient.landline_phone == number)
        )
    elif by == SearchBy.NHS_NUMBER:
        statement = statement.where(Patient.nhs_number == re.sub(r"[\s-]", "", text))
    else:
        for token in NAME_TOKEN.findall(text)[:4]:
            pattern = token.lower() + "%"
            statement = statement.where(
                or_(
                    func.lower(Patient.given_name).like(pattern),
                    func.lower(Patient.family_name).like(pattern),
                )
            )
    rows = list(
        session.scalars(
            statement.order_by(Patient.family_name, Patient.given_name, Patient.id).limit(
                SEARCH_LIMIT + 1
            )
        )
    )
    shown = rows[:SEARCH_LIMIT]
    ids = sorted(patient.id for patient in shown)
    record_audit(
        session,
        user_id=reader.id,
        action="patient.listed",
        patient_id=ids[0] if len(ids) == 1 else None,
        detail={
            "patient_ids": ids,
            "count": len(ids),
            "filter": {"search_by": by, "reason": reason},
        },
        now=now,
    )
    return SearchResult(patients=shown, more=len(rows) > SEARCH_LIMIT)


def _found_recently(session: Session, user_id: int, patient_id: int, now: datetime) -> bool:
    """Whether a search by this user in the last SEARCH_VALID_FOR listed this patient."""
    details = session.scalars(
        select(AuditEvent.detail)
        .where(
            AuditEvent.user_id == user_id,
            AuditEvent.action == "patient.listed",
            AuditEvent.occurred_at >= now - SEARCH_VALID_FOR,
        )
        .order_by(AuditEvent.id.desc())
        .limit(50)
    )
    return any(
        "search_by" in (detail or {}).get("filter", {})
        and patient_id in (detail or {}).get("patient_ids", [])
        for detail in details
    )


def open_from_search(
    session: Session,
    settings: Settings,
    reader: Reader,
    *,
    patient_id: int,
    reason: str,
    now: datetime,
) -> PatientAccessGrant:
    """Open a patient picked from this user's own recent search: the audited grant of sight
    (`grant_from_search`). A patient no search of theirs listed answers as missing, so an id
    cannot be opened by guessing it."""
    if repository.get_patient(session, patient_id) is None or not (
        repository.sees_every_patient(reader)
        or _found_recently(session, reader.id, patient_id, now)
    ):
        raise NotFoundError("No patient with that id. Find the patient first.")
    if reason not in set(SearchReason):
        raise InvalidInputError(
            "The patient's record was not opened.",
            details=[_problem("reason", "Choose why you are looking the patient up")],
        )
    return grant_from_search(
        session,
        settings,
        user_id=reader.id,
        patient_id=patient_id,
        reason=SearchReason(reason),
        now=now,
    )


def visible_patient(session: Session, reader: Reader, patient_id: int, now: datetime) -> Patient:
    patient = repository.get_visible_patient(session, reader, patient_id, now)
    if patient is None:
        raise NotFoundError("No patient with that id. Find the patient first.")
    return patient


def parse_local_time(
    typed: str, calendar: TrustCalendar, now: datetime
) -> tuple[datetime | None, str | None]:
    """Today's local time typed as 14:30 (empty: now), or the problem with it."""
    text = typed.strip()
    if not text:
        return now, None
    match = TIME.match(text)
    if match is None:
        return None, "Enter the time of the call on the 24-hour clock, for example 14:30"
    moment = calendar.at(calendar.today(now), time(int(match.group(1)), int(match.group(2))))
    if moment > now:
        return None, "The time of the call must be now or earlier today"
    return moment, None


def log_call(
    session: Session,
    reader: Reader,
    *,
    patient_id: int,
    direction: str,
    result: str,
    occurred_at: datetime | None,
    note: str | None,
    now: datetime,
    problems: list[dict[str, Any]] | None = None,
) -> PatientContact:
    """Record a call the queue does not know of: the patient rang in (always answered), or a
    navigator rang them from outside the app. The patient's history shows it."""
    patient = visible_patient(session, reader, patient_id, now)
    found = list(problems or [])
    if direction not in set(ContactDirection):
        found.append(_problem("direction", "Choose whether the patient rang in or you rang them"))
    if direction == ContactDirection.INBOUND:
        result = result or LoggedResult.ANSWERED
        if result != LoggedResult.ANSWERED:
            found.append(_problem("result", "A call the patient made to you was answered"))
    elif result not in set(LoggedResult):
        found.append(_problem("result", "Choose what happened on the call"))
    text = (note or "").strip()
    if len(text) > NOTE_MAX_CHARS:
        found.append(_problem("note", f"The note must be {NOTE_MAX_CHARS} characters or fewer"))
    if occurred_at is not None and occurred_at > now:
        found.append(_problem("time", "The time of the call must be now or earlier today"))
    if found:
        raise InvalidInputError("The call was not logged.", details=found)
    contact = PatientContact(
        patient_id=patient.id,
        direction=direction,
        result=result,
        occurred_at=occurred_at or now,
        note=text or None,
        recorded_by=reader.id,
        recorded_at=now,
    )
    session.add(contact)
    session.flush()
    record_audit(
        session,
        user_id=reader.id,
        action="patient.call_logged",
        patient_id=patient.id,
        detail={"contact_id": contact.id, "direction": direction, "result": result},
        now=now,
    )
    return contact


def correct_phone(
    session: Session,
    reader: Reader,
    *,
    patient_id: int,
    phone: str,
    number: str,
    now: datetime,
) -> PatientPhoneChange:
    """Replace a mobile or landline number with one the patient gave (a UK number; a mobile
    must be a UK mobile). The old value and whether it was flagged wrong are kept; the new
    number is usable again (the wrong-number flag is cleared)."""
    patient = visible_patient(session, reader, patient_id, now)
    problems: list[dict[str, Any]] = []
    if phone not in set(Phone):
        problems.append(_problem("phone", "Choose which number to correct"))
    normalised = normalise_uk_phone(number) if number.strip() else None
    if not number.strip():
        problems.append(_problem("number", "Enter the correct phone number"))
    elif normalised is None:
        problems.append(
            _problem("number", "Enter a UK phone number, like 07700 900123 or 0113 496 0123")
        )
    elif phone == Phone.MOBILE and not is_uk_mobile(normalised):
        problems.append(_problem("number", "Enter a UK mobile number, starting 07"))
    if not problems and phone in set(Phone):
        current = patient.mobile_phone if phone == Phone.MOBILE else patient.landline_phone
        invalid = (
            patient.mobile_phone_invalid
            if phone == Phone.MOBILE
            else patient.landline_phone_invalid
        )
        if current == normalised and not invalid:
            problems.append(_problem("number", "This is already the number on record"))
    if problems or normalised is None:
        raise InvalidInputError("The phone number was not changed.", details=problems)
    if phone == Phone.MOBILE:
        change = PatientPhoneChange(
            patient_id=patient.id,
            phone=phone,
            old_value=patient.mobile_phone,
            old_invalid=patient.mobile_phone_invalid,
            new_value=normalised,
            changed_by=reader.id,
            changed_at=now,
        )
        patient.mobile_phone = normalised
        patient.mobile_phone_invalid = False
    else:
        change = PatientPhoneChange(
            patient_id=patient.id,
            phone=phone,
            old_value=patient.landline_phone,
            old_invalid=patient.landline_phone_invalid,
            new_value=normalised,
            changed_by=reader.id,
            changed_at=now,
        )
        patient.landline_phone = normalised
        patient.landline_phone_invalid = False
    patient.updated_at = now
    session.add(change)
    session.flush()
    record_audit(
        session,
        user_id=reader.id,
        action="patient.phone_corrected",
        patient_id=patient.id,
        detail={"change_id": change.id, "phone": phone, "was_flagged_wrong": change.old_invalid},
        now=now,
    )
    return change


def contacts_of(session: Session, patient_id: int, limit: int = 50) -> list[PatientContact]:
    return list(
        session.scalars(
            select(PatientContact)
            .where(PatientContact.patient_id == patient_id)
            .order_by(PatientContact.occurred_at.desc(), PatientContact.id.desc())
            .limit(limit)
        )
    )


def phone_changes_of(session: Session, patient_id: int) -> list[PatientPhoneChange]:
    return list(
        session.scalars(
            select(PatientPhoneChange)
            .where(PatientPhoneChange.patient_id == patient_id)
            .order_by(PatientPhoneChange.changed_at.desc(), PatientPhoneChange.id.desc())
        )
    )
