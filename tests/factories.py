"""Small `create_*` helpers that put realistic rows in the database for tests.

Synthetic values only: phone numbers from Ofcom's drama ranges, no real names.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.patients.tables import Patient
from tests.clock import CALENDAR, TODAY

_sequence = itertools.count(1)

# An appointment's default start: 09:30 local, six days after the test clock's day (with the
# default test moment, Tuesday 1 December 2026), so it is upcoming whatever the date is.
DEFAULT_APPOINTMENT_START = CALENDAR.at(TODAY + timedelta(days=6), time(9, 30))


def create_patient(session: Session, **overrides: object) -> Patient:
    number = next(_sequence)
    values: dict[str, object] = {
        "pas_patient_id": f"P{number:07d}",
        "birth_date": date(1980, 1, 1),
        "sex": "F",
        "ethnic_category": "A",
        "family_name": f"Testfamily{number}",
        "given_name": "Alex",
        "mobile_phone": f"+447700900{number % 1000:03d}",
        "lsoa_code": "E01013500",
        "imd_decile": 3,
        "imd_release": "IMD2019",
        "core20": False,
        "preferred_language": "en",
        "communication_needs": "",
    }
    values.update(overrides)
    patient = Patient(**values)
    session.add(patient)
    session.flush()
    return patient


def create_clinic(session: Session, **overrides: object) -> Clinic:
    number = next(_sequence)
    values: dict[str, object] = {
        "code": f"CLN{number:04d}",
        "site": "Leicester Royal Infirmary",
        "specialty_code": "120",
    }
    values.update(overrides)
    clinic = Clinic(**values)
    session.add(clinic)
    session.flush()
    return clinic


def create_appointment(
    session: Session,
    *,
    patient: Patient | None = None,
    clinic: Clinic | None = None,
    start_at: datetime | None = None,
    **overrides: object,
) -> Appointment:
    number = next(_sequence)
    patient = patient or create_patient(session)
    clinic = clinic or create_clinic(session)
    start_at = start_at or DEFAULT_APPOINTMENT_START
    values: dict[str, object] = {
        "pas_appointment_id": f"A{number:08d}",
        "patient_id": patient.id,
        "clinic_id": clinic.id,
        "booked_at": start_at - timedelta(days=30),
        "start_at": start_at,
        "first_attendance": False,
        "attendance_code": "0",
    }
    values.update(overrides)
    appointment = Appointment(**values)
    session.add(appointment)
    session.flush()
    return appointment
