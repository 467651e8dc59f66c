"""Importing appointments.csv: clinics, local time, outcome history, chunked streaming."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app.appointments.tables import Appointment, AppointmentChange, Clinic
from app.db.session import Database
from app.imports.service import ImportRejectedError, import_appointments, import_patients
from tests.imports.helpers import appointment_row, patient_row, write_appointments, write_patients

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@pytest.fixture
def patients_loaded(database: Database, tmp_path: Path) -> Database:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2")])
    import_patients(database, path, now=NOW)
    return database


def _appointments(database: Database) -> dict[str, Appointment]:
    with database.sessions() as session:
        return {a.pas_appointment_id: a for a in session.scalars(select(Appointment))}


def _changes(database: Database) -> list[tuple[str, str | None, str | None, str]]:
    with database.sessions() as session:
        return [
            (c.field, c.old_value, c.new_value, c.source)
            for c in session.scalars(select(AppointmentChange).order_by(AppointmentChange.id))
        ]


def test_local_times_are_stored_as_utc_and_clinics_are_created(
    patients_loaded: Database, tmp_path: Path
) -> None:
    path = write_appointments(
        tmp_path / "appointments.csv",
        [
            # Summer time: 09:30 in London is 08:30 UTC.
            appointment_row("A1", booked_at="2026-06-01T10:00", start_at="2026-07-01T09:30"),
            appointment_row("A2", start_at="2026-11-02T09:30+00:00", clinic_code="RESP-GH-1",
                            specialty_code="340", site="Glenfield Hospital",
                            first_attendance=""),
        ],
    )  # fmt: skip

    report = import_appointments(patients_loaded, path, now=NOW)

    assert (report.inserted, report.clinics_created) == (2, 2)
    stored = _appointments(patients_loaded)
    assert stored["A1"].start_at == datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert stored["A2"].start_at == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert stored["A2"].first_attendance is None
    with patients_loaded.sessions() as session:
        clinic = session.scalars(select(Clinic).where(Clinic.code == "RESP-GH-1")).one()
    assert (clinic.site, clinic.specialty_code) == ("Glenfield Hospital", "340")


def test_outcome_recorded_at_is_start_on_first_import_and_import_time_on_a_later_change(
    patients_loaded: Database, tmp_path: Path
) -> None:
    path = tmp_path / "appointments.csv"
    write_appointments(
        path,
        [
            appointment_row("PAST", start_at="2026-11-02T09:30+00:00", attendance_code="3"),
            appointment_row("FUTURE", start_at="2026-12-10T09:30+00:00", attendance_code=""),
        ],
    )
    import_appointments(patients_loaded, path, now=NOW)
    stored = _appointments(patients_loaded)
    assert stored["PAST"].outcome_recorded_at == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert stored["FUTURE"].attendance_code == "0"
    assert stored["FUTURE"].outcome_recorded_at is None

    later = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    write_appointments(
        path,
        [
            appointment_row("PAST", start_at="2026-11-02T09:30+00:00", attendance_code="5"),
            appointment_row("FUTURE", start_at="2026-12-11T14:00+00:00", attendance_code=""),
        ],
    )
    report = import_appointments(patients_loaded, path, now=later)

    assert (report.updated, report.changes_recorded) == (2, 2)
    stored = _appointments(patients_loaded)
    assert stored["PAST"].attendance_code == "5"
    assert stored["PAST"].outcome_recorded_at == later
    assert stored["FUTURE"].start_at == datetime(2026, 12, 11, 14, 0, tzinfo=UTC)
    assert stored["FUTURE"].outcome_recorded_at is None
    assert _changes(patients_loaded) == [
        ("attendance_code", "3", "5", "pas_import"),
        ("start_at", "2026-12-10T09:30:00+00:00", "2026-12-11T14:00:00+00:00", "pas_import"),
    ]


def test_reimporting_the_same_appointments_changes_nothing(
    patients_loaded: Database, tmp_path: Path
) -> None:
    path = write_appointments(
        tmp_path / "appointments.csv", [appointment_row("A1"), appointment_row("A2")]
    )
    import_appointments(patients_loaded, path, now=NOW)
    before = _appointments(patients_loaded)

    again = import_appointments(patients_loaded, path, now=datetime(2026, 12, 1, tzinfo=UTC))

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    after = _appointments(patients_loaded)
    assert [a.updated_at for a in after.values()] == [a.updated_at for a in before.values()]
    assert _changes(patients_loaded) == []


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("patient_id", "P404", "unknown patient 'P404'"),
        ("start_at", "2026-09-01T09:00", "starts before it was booked"),
        ("start_at", "tomorrow 9am", "not a date-time"),
        ("booked_at", "", "a value is required"),
        ("attendance_code", "1", "not an attendance code"),
        ("attendance_code", "DNA", "not an attendance code"),
        ("first_attendance", "first", "not true or false"),
        ("specialty_code", "ENT", "not a 3-digit treatment function code"),
        ("clinic_code", "", "a value is required"),
    ],
)
def test_each_invalid_appointment_value_is_reported_and_nothing_is_written(
    patients_loaded: Database, tmp_path: Path, column: str, value: str, fragment: str
) -> None:
    path = write_appointments(
        tmp_path / "appointments.csv",
        [appointment_row("A1"), {**appointment_row("A2"), column: value}],
    )

    with pytest.raises(ImportRejectedError) as caught:
        import_appointments(patients_loaded, path, now=NOW)

    (problem,) = caught.value.details
    assert (problem["row"], problem["column"]) == (3, column)
    assert fragment in problem["message"]
    assert _appointments(patients_loaded) == {}


def test_more_rows_than_one_chunk_stream_through_and_a_late_bad_row_rolls_back_all(
    patients_loaded: Database, tmp_path: Path
) -> None:
    rows = [appointment_row(f"A{i}", patient_id="P1" if i % 2 else "P2") for i in range(25)]
    path = write_appointments(tmp_path / "appointments.csv", rows)

    report = import_appointments(patients_loaded, path, chunk_size=4, now=NOW)
    assert report.inserted == 25
    assert len(_appointments(patients_loaded)) == 25

    # Changing rows across several chunks, with an invalid row in the last chunk: the chunks
    # already written in this import are rolled back too.
    changed = [appointment_row(f"A{i}", attendance_code="3") for i in range(25)]
    changed.append(appointment_row("A99", patient_id="P404"))
    write_appointments(path, changed)
    with pytest.raises(ImportRejectedError):
        import_appointments(patients_loaded, path, chunk_size=4, now=NOW)
    assert {a.attendance_code for a in _appointments(patients_loaded).values()} == {"5"}
    assert _changes(patients_loaded) == []


def test_skip_invalid_rejects_unknown_patients_into_the_rejects_file(
    patients_loaded: Database, tmp_path: Path
) -> None:
    path = write_appointments(
        tmp_path / "appointments.csv",
        [appointment_row("A1"), appointment_row("A2", patient_id="P404")],
    )

    report = import_appointments(patients_loaded, path, skip_invalid=True, now=NOW)

    assert (report.inserted, report.rejected) == (1, 1)
    assert set(_appointments(patients_loaded)) == {"A1"}
    rejects = (tmp_path / "appointments.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[1].startswith("A2,P404,")
    assert "unknown patient 'P404'" in rejects[1]
