"""`navigator train|score|model` and the risk JSON API."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth.roles import Role
from app.cli import app as cli_app
from app.clock import FixedClock
from app.db.session import Database
from app.risk import service
from app.settings import Settings, get_settings
from tests.auth.helpers import create_user, sign_in
from tests.clock import TODAY
from tests.risk.helpers import NOW, create_trust, risk_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAVIGATOR_MODELS_DIR", str(settings.models_dir))
    monkeypatch.setenv("NAVIGATOR_RISK_MIN_TRAINING_ROWS", "300")
    monkeypatch.setenv("NAVIGATOR_RISK_MIN_TRAINING_DNAS", "20")
    monkeypatch.setenv("NAVIGATOR_RISK_BOOTSTRAP_REPLICATES", "50")
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.mark.slow
def test_train_score_and_activate_from_the_command_line(
    database: Database, cli_env: Settings, tmp_path: Path, clock: FixedClock
) -> None:
    with database.unit_of_work() as session:
        create_trust(session)
    runner = CliRunner()
    as_of = (TODAY - timedelta(days=5)).isoformat()

    trained = runner.invoke(cli_app, ["train", "--as-of", as_of, "--json"], obj=clock)
    assert trained.exit_code == 0, trained.output
    first = json.loads(trained.stdout)["version"]
    assert json.loads(trained.stdout)["card"]["trained_at"] == clock.now().isoformat()
    clock.advance(minutes=5)
    second = runner.invoke(cli_app, ["train", "--as-of", as_of], obj=clock)
    assert second.exit_code == 0, second.output
    assert "this model" in second.stdout
    assert "logistic regression" in second.stdout

    listed = json.loads(runner.invoke(cli_app, ["model", "list", "--json"]).stdout)["models"]
    assert [m["active"] for m in listed] == [True, False]
    activated = runner.invoke(cli_app, ["model", "activate", first], obj=clock)
    assert activated.exit_code == 0, activated.output
    listed = json.loads(runner.invoke(cli_app, ["model", "list", "--json"]).stdout)["models"]
    assert next(m for m in listed if m["active"])["version"] == first

    out = tmp_path / "backtest.csv"
    backtest_from = (TODAY - timedelta(weeks=8)).isoformat()
    backtest_to = (TODAY - timedelta(weeks=4)).isoformat()
    scored = runner.invoke(
        cli_app,
        ["score", "--from", backtest_from, "--to", backtest_to, "--out", str(out)],
        obj=clock,
    )
    assert scored.exit_code == 0, scored.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert set(rows[0]) == {"appointment_id", "risk"}
    assert all(row["appointment_id"].startswith("SA") for row in rows)
    assert all(0 < float(row["risk"]) < 1 for row in rows)


def test_cli_errors_are_clear(database: Database, cli_env: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["score"])
    assert result.exit_code == 1
    assert "no risk model is active" in result.stderr
    result = runner.invoke(cli_app, ["model", "activate", "dna-missing"])
    assert result.exit_code == 1
    assert "no risk model has version" in result.stderr
    result = runner.invoke(cli_app, ["train", "--as-of", "yesterday"])
    assert result.exit_code != 0


def test_a_clock_outside_the_data_gets_a_clear_message(
    database: Database, cli_env: Settings, clock: FixedClock
) -> None:
    with database.unit_of_work() as session:
        create_trust(session, patients=300, past=2_500, future=50)
    runner = CliRunner()
    clock.set(NOW - timedelta(days=3 * 365))
    result = runner.invoke(cli_app, ["train"], obj=clock)
    assert result.exit_code == 1
    assert "before the first appointment in the data" in result.stderr
    listed = json.loads(runner.invoke(cli_app, ["model", "list", "--json"]).stdout)["models"]
    assert listed == []

    clock.set(NOW)
    assert runner.invoke(cli_app, ["train"], obj=clock).exit_code == 0
    clock.set(NOW + timedelta(days=4 * 365))
    result = runner.invoke(cli_app, ["score"], obj=clock)
    assert result.exit_code == 0, result.output
    assert "Scored 0 appointments" in result.stdout
    assert "after the last appointment in the data" in result.stdout
    clock.set(NOW - timedelta(days=3 * 365))
    result = runner.invoke(cli_app, ["score"], obj=clock)
    assert "before the first appointment in the data" in result.stdout


def test_api_needs_a_manager_to_read_and_an_admin_to_activate(
    session: Session, app_client: TestClient
) -> None:
    assert app_client.get("/api/risk/models").status_code == 401
    create_user(session, Role.NAVIGATOR, username="nav")
    create_user(session, Role.MANAGER, username="boss")
    session.commit()
    sign_in(app_client, "nav")
    assert app_client.get("/api/risk/models").status_code == 403
    csrf = sign_in(app_client, "boss")
    assert app_client.get("/api/risk/models").json() == []
    refused = app_client.post("/api/risk/models/x/activate", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403


def test_api_lists_models_shows_the_active_card_and_activates(
    session: Session, settings: Settings, app_client: TestClient
) -> None:
    create_user(session, Role.ADMIN, username="admin")
    session.commit()
    csrf = sign_in(app_client, "admin")
    assert app_client.get("/api/risk/models/active").status_code == 409
    settings = risk_settings(settings)
    create_trust(session, patients=300, past=2_500, future=0)
    older = service.train_model(session, settings, now=NOW, as_of=NOW).model.version
    newer = service.train_model(session, settings, now=NOW, as_of=NOW).model.version
    session.commit()
    headers = {"X-CSRF-Token": csrf}

    models = app_client.get("/api/risk/models").json()
    assert {m["version"] for m in models} == {older, newer}
    card = app_client.get("/api/risk/models/active").json()
    assert card["version"] == newer
    assert "fairness" in card["card"]
    assert "baselines" in card["card"]

    response = app_client.post(f"/api/risk/models/{older}/activate", headers=headers)
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert app_client.get("/api/risk/models/active").json()["version"] == older
    assert app_client.post("/api/risk/models/nope/activate", headers=headers).status_code == 404


def test_navigator_model_review_records_a_decision_even_without_data(
    database: Database, cli_env: Settings, clock: FixedClock
) -> None:
    result = CliRunner().invoke(cli_app, ["model", "review", "--json"], obj=clock)

    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["outcome"] == "not_trained"
    assert "there are no appointments to train on" in decision["reason"]
    assert decision["active_version"] is None
