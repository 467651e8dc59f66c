"""`navigator import ...` as a user runs it: summaries, JSON, exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import Settings, get_settings
from tests.imports.helpers import appointment_row, patient_row, write_appointments, write_patients


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_import_prints_a_summary_then_json_on_request(runner: CliRunner, tmp_path: Path) -> None:
    patients = write_patients(tmp_path / "patients.csv", [patient_row("P1"), patient_row("P2")])
    appointments = write_appointments(tmp_path / "appointments.csv", [appointment_row("A1")])

    human = runner.invoke(app, ["import", "patients", str(patients)])
    again = runner.invoke(app, ["import", "patients", str(patients), "--json"])
    booked = runner.invoke(app, ["import", "appointments", str(appointments), "--json"])

    assert human.exit_code == 0, human.output
    assert "inserted            2" in human.stdout
    assert "rows read           2" in human.stdout
    result = json.loads(again.stdout)
    assert (result["rows_read"], result["unchanged"], result["inserted"]) == (2, 2, 0)
    assert json.loads(booked.stdout)["clinics_created"] == 1


def test_a_file_level_problem_exits_non_zero_with_the_message(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("patient_id;birth_date;sex\nP1;1980-01-01;F\n", encoding="utf-8")

    human = runner.invoke(app, ["import", "patients", str(path)])
    as_json = runner.invoke(app, ["import", "patients", str(path), "--json"])
    missing = runner.invoke(app, ["import", "patients", str(tmp_path / "nope.csv")])

    assert human.exit_code == 1
    assert "separated by semicolons" in human.stderr
    assert as_json.exit_code == 1
    assert "separated by semicolons" in json.loads(as_json.stdout)["error"]
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


def test_invalid_rows_are_listed_by_row_and_column_on_failure(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write_patients(tmp_path / "patients.csv", [patient_row("P1", sex="Q")])

    result = runner.invoke(app, ["import", "patients", str(path)])

    assert result.exit_code == 1
    assert "row 2, column sex: 'Q' is not one of M, F, X, U" in result.stderr
    assert "nothing was imported" in result.stderr
