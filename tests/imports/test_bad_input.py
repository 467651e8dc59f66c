"""Files that cannot be imported as they are: each gets a clear message, the database unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from app.db.session import Database
from app.errors import InvalidInputError
from app.imports.service import ImportRejectedError, import_patients
from app.patients.tables import Patient
from app.settings import Settings, get_settings
from tests.clock import TEST_NOW
from tests.imports.helpers import patient_row, write_patients


def _count(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(Patient)) or 0


def _import_error(database: Database, path: Path) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        import_patients(database, path, now=TEST_NOW)
    assert _count(database) == 0
    return caught.value


def test_semicolon_separated_file_is_named_as_such(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("patient_id;birth_date;sex\nP1;1980-01-01;F\n", encoding="utf-8")

    error = _import_error(database, path)

    assert "separated by semicolons, not commas" in error.message


def test_missing_required_column_is_named(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,sex\nP1,F\n", encoding="utf-8")

    error = _import_error(database, path)

    assert "missing required column(s): birth_date" in error.message


def test_non_utf8_file_names_the_line(database: Database, tmp_path: Path) -> None:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2")])
    content = path.read_bytes().replace(b"Ashdown", b"Ash\xe9own")  # Latin-1 e-acute
    path.write_bytes(content)

    error = _import_error(database, path)

    assert "not UTF-8" in error.message
    assert "line 2" in error.message


def test_truncated_last_line_is_reported(database: Database, tmp_path: Path) -> None:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2")])
    content = path.read_bytes()
    path.write_bytes(content[: content.rindex(b",1980") + 3])

    with pytest.raises(ImportRejectedError) as caught:
        import_patients(database, path, now=TEST_NOW)

    (problem,) = caught.value.details
    assert problem["row"] == 3
    assert "last line is truncated" in problem["message"]
    assert _count(database) == 0


def test_duplicate_ids_in_one_file_are_rejected(database: Database, tmp_path: Path) -> None:
    path = write_patients(
        tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2"), patient_row("P1")]
    )

    with pytest.raises(ImportRejectedError) as caught:
        import_patients(database, path, now=TEST_NOW)

    (problem,) = caught.value.details
    assert (problem["row"], problem["column"]) == (4, "patient_id")
    assert "appears more than once" in problem["message"]
    assert _count(database) == 0


@pytest.mark.slow
def test_ten_thousand_invalid_rows_are_all_reported_in_json_and_rejects(
    database: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [patient_row(f"P{i}", sex="?" if i % 2 else "F") for i in range(20_000)]
    path = write_patients(tmp_path / "patients.csv", rows)
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        failed = runner.invoke(app, ["import", "patients", str(path), "--json"])
        human = runner.invoke(app, ["import", "patients", str(path)])
        skipped = runner.invoke(app, ["import", "patients", str(path), "--skip-invalid", "--json"])
    finally:
        get_settings.cache_clear()

    assert failed.exit_code != 0
    result = json.loads(failed.stdout)
    assert result["rejected"] == 10_000
    assert len(result["problems"]) == 10_000
    assert result["committed"] is False
    assert "and 9,950 more" in human.stderr or "and 9950 more" in human.stderr
    assert skipped.exit_code == 0
    loaded = json.loads(skipped.stdout)
    assert (loaded["inserted"], loaded["rejected"]) == (10_000, 10_000)
    rejects = (tmp_path / "patients.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 10_001
    assert _count(database) == 10_000


def test_a_last_line_cut_inside_a_value_says_the_file_may_be_cut_off(
    database: Database, tmp_path: Path
) -> None:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2")])
    content = path.read_bytes().rstrip(b"\n")
    path.write_bytes(content[:-1] + b"?")  # "false" becomes "fals?" with no line ending

    with pytest.raises(ImportRejectedError) as caught:
        import_patients(database, path, now=TEST_NOW)

    messages = [problem["message"] for problem in caught.value.details]
    assert any("not true or false" in message for message in messages)
    assert any("may be cut off" in message for message in messages)
    assert _count(database) == 0
