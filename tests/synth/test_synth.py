"""The synthetic trust: deterministic, inside its catchment, synthetic identifiers only."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import nhs_number
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.clock import FixedClock
from app.db.session import Database
from app.errors import InvalidInputError
from app.imports.phones import normalise_uk_phone
from app.imports.service import import_appointments, import_patients
from app.reference.imd import lsoa_table
from app.synth.service import CATCHMENTS, write_trust
from tests.clock import TEST_NOW, TODAY


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trust")
    write_trust(out, patients=3_000, weeks_history=26, weeks_ahead=3, catchment="leicester",
                seed=7, today=TODAY)  # fmt: skip
    return out


def test_same_seed_and_today_give_identical_files_and_another_seed_does_not(
    trust: Path, tmp_path: Path
) -> None:
    write_trust(tmp_path / "again", patients=3_000, weeks_history=26, weeks_ahead=3,
                catchment="leicester", seed=7, today=TODAY)  # fmt: skip
    write_trust(tmp_path / "other", patients=3_000, weeks_history=26, weeks_ahead=3,
                catchment="leicester", seed=8, today=TODAY)  # fmt: skip

    for name in ("patients.csv", "appointments.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (trust / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (trust / name).read_bytes()


@pytest.mark.parametrize("catchment", sorted(CATCHMENTS))
def test_patients_live_only_in_the_catchments_lsoas(catchment: str, tmp_path: Path) -> None:
    write_trust(tmp_path, patients=1_000, weeks_history=4, weeks_ahead=1, catchment=catchment,
                seed=1, today=TODAY)  # fmt: skip

    table = lsoa_table()
    authorities = {
        table[row["lsoa_code"]].local_authority for row in _rows(tmp_path / "patients.csv")
    }
    assert authorities <= set(CATCHMENTS[catchment])
    assert len(authorities) >= 3  # drawn across the catchment, not one borough


def test_phones_are_only_from_the_ofcom_drama_ranges(trust: Path) -> None:
    patients = _rows(trust / "patients.csv")
    mobiles = [row["mobile_phone"] for row in patients if row["mobile_phone"]]
    landlines = [row["landline_phone"] for row in patients if row["landline_phone"]]
    assert mobiles
    assert landlines
    for raw in mobiles:
        number = normalise_uk_phone(raw)
        # Deliberately mistyped numbers are still drama-range prefixes.
        assert raw.replace(" ", "").startswith(("07700900", "+447700900", "077009"))
        assert number is None or 0 <= int(number.removeprefix("+447700900")) <= 999
    for raw in landlines:
        number = normalise_uk_phone(raw)
        assert number is not None
        assert number.startswith("+441134960")
    invalid = sum(normalise_uk_phone(raw) is None for raw in mobiles)
    assert 0 < invalid < len(mobiles) * 0.05


def test_nhs_numbers_are_valid_unique_and_from_the_999_test_range(trust: Path) -> None:
    numbers = [row["nhs_number"] for row in _rows(trust / "patients.csv") if row["nhs_number"]]
    assert len(numbers) > 2_900
    assert len(set(numbers)) == len(numbers)
    assert all(number.startswith("999") for number in numbers)
    assert all(nhs_number.is_valid(number) for number in numbers)


def test_the_trust_looks_like_an_outpatient_service(trust: Path) -> None:
    patients = _rows(trust / "patients.csv")
    appointments = _rows(trust / "appointments.csv")
    codes = {row["attendance_code"] for row in appointments}
    assert codes == {"0", "2", "3", "4", "5", "6", "7"}
    assert {row["specialty_code"] for row in appointments} >= {"120", "144", "140", "330", "340"}
    assert 2 <= len({row["site"] for row in appointments}) <= 3
    future = [row for row in appointments if row["start_at"] >= TODAY.isoformat()]
    assert future
    assert {row["attendance_code"] for row in future} == {"0"}
    assert all(row["booked_at"] < row["start_at"] for row in appointments)
    languages = {row["preferred_language"] for row in patients}
    assert {"en", "gu", "pa"} <= languages
    assert {"Z", "99"} <= {row["ethnic_category"] for row in patients}
    assert any(row["sms_opt_out"] == "true" for row in patients)
    assert any(row["communication_needs"] for row in patients)
    assert any(row["interpreter_needed"] == "true" for row in patients)


def test_the_synthetic_trust_imports_without_a_single_reject(
    database: Database, tmp_path: Path
) -> None:
    summary = write_trust(tmp_path, patients=400, weeks_history=8, weeks_ahead=2,
                          catchment="royal-free", seed=3, today=TODAY)  # fmt: skip

    patients = import_patients(database, tmp_path / "patients.csv", now=TEST_NOW)
    appointments = import_appointments(database, tmp_path / "appointments.csv", now=TEST_NOW)

    assert (patients.inserted, patients.rejected) == (400, 0)
    assert (appointments.inserted, appointments.rejected) == (summary.appointments, 0)


def test_unknown_catchment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown catchment 'york'"):
        write_trust(tmp_path, catchment="york", seed=1, today=TODAY)


def test_synth_command_prints_rates_by_decile_and_ethnic_group(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["synth", "--out", str(tmp_path), "--patients", "500", "--weeks-history", "8",
         "--seed", "2", "--today", TODAY.isoformat(), "--json"],
    )  # fmt: skip
    human = runner.invoke(
        app, ["synth", "--out", str(tmp_path), "--patients", "500", "--today", TODAY.isoformat()]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["patients"] == 500
    assert set(summary["by_imd_decile"]) == {str(d) for d in range(1, 11)}
    assert list(summary["by_ethnic_group"])[-2:] == ["Z", "99"]
    assert len(summary["by_ethnic_group"]) == 7
    assert human.exit_code == 0
    assert "By IMD decile" in human.stdout
    assert "By ethnic group" in human.stdout
    assert (tmp_path / "patients.csv").exists()


def test_synth_without_a_day_uses_the_clock_s_local_day(tmp_path: Path, clock: FixedClock) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["synth", "--out", str(tmp_path), "--patients", "200", "--weeks-history", "2",
         "--weeks-ahead", "1", "--seed", "4"],
        obj=clock,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    starts = sorted(row["start_at"] for row in _rows(tmp_path / "appointments.csv"))
    future = [start for start in starts if start >= TODAY.isoformat()]
    assert future
    assert len(future) < len(starts)
    assert max(starts) < (TODAY + timedelta(weeks=2)).isoformat()
