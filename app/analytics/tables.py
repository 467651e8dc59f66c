"""Analytics owns no tables; it owns one index that makes its period scans cheap.

Every dashboard query reads the appointments starting in a period: a covering index on
`start_at` that carries the few columns those queries need lets PostgreSQL answer from the
index alone (an index-only scan) instead of visiting ~15,000 heap pages per scan at a million
appointments (scripts/bench_analytics.py). On SQLite it is a plain index on `start_at`.
"""

from __future__ import annotations

from sqlalchemy import Index

from app.appointments.tables import Appointment

COVERED_COLUMNS = ["id", "patient_id", "clinic_id", "attendance_code"]

appointments_by_start_covering = Index(
    "ix_appointments_start_at_covering",
    Appointment.start_at,
    postgresql_include=COVERED_COLUMNS,
)
