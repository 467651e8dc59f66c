"""Small writers of PAS extract files for import tests (synthetic values only)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from app.imports.validation import APPOINTMENT_COLUMNS, PATIENT_COLUMNS


def patient_row(patient_id: str = "P1", **overrides: Any) -> dict[str, str]:
    row = {
        "patient_id": patient_id,
        "nhs_number": "999 000 0018",
        "family_name": "Ashdown",
        "given_name": "Alex",
        "birth_date": "1980-05-01",
        "sex": "F",
        "ethnic_category": "A",
        "postcode": "LE1 5WW",
        "lsoa_code": "E01013500",
        "mobile_phone": "07700 900123",
        "landline_phone": "0113 496 0123",
        "preferred_language": "en",
        "interpreter_needed": "false",
        "communication_needs": "",
        "learning_disability": "false",
        "sms_opt_out": "false",
    }
    row.update({key: str(value) for key, value in overrides.items()})
    return row


def appointment_row(appointment_id: str = "A1", **overrides: Any) -> dict[str, str]:
    row = {
        "appointment_id": appointment_id,
        "patient_id": "P1",
        "clinic_code": "ENT-LRI-1",
        "specialty_code": "120",
        "site": "Leicester Royal Infirmary",
        "booked_at": "2026-10-01T10:00",
        "start_at": "2026-11-02T09:30",
        "first_attendance": "true",
        "attendance_code": "5",
    }
    row.update({key: str(value) for key, value in overrides.items()})
    return row


def write_csv(
    path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | None = None
) -> Path:
    if columns is None:
        columns = tuple(rows[0]) if rows else PATIENT_COLUMNS
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_patients(path: Path, rows: list[dict[str, str]]) -> Path:
    return write_csv(path, rows, PATIENT_COLUMNS)


def write_appointments(path: Path, rows: list[dict[str, str]]) -> Path:
    return write_csv(path, rows, APPOINTMENT_COLUMNS)
