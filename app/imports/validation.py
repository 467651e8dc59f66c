"""Row validation for the PAS extract formats in CONTRACT.md: raw strings in, table values out.

Each `parse_*` function returns the cleaned values for one row and a list of problems, one per
column, worded so a data clerk can fix the extract. Nothing here touches the database except
through the lookups the caller passes in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import nhs_number

from app.imports.phones import is_uk_mobile, normalise_uk_phone
from app.reference.codes import ATTENDANCE_CODES, ETHNIC_CATEGORIES, SEXES, CommunicationNeed
from app.reference.imd import IMD_RELEASE, is_core20, lookup_lsoa

PATIENT_REQUIRED = ("patient_id", "birth_date", "sex")
PATIENT_COLUMNS = (
    "patient_id",
    "nhs_number",
    "family_name",
    "given_name",
    "birth_date",
    "sex",
    "ethnic_category",
    "postcode",
    "lsoa_code",
    "mobile_phone",
    "landline_phone",
    "preferred_language",
    "interpreter_needed",
    "communication_needs",
    "learning_disability",
    "sms_opt_out",
)
APPOINTMENT_REQUIRED = ("appointment_id", "patient_id", "clinic_code", "booked_at", "start_at")
APPOINTMENT_COLUMNS = (
    "appointment_id",
    "patient_id",
    "clinic_code",
    "specialty_code",
    "site",
    "booked_at",
    "start_at",
    "first_attendance",
    "attendance_code",
)

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0", ""})
_LSOA = re.compile(r"^[EW]01\d{6}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_SPECIALTY = re.compile(r"^\d{3}$")
_NEEDS = frozenset(need.value for need in CommunicationNeed)


@dataclass(frozen=True, slots=True)
class Problem:
    column: str
    message: str


class RowParser:
    """Shared helpers that append a problem instead of raising, so every problem is listed."""

    def __init__(self, row: dict[str, str], local_zone: ZoneInfo) -> None:
        self.row = row
        self.zone = local_zone
        self.problems: list[Problem] = []

    def text(self, column: str, *, required: bool = False, max_length: int = 120) -> str | None:
        value = self.row.get(column, "").strip()
        if not value:
            if required:
                self.problems.append(Problem(column, "a value is required"))
            return None
        if len(value) > max_length:
            self.problems.append(Problem(column, f"longer than {max_length} characters"))
            return None
        return value

    def boolean(self, column: str) -> bool | None:
        value = self.row.get(column, "").strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return None if value == "" else False
        self.problems.append(Problem(column, f"'{value}' is not true or false"))
        return None

    def date(self, column: str, *, required: bool = False) -> date | None:
        value = self.text(column, required=required, max_length=32)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.problems.append(Problem(column, f"'{value}' is not a date (YYYY-MM-DD)"))
            return None

    def datetime(self, column: str, *, required: bool = False) -> datetime | None:
        value = self.text(column, required=required, max_length=40)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.problems.append(
                Problem(column, f"'{value}' is not a date-time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])")
            )
            return None
        if parsed.tzinfo is None:  # CONTRACT.md: no offset means the trust's local time
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.astimezone(UTC)


def source_hash(row: dict[str, str], columns: tuple[str, ...]) -> str:
    """A digest of the row's contract columns as given (unknown columns ignored): an unchanged
    re-import is recognised without comparing fields. Hashing the raw text rather than the
    cleaned values is cheaper; a reformatted but equal value only costs a no-op update."""
    joined = "\x1f".join([row.get(column, "").strip() for column in columns])
    return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()


def parse_patient(
    row: dict[str, str], zone: ZoneInfo, today: date
) -> tuple[dict[str, Any], list[Problem]]:
    """Cleaned `patients` values (keyed by column) and the row's problems."""
    p = RowParser(row, zone)
    values: dict[str, Any] = {"pas_patient_id": p.text("patient_id", required=True, max_length=64)}

    raw_nhs = row.get("nhs_number", "").replace(" ", "").replace("-", "")
    values["nhs_number"] = None
    if raw_nhs:
        if len(raw_nhs) == 10 and raw_nhs.isdigit() and nhs_number.is_valid(raw_nhs):
            values["nhs_number"] = raw_nhs
        else:
            p.problems.append(
                Problem("nhs_number", "not a valid NHS number (10 digits, modulus 11 check)")
            )

    values["family_name"] = p.text("family_name")
    values["given_name"] = p.text("given_name")
    birth_date = p.date("birth_date", required=True)
    if birth_date is not None and birth_date > today:
        p.problems.append(Problem("birth_date", f"{birth_date.isoformat()} is in the future"))
    values["birth_date"] = birth_date

    sex = row.get("sex", "").strip().upper()
    if sex not in SEXES:
        p.problems.append(Problem("sex", f"'{sex}' is not one of M, F, X, U"))
    values["sex"] = sex

    ethnic = row.get("ethnic_category", "").strip().upper() or "99"
    if ethnic not in ETHNIC_CATEGORIES:
        p.problems.append(
            Problem("ethnic_category", f"'{ethnic}' is not an NHS ethnic category (A-S, Z, 99)")
        )
    values["ethnic_category"] = ethnic

    postcode = p.text("postcode", max_length=10)
    values["postcode"] = postcode.upper() if postcode else None

    lsoa_code = (p.text("lsoa_code", max_length=9) or "").upper() or None
    values.update(lsoa_code=lsoa_code, imd_decile=None, imd_rank=None, imd_release=None)
    values["core20"] = False
    if lsoa_code is not None:
        if not _LSOA.match(lsoa_code):
            p.problems.append(Problem("lsoa_code", f"'{lsoa_code}' is not a 2011 LSOA code"))
        else:
            lsoa = lookup_lsoa(lsoa_code)
            if lsoa is not None:  # Welsh LSOAs are valid but have no English IMD decile
                values.update(
                    imd_decile=lsoa.imd_decile,
                    imd_rank=lsoa.imd_rank,
                    imd_release=IMD_RELEASE,
                    core20=is_core20(lsoa.imd_decile),
                )

    for column, must_be_mobile in (("mobile_phone", True), ("landline_phone", False)):
        raw_phone = row.get(column, "").strip()
        number = normalise_uk_phone(raw_phone) if raw_phone else None
        if number is not None and must_be_mobile and not is_uk_mobile(number):
            number = None
        values[column] = number
        values[f"{column}_invalid"] = bool(raw_phone) and number is None

    language = row.get("preferred_language", "").strip().lower() or "en"
    if not _LANGUAGE.match(language):
        p.problems.append(
            Problem("preferred_language", f"'{language}' is not an ISO 639-1 language code")
        )
    values["preferred_language"] = language
    values["interpreter_needed"] = bool(p.boolean("interpreter_needed"))

    needs = sorted(
        {need.strip().lower() for need in row.get("communication_needs", "").split(";")} - {""}
    )
    unknown = [need for need in needs if need not in _NEEDS]
    if unknown:
        p.problems.append(
            Problem(
                "communication_needs",
                f"unknown communication need(s) {', '.join(unknown)}; expected "
                + ", ".join(sorted(_NEEDS)),
            )
        )
    values["communication_needs"] = ";".join(needs)
    values["learning_disability"] = bool(p.boolean("learning_disability"))
    values["sms_opt_out"] = bool(p.boolean("sms_opt_out"))
    values["source_hash"] = source_hash(row, PATIENT_COLUMNS)
    return values, p.problems


