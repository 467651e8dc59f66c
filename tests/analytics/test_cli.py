"""`navigator report impact` as a manager runs it: the same figures as the API, clean failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app
from app.settings import Settings, get_settings
from tests.analytics.helpers import PERIOD_END, PERIOD_START, create_arm, label

OPTIONS = ["--from", PERIOD_START.isoformat(), "--to", PERIOD_END.isoformat()]


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_report_impact_prints_the_estimate_and_json(session: Session, runner: CliRunner) -> None:
    create_arm(session, arm="call", attended=95, dnas=5)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    session.commit()

    human = runner.invoke(app, ["report", "impact", *OPTIONS])
    as_json = runner.invoke(app, ["report", "impact", *OPTIONS, "--json"])

    assert human.exit_code == 0, human.output
    assert "Avoided DNAs: 7.0 (95% CI" in human.stdout
    assert "Gross savings (before navigator time): £700 to £1,120" in human.stdout
    assert "Impact by ethnic group" in human.stdout
    result = json.loads(as_json.stdout)
    assert result["estimate"]["avoided_dnas"] == pytest.approx(7.0)
    assert result["period"] == {
        "from": PERIOD_START.isoformat(),
        "to": PERIOD_END.isoformat(),
        "last_day": (PERIOD_END - timedelta(days=1)).isoformat(),
        "label": f"{label(PERIOD_START)} to {label(PERIOD_END - timedelta(days=1))}",
    }


def test_report_impact_explains_why_there_is_no_estimate(
    session: Session, runner: CliRunner
) -> None:
    create_arm(session, arm="call", attended=90, dnas=10)
    session.commit()

    human = runner.invoke(app, ["report", "impact", *OPTIONS])
    as_json = runner.invoke(app, ["report", "impact", *OPTIONS, "--json"])
    backwards = runner.invoke(
        app,
        ["report", "impact", "--from", PERIOD_END.isoformat(), "--to", PERIOD_START.isoformat()],
    )
    not_a_date = runner.invoke(
        app,
        ["report", "impact", "--from", f"{PERIOD_START:%d/%m/%Y}", "--to", PERIOD_END.isoformat()],
    )

    assert human.exit_code == 1
    assert "hold-out share was zero" in human.stderr
    assert as_json.exit_code == 1
    assert "hold-out share was zero" in json.loads(as_json.stdout)["error"]
    assert backwards.exit_code == 1
    assert "must end after it starts" in backwards.stderr
    assert not_a_date.exit_code != 0
    assert "is not a date" in not_a_date.output
