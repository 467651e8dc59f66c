"""Both import paths (set-based on PostgreSQL, chunked on SQLite) read every value as
`validation.parse_appointment` does: unusual ISO date-time forms, local times either side of
a clock change, and the same `source_hash`, so a row the feed applies later is unchanged."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.appointments.tables import Appointment
from app.db.session import Database
from app.imports.service import (
    ImportRejectedError,
    RowWriter,
    import_appointments,
    import_patients,
)
from app.imports.validation import parse_appointment
from tests.clock import TEST_NOW, TODAY
from tests.imports.helpers import appointment_row, patient_row, write_appointments, write_patients

LONDON = ZoneInfo("Europe/London")


def _last_sunday_of(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


@pytest.fixture
def patients_loaded(database: Database, tmp_path: Path) -> Database:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1")])
    import_patients(database, path, now=TEST_NOW)
    return database


def test_unusual_forms_and_clock_change_times_are_read_as_python_reads_them(
    patients_loaded: Database, tmp_path: Path
) -> None:
    year = TODAY.year + 1
    autumn = _last_sunday_of(year, 10).isoformat()  # 01:30 happens twice
    spring = _last_sunday_of(year, 3).isoformat()  # 01:30 never happens
    booked = f"{year - 1}-12-01T10:00"
    starts = {
        "A1": f"{autumn}T01:30",
        "A2": f"{autumn}T00:45",
        "A3": f"{spring}T01:30",
        "A4": f"{spring}T02:15",
        "A5": f"{year}-06-02T09:30:15.250000+01:00",
        "A6": f"{year}-06-02T0930",
        "A7": f"{year}-06-02 09:30Z",
        "A8": f"  {year}-06-02T09:30:00+0530 ",
        "A9": f"{year}-01-02T09:30",
    }
    rows = [appointment_row(key, booked_at=booked, start_at=value) for key, value in starts.items()]
    path = write_appointments(tmp_path / "appointments.csv", rows)

    report = import_appointments(patients_loaded, path, now=TEST_NOW)

    assert report.inserted == len(rows)
    with patients_loaded.sessions() as session:
        stored = dict(
            session.execute(select(Appointment.pas_appointment_id, Appointment.start_at)).all()
        )
    expected = {
        row["appointment_id"]: parse_appointment(row, LONDON)[0]["start_at"] for row in rows
    }
    assert stored == expected


def test_a_row_the_feed_applies_after_the_import_is_unchanged(
    patients_loaded: Database, tmp_path: Path
) -> None:
    row = appointment_row("A1", start_at=f"{TODAY.year + 1}-02-03T09:30")
    path = write_appointments(tmp_path / "appointments.csv", [row])
    import_appointments(patients_loaded, path, now=TEST_NOW)

    with patients_loaded.unit_of_work() as session:
        again = RowWriter("Europe/London").appointment(session, row, now=TEST_NOW)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)


def test_an_impossible_date_and_an_out_of_range_offset_name_their_row_and_column(
    patients_loaded: Database, tmp_path: Path
) -> None:
    year = TODAY.year + 1
    rows = [
        appointment_row("A1", start_at=f"{year}-02-30T09:30"),
        appointment_row("A2", booked_at=f"{year}-01-01T24:00"),
        appointment_row("A3", start_at=f"{year}-02-03T09:30+25:00"),
    ]
    path = write_appointments(tmp_path / "appointments.csv", rows)

    with pytest.raises(ImportRejectedError) as caught:
        import_appointments(patients_loaded, path, now=TEST_NOW)

    found = [(problem["row"], problem["column"]) for problem in caught.value.details]
    assert found == [(2, "start_at"), (3, "booked_at"), (4, "start_at")]
    assert all("not a date-time" in problem["message"] for problem in caught.value.details)
