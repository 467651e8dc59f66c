"""Analytics owns no tables; it owns two indexes that make its period scans cheap.

Every dashboard query reads the appointments starting in a period: a covering index on
`start_at` that carries the few columns those queries need lets PostgreSQL answer from the
index alone (an index-only scan) instead of visiting ~15,000 heap pages per scan at a million
appointments (scripts/bench_analytics.py). On SQLite it is a plain index on `start_at`.

The period's appointments are then joined to their patients by a hash of the patients table.
A covering index on `patients.id` carrying the columns the breakdowns group by (age, sex,
ethnicity, deprivation, needs) is read for that hash instead of the whole patients heap (about
a sixth of the pages at 200,000 patients), and serves the one-by-one lookups of the calls and
arm queries from the index alone. The phones and the LSOA are left out: they change more often
(a change to a covered column rules out a HOT update) and only the trust-wide data quality
figure reads them. On SQLite it is a plain index on `id`.
"""

from __future__ import annotations

from sqlalchemy import Index

from app.appointments.tables import Appointment
from app.patients.tables import Patient

COVERED_COLUMNS = ["id", "patient_id", "clinic_id", "attendance_code"]

appointments_by_start_covering = Index(
    "ix_appointments_start_at_covering",
    Appointment.start_at,
    postgresql_include=COVERED_COLUMNS,
)

PATIENT_COVERED_COLUMNS = [
    "birth_date",
    "sex",
    "ethnic_category",
    "imd_decile",
    "communication_needs",
    "interpreter_needed",
    "learning_disability",
]

patients_by_id_covering = Index(
    "ix_patients_id_covering",
    Patient.id,
    postgresql_include=PATIENT_COVERED_COLUMNS,
)
