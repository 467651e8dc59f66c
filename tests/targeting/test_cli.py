"""`navigator report targeting` as a manager runs it: the figures of the API, and a non-zero
exit with the reason when the trial cannot answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app
from app.clock import FixedClock
from app.settings import Settings, get_settings
from tests.clock import CALENDAR
from tests.targeting.helpers import create_trial


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "MODELS_DIR": str(settings.models_dir),
        "CALLS_HOLDOUT_SHARE": "0.2",
        "TARGETING_MIN_SUBGROUP": "20",
    }.items():
        monkeypatch.setenv(f"NAVIGATOR_{name}", value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_report_targeting_prints_the_effects_by_subgroup(
    session: Session, clock: FixedClock, runner: CliRunner
) -> None:
    create_trial(session, clock.now())
    session.commit()

    human = runner.invoke(app, ["report", "targeting"], obj=clock)
    as_json = runner.invoke(app, ["report", "targeting", "--json"], obj=clock)

    assert human.exit_code == 0, human.output
    # The last 52 weeks up to today, as local days (also in summer time).
    today = CALENDAR.today(clock.now())
    first = today + timedelta(days=1) - timedelta(weeks=52)
    assert f"appointments {first.isoformat()} to {today.isoformat()}" in human.stdout
    assert "Overall:" in human.stdout
    assert "960 call arm, 240 hold-out" in human.stdout
    assert "  First or follow-up:" in human.stdout
    assert "suppressed (fewer than 20 appointments in an arm: not shown)" in human.stdout
    assert "No benefit model is active." in human.stdout
    assert "The queue ranks calls by risk (the default)." in human.stdout
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["overall"]["n_holdout"] == 240
    assert report["queue_policy"]["effective"] == "risk"


@pytest.mark.parametrize(
    ("env", "trial", "message"),
    [
        ({}, {"appointments": 60}, "Too little trial data"),
        ({"NAVIGATOR_CALLS_HOLDOUT_SHARE": "0"}, {}, "hold-out share"),
        ({}, {"holdout_every": 10_000}, "hold-out has no appointments"),
    ],
)
def test_report_targeting_exits_non_zero_when_the_trial_cannot_answer(
    session: Session,
    clock: FixedClock,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    trial: dict[str, object],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    create_trial(session, clock.now(), **trial)  # type: ignore[arg-type]
    session.commit()

    human = runner.invoke(app, ["report", "targeting"], obj=clock)
    as_json = runner.invoke(app, ["report", "targeting", "--json"], obj=clock)

    assert human.exit_code == 1
    assert message in human.stderr
    assert as_json.exit_code == 1
    failure = json.loads(as_json.stdout)
    assert message in failure["error"]
    assert failure["code"]


def test_report_targeting_refuses_a_period_that_is_not_a_date(
    clock: FixedClock, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["report", "targeting", "--from", "01/09/2026"], obj=clock)

    assert result.exit_code == 1
    assert "--from must be a date like 2026-09-01" in result.output
