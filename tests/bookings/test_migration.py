"""The bookings migration turns Navigator's own `NAV-` rebookings into rebook requests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from app.db import migrate
from tests.clock import TEST_NOW
from tests.conftest import TEST_DATABASE_URL
from tests.databases import temporary_database


def test_phantom_rebookings_become_open_requests_and_the_original_is_restored(
    tmp_path: Path,
) -> None:
    start = TEST_NOW + timedelta(days=7)
    moved_to = TEST_NOW + timedelta(days=15)
    with temporary_database(TEST_DATABASE_URL, tmp_path) as url:
        migrate.upgrade(url, "0008")
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO patients (id, pas_patient_id, birth_date, sex, "
                        "ethnic_category, core20, mobile_phone_invalid, landline_phone_invalid, "
                        "preferred_language, interpreter_needed, communication_needs, "
                        "learning_disability, sms_opt_out, source_hash, created_at, updated_at) "
                        "VALUES (1, 'P1', '1980-01-01', 'F', 'A', false, false, false, 'en', "
                        "false, '', false, false, '', :now, :now)"
                    ),
                    {"now": TEST_NOW},
                )
                connection.execute(
                    text(
                        "INSERT INTO clinics (id, code, site, specialty_code, sensitive) "
                        "VALUES (1, 'ENT1', 'Site', '120', false)"
                    )
                )
                for row in (
                    {"id": 1, "pas": "A1", "code": "2", "start": start, "replaces": None},
                    {"id": 2, "pas": "NAV-1", "code": "0", "start": moved_to, "replaces": 1},
                ):
                    connection.execute(
                        text(
                            "INSERT INTO appointments (id, pas_appointment_id, patient_id, "
                            "clinic_id, booked_at, start_at, attendance_code, "
                            "replaces_appointment_id, source_hash, created_at, updated_at) "
                            "VALUES (:id, :pas, 1, 1, :booked, :start, :code, :replaces, '', "
                            ":now, :now)"
                        ),
                        {**row, "booked": TEST_NOW, "now": TEST_NOW},
                    )
                connection.execute(
                    text(
                        "INSERT INTO appointment_changes (appointment_id, changed_at, source, "
                        "field, old_value, new_value) VALUES (1, :now, 'navigator', "
                        "'attendance_code', '0', '2')"
                    ),
                    {"now": TEST_NOW},
                )
            migrate.upgrade(url)
            with engine.connect() as connection:
                appointments = connection.execute(
                    text("SELECT pas_appointment_id, attendance_code FROM appointments")
                ).all()
                requests = connection.execute(
                    text(
                        "SELECT kind, status, appointment_id, preferred_start_at "
                        "FROM booking_requests"
                    )
                ).all()
        finally:
            engine.dispose()
    assert [tuple(row) for row in appointments] == [("A1", "0")]
    assert len(requests) == 1
    kind, status, appointment_id, _preferred = requests[0]
    assert (kind, status, appointment_id) == ("rebook", "open", 1)
