"""A small, fast synthetic trust for risk tests and the risk benchmark.

Effects follow DOMAIN.md section 4 (about 7% DNA, deprivation gradient, young adults and men
higher, longer lead time and first appointments higher, a persistent per-patient tendency so
earlier DNAs predict later ones). Synthetic values only; no names or phone numbers are
needed here. The imports feature's generator (`app.synth`) is the full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.patients.tables import Patient

SPECIALTIES = ("120", "140", "144", "330", "340", "300", "100", "110", "320", "502")
ETHNIC_CODES = ("A", "A", "A", "A", "B", "C", "D", "H", "J", "K", "M", "N", "R", "S", "Z", "99")
DAY = 86_400


@dataclass
class SyntheticTrust:
    clinics: list[dict[str, Any]]
    patients: dict[str, np.ndarray]
    appointments: dict[str, np.ndarray]
    called: np.ndarray  # appointment row indices that had a navigator call


@dataclass(frozen=True)
class Variant:
    """How an extract differs from the full one: what trusts really send."""

    clinics: int = 30
    specialty: bool = True
    first_attendance: bool = True
    deprivation: bool = True  # no LSOA: no IMD decile for anyone
    optional_patient_fields: bool = True  # sex, ethnicity, needs recorded
    dna_logit_shift: float = 0.0  # moves the DNA rate (about -1.0 for 3%, +1.9 for 30%)
    pas_code_change: bool = False  # clinics get new codes half way through the history


def generate_trust(
    *,
    patients: int,
    past: int,
    future: int,
    now: datetime,
    weeks_history: int = 52,
    seed: int = 0,
    variant: Variant | None = None,
) -> SyntheticTrust:
    variant = variant or Variant()
    rng = np.random.default_rng(seed)
    clinics = [
        {
            "code": f"SYN{i:03d}",
            "site": "Synthetic General",
            "specialty_code": SPECIALTIES[i % 10] if variant.specialty else None,
        }
        for i in range(variant.clinics)
    ]
    if variant.pas_code_change:
        clinics += [{**clinic, "code": f"NEW{i:03d}"} for i, clinic in enumerate(clinics)]
    age = np.clip(rng.normal(52, 20, patients), 1, 98).astype(int)
    birth_day = (now.date() - date(1970, 1, 1)).days - age * 365 - rng.integers(0, 365, patients)
    sex = rng.choice(np.array(["F", "M", "U"]), patients, p=[0.52, 0.47, 0.01])
    decile = rng.integers(1, 11, patients).astype(float)
    decile[rng.random(patients) < 0.05] = np.nan
    ethnic = rng.choice(np.array(ETHNIC_CODES), patients)
    if not variant.deprivation:
        decile[:] = np.nan
    if not variant.optional_patient_fields:
        sex[:] = "U"
        ethnic[:] = "99"
    tendency = rng.normal(0, 1.0, patients)
    patient_columns = {
        "birth_day": birth_day,
        "sex": sex,
        "imd_decile": decile,
        "ethnic_category": ethnic,
        "interpreter_needed": (rng.random(patients) < 0.03) & variant.optional_patient_fields,
        "communication_needs": np.where(
            (rng.random(patients) < 0.02) & variant.optional_patient_fields, "bsl", ""
        ),
        "learning_disability": (rng.random(patients) < 0.02) & variant.optional_patient_fields,
    }

    now_s = int(now.timestamp())
    total = past + future
    owner = rng.integers(0, patients, total)
    day_offset = np.concatenate(
        [-rng.integers(1, weeks_history * 7, past), rng.integers(0, 14, future)]
    )
    day0 = (now_s // DAY) * DAY
    start = day0 + day_offset * DAY + rng.integers(8, 17, total) * 3600
    # Move weekend appointments to the Friday before.
    weekday = ((start // DAY) + 3) % 7
    start = start - np.where(weekday >= 5, (weekday - 4) * DAY, 0)
    lead_days = np.minimum(rng.exponential(30, total), 180).astype(int) + 1
    booked = start - lead_days * DAY
    clinic = rng.integers(0, variant.clinics, total)
    first = rng.random(total) < 0.3
    respiratory = clinic % 10 == SPECIALTIES.index("340")
    if variant.pas_code_change:
        clinic = np.where(
            start >= np.median(start[start < now_s]), clinic + variant.clinics, clinic
        )

    young = (age[owner] >= 18) & (age[owner] <= 35)
    old = age[owner] >= 65
    deprivation = np.nan_to_num(5.5 - decile[owner], nan=0.0)
    logit = (
        -3.35
        + variant.dna_logit_shift
        + tendency[owner]
        + 0.045 * deprivation
        + 0.4 * young
        - 0.35 * old
        + 0.1 * (sex[owner] == "M")
        + 0.008 * lead_days
        + 0.3 * first
        + 0.35 * respiratory
    )
    dna = rng.random(total) < 1 / (1 + np.exp(-logit))
    cancelled = rng.random(total) < 0.08
    code = np.where(
        dna, np.where(rng.random(total) < 0.9, 3, 7), np.where(rng.random(total) < 0.9, 5, 6)
    )
    code = np.where(cancelled, np.where(rng.random(total) < 0.5, 2, 4), code)
    is_past = start < now_s
    code = np.where(is_past, code, 0)
    appointment_columns = {
        "patient": owner,
        "clinic": clinic,
        "start_s": start,
        "booked_s": booked,
        "first_attendance": first if variant.first_attendance else np.full(total, None),
        "attendance_code": code,
        "recorded_s": np.where(is_past, start, -1),
    }
    past_rows = np.flatnonzero(is_past & (code != 2) & (code != 4))
    called = (
        rng.choice(past_rows, size=len(past_rows) // 20, replace=False)
        if len(past_rows)
        else past_rows
    )
    return SyntheticTrust(clinics, patient_columns, appointment_columns, called)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def insert_trust(session: Session, trust: SyntheticTrust, *, prefix: str = "S") -> dict[str, int]:
    """Insert the trust; returns counts. Uses COPY on PostgreSQL for large trusts."""
    clinic_ids = [
        session.execute(insert(Clinic).values(**c).returning(Clinic.id)).scalar_one()
        for c in trust.clinics
    ]
    p = trust.patients
    patient_rows = [
        {
            "pas_patient_id": f"{prefix}P{i:07d}",
            "birth_date": date(1970, 1, 1) + timedelta(days=int(p["birth_day"][i])),
            "sex": str(p["sex"][i]),
            "ethnic_category": str(p["ethnic_category"][i]),
            "imd_decile": None if np.isnan(p["imd_decile"][i]) else int(p["imd_decile"][i]),
            "imd_release": "IMD2019",
            "core20": bool(p["imd_decile"][i] <= 2),
            "interpreter_needed": bool(p["interpreter_needed"][i]),
            "communication_needs": str(p["communication_needs"][i]),
            "learning_disability": bool(p["learning_disability"][i]),
        }
        for i in range(len(p["sex"]))
    ]
    patient_ids = list(
        session.scalars(
            insert(Patient).returning(Patient.id, sort_by_parameter_order=True), patient_rows
        )
    )
    a = trust.appointments
    rows = len(a["patient"])
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and rows > 20_000:
        _copy_appointments(session, trust, patient_ids, clinic_ids, prefix)
    else:
        now = datetime.fromtimestamp(int(a["start_s"].max()), UTC)
        appointment_rows = [
            {
                "pas_appointment_id": f"{prefix}A{i:08d}",
                "patient_id": patient_ids[int(a["patient"][i])],
                "clinic_id": clinic_ids[int(a["clinic"][i])],
                "booked_at": _dt(a["booked_s"][i]),
                "start_at": _dt(a["start_s"][i]),
                "first_attendance": _optional_bool(a["first_attendance"][i]),
                "attendance_code": str(a["attendance_code"][i]),
                "outcome_recorded_at": _dt(a["recorded_s"][i]) if a["recorded_s"][i] >= 0 else None,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(rows)
        ]
        session.execute(insert(Appointment), appointment_rows)
    session.flush()
    if len(trust.called):
        pas = [f"{prefix}A{int(i):08d}" for i in trust.called]
        ids = {
            row[0]: row[1]
            for row in session.execute(select(Appointment.pas_appointment_id, Appointment.id))
        }
        session.execute(
            insert(AppointmentContact),
            [
                {
                    "appointment_id": ids[ref],
                    "channel": "call",
                    "reached": True,
                    "source_ref": f"call-{ref}",
                    "contacted_at": _dt(
                        trust.appointments["start_s"][int(ref[len(prefix) + 1 :])] - 7 * DAY
                    ),
                }
                for ref in pas
            ],
        )
    session.flush()
    return {"patients": len(patient_ids), "appointments": rows, "called": len(trust.called)}


def _copy_appointments(
    session: Session,
    trust: SyntheticTrust,
    patient_ids: list[int],
    clinic_ids: list[int],
    prefix: str,
) -> None:
    a = trust.appointments
    connection = session.connection().connection.driver_connection
    assert connection is not None
    now = datetime.fromtimestamp(int(a["start_s"].max()), UTC)
    columns = (
        "pas_appointment_id, patient_id, clinic_id, booked_at, start_at, first_attendance, "
        "attendance_code, outcome_recorded_at, created_at, updated_at"
    )
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY appointments ({columns}) FROM STDIN") as copy,
    ):
        for i in range(len(a["patient"])):
            copy.write_row(
                (
                    f"{prefix}A{i:08d}",
                    patient_ids[int(a["patient"][i])],
                    clinic_ids[int(a["clinic"][i])],
                    _dt(a["booked_s"][i]),
                    _dt(a["start_s"][i]),
                    _optional_bool(a["first_attendance"][i]),
                    str(a["attendance_code"][i]),
                    _dt(a["recorded_s"][i]) if a["recorded_s"][i] >= 0 else None,
                    now,
                    now,
                )
            )