def parse_appointment(row: dict[str, str], zone: ZoneInfo) -> tuple[dict[str, Any], list[Problem]]:
    """Cleaned appointment values (PAS keys not yet resolved to ids) and the row's problems."""
    p = RowParser(row, zone)
    values: dict[str, Any] = {
        "pas_appointment_id": p.text("appointment_id", required=True, max_length=64),
        "pas_patient_id": p.text("patient_id", required=True, max_length=64),
        "clinic_code": p.text("clinic_code", required=True, max_length=32),
        "site": p.text("site"),
    }
    specialty = p.text("specialty_code", max_length=3)
    if specialty is not None and not _SPECIALTY.match(specialty):
        p.problems.append(
            Problem("specialty_code", f"'{specialty}' is not a 3-digit treatment function code")
        )
    values["specialty_code"] = specialty
    booked_at = p.datetime("booked_at", required=True)
    start_at = p.datetime("start_at", required=True)
    if booked_at is not None and start_at is not None and start_at < booked_at:
        p.problems.append(Problem("start_at", "the appointment starts before it was booked"))
    values["booked_at"] = booked_at
    values["start_at"] = start_at
    values["first_attendance"] = p.boolean("first_attendance")
    code = row.get("attendance_code", "").strip() or "0"
    if code not in ATTENDANCE_CODES:
        p.problems.append(
            Problem("attendance_code", f"'{code}' is not an attendance code (0, 2-7)")
        )
    values["attendance_code"] = code
    values["source_hash"] = source_hash(row, APPOINTMENT_COLUMNS)
    return values, p.problems
