"""Importing patients.csv: cleaning, validation by row and column, idempotent re-import."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db.session import Database
from app.imports.service import ImportRejectedError, import_patients
from app.patients.tables import Patient
from tests.clock import TEST_NOW
from tests.imports.helpers import patient_row, write_patients


def _patients(database: Database) -> dict[str, Patient]:
    with database.sessions() as session:
        return {p.pas_patient_id: p for p in session.scalars(select(Patient))}


def test_a_valid_patient_is_stored_cleaned_with_deprivation_and_e164_phones(
    database: Database, tmp_path: Path
) -> None:
    path = write_patients(
        tmp_path / "patients.csv",
        [
            patient_row(
                "P1",
                nhs_number="999 000 0018",
                lsoa_code="e01013500",
                mobile_phone="+44 (0)7700 900123",
                landline_phone="0113 496 0001",
                communication_needs="large_print; BSL",
                ethnic_category="",
                preferred_language="",
                interpreter_needed="TRUE",
            )
        ],
    )

    report = import_patients(database, path, now=TEST_NOW)

    assert (report.rows_read, report.inserted, report.rejected) == (1, 1, 0)
    patient = _patients(database)["P1"]
    assert patient.nhs_number == "9990000018"
    assert patient.mobile_phone == "+447700900123"
    assert patient.landline_phone == "+441134960001"
    assert patient.has_usable_mobile
    assert patient.communication_needs == "bsl;large_print"
    assert patient.ethnic_category == "99"
    assert patient.preferred_language == "en"
    assert patient.interpreter_needed is True
    assert patient.lsoa_code == "E01013500"
    assert patient.imd_release == "IMD2019"
    assert patient.imd_decile is not None
    assert patient.core20 == (patient.imd_decile <= 2)


def test_an_unparseable_phone_is_flagged_not_stored_and_never_blocks_the_import(
    database: Database, tmp_path: Path
) -> None:
    path = write_patients(
        tmp_path / "patients.csv",
        [
            patient_row("P1", mobile_phone="07700 9001", landline_phone="call reception"),
            patient_row("P2", mobile_phone="0113 496 0002", landline_phone=""),
        ],
    )

    report = import_patients(database, path, now=TEST_NOW)

    assert report.inserted == 2
    patients = _patients(database)
    assert patients["P1"].mobile_phone is None
    assert patients["P1"].mobile_phone_invalid
    assert patients["P1"].landline_phone_invalid
    # A landline in the mobile column cannot take an SMS.
    assert not patients["P2"].has_usable_mobile
    assert not patients["P2"].landline_phone_invalid


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("nhs_number", "9990000019", "not a valid NHS number"),
        ("nhs_number", "12345", "not a valid NHS number"),
        ("ethnic_category", "Q", "not an NHS ethnic category"),
        ("birth_date", "01/05/1980", "not a date"),
        ("birth_date", "", "a value is required"),
        ("birth_date", "2999-01-01", "in the future"),
        ("sex", "female", "not one of M, F, X, U"),
        ("lsoa_code", "LE1 5WW", "not a 2011 LSOA code"),
        ("preferred_language", "english", "not an ISO 639-1"),
        ("interpreter_needed", "maybe", "not true or false"),
        ("sms_opt_out", "2", "not true or false"),
        ("communication_needs", "bsl;semaphore", "unknown communication need(s) semaphore"),
        ("patient_id", "", "a value is required"),
    ],
)
def test_each_invalid_value_is_reported_by_row_and_column_and_nothing_is_written(
    database: Database, tmp_path: Path, column: str, value: str, fragment: str
) -> None:
    path = write_patients(
        tmp_path / "patients.csv",
        [patient_row("P1"), {**patient_row("P2"), column: value}],
    )

    with pytest.raises(ImportRejectedError) as caught:
        import_patients(database, path, now=TEST_NOW)

    problems = caught.value.details
    assert len(problems) == 1
    assert problems[0]["row"] == 3
    assert problems[0]["column"] == column
    assert fragment in problems[0]["message"]
    assert _patients(database) == {}


def test_every_problem_of_every_row_is_listed(database: Database, tmp_path: Path) -> None:
    path = write_patients(
        tmp_path / "patients.csv",
        [
            patient_row("P1", sex="Q", birth_date="yesterday"),
            patient_row("P2"),
            patient_row("P3", ethnic_category="W"),
        ],
    )

    with pytest.raises(ImportRejectedError) as caught:
        import_patients(database, path, now=TEST_NOW)

    listed = {(p["row"], p["column"]) for p in caught.value.details}
    assert listed == {(2, "sex"), (2, "birth_date"), (4, "ethnic_category")}
    assert caught.value.report.rejected == 2


def test_reimporting_the_same_file_changes_nothing_and_a_changed_row_updates(
    database: Database, tmp_path: Path
) -> None:
    rows = [patient_row("P1"), patient_row("P2", sex="M")]
    path = write_patients(tmp_path / "patients.csv", rows)
    import_patients(database, path, now=TEST_NOW)
    first_updated = _patients(database)["P1"].updated_at

    again = import_patients(database, path, now=TEST_NOW)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert _patients(database)["P1"].updated_at == first_updated

    rows[0] = patient_row("P1", sms_opt_out="true")
    changed = import_patients(
        database, write_patients(tmp_path / "patients.csv", rows), now=TEST_NOW
    )
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    assert _patients(database)["P1"].sms_opt_out is True
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 2


def test_skip_invalid_loads_valid_rows_and_writes_rejects_with_reasons(
    database: Database, tmp_path: Path
) -> None:
    path = write_patients(
        tmp_path / "extract.csv",
        [patient_row("P1"), patient_row("P2", sex="?"), patient_row("P3")],
    )

    report = import_patients(database, path, skip_invalid=True, now=TEST_NOW)

    assert (report.inserted, report.rejected) == (2, 1)
    assert set(_patients(database)) == {"P1", "P3"}
    rejects = tmp_path / "extract.rejects.csv"
    assert report.rejects_file == str(rejects)
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",reasons")
    assert lines[0].startswith("patient_id,nhs_number")
    assert len(lines) == 2
    assert lines[1].startswith("P2,")
    assert "sex: '?' is not one of M, F, X, U" in lines[1]


def test_a_welsh_lsoa_is_kept_without_an_english_imd_decile(
    database: Database, tmp_path: Path
) -> None:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1", lsoa_code="W01000001")])

    import_patients(database, path, now=TEST_NOW)

    patient = _patients(database)["P1"]
    assert patient.lsoa_code == "W01000001"
    assert (patient.imd_decile, patient.imd_release, patient.core20) == (None, None, False)
