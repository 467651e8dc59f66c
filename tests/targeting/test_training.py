"""Training the benefit model: what it learns from, its card (version, window, metrics,
forbidden uses), the registry of versions and `navigator targeting train` / `status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.calls.queue import build_queue
from app.cli import app
from app.clock import FixedClock
from app.errors import ConflictError, NotFoundError, NotReadyError
from app.risk.artefacts import sha256_of
from app.risk.card import FORBIDDEN_USES as RISK_FORBIDDEN_USES
from app.settings import Settings, get_settings
from app.targeting import service
from app.targeting.uplift import FEATURES, QINI_POINTS
from tests.calls.helpers import MORNING, QUEUE_DAY
from tests.clock import CALENDAR
from tests.targeting.helpers import create_candidate, create_trial, targeting_settings


def test_training_registers_an_active_model_with_its_card(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = targeting_settings(settings)
    create_trial(session, clock.now(), base_dna=0.4)
    # Today's queue: assignments whose outcome is not known yet are not learnt from.
    for _ in range(5):
        create_candidate(session, first=True, risk=0.4)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)

    result = service.train_benefit_model(session, settings, now=clock.now())

    model, card = result.model, result.card
    assert model.active
    assert model.activated_at == clock.now()
    assert model.version == f"benefit-{clock.now():%Y%m%d-%H%M%S}"
    assert card["version"] == model.version
    assert card["rows"]["with_outcome"] == 1200
    rows = card["rows"]
    # Every call-arm appointment got a call, so every later week is validated on, by rolling
    # origin from further back than the weeks the queue's model did not learn from.
    validated = rows["validation_call_arm"] + rows["validation_holdout"]
    assert rows["with_outcome"] - rows["training"] < validated < rows["with_outcome"]
    assert card["metrics"]["validation_folds"] == 3
    assert card["rows"]["holdout_outcomes"] == card["rows"]["training_not_called"] > 0
    window = card["data_window"]
    today = CALENDAR.today(clock.now()).isoformat()
    assert window["first_queue_date"] < window["validation_from"] < window["model_learnt_before"]
    assert window["model_learnt_before"] <= window["last_queue_date"]
    assert window["last_queue_date"] < today
    metrics = card["metrics"]
    low, high = metrics["qini_area_ci"]
    assert low < metrics["qini_area"] < high
    assert low > 0  # calls clearly help first appointments in this trial
    assert len(metrics["qini_curve"]) == QINI_POINTS
    assert metrics["bootstrap_replicates"] == 100
    assert "risk_qini_area" in metrics
    assert card["features"] == list(FEATURES)
    # The call's effect by group, in the card: in this trial it helps first appointments.
    assert card["coefficients"]["first appointment"] < -1
    assert card["hyperparameters"]["effect_penalty"] in card["hyperparameters"]["penalty_grid"]
    assert set(RISK_FORBIDDEN_USES) < set(card["forbidden_uses"])
    assert any("who is held out" in use for use in card["forbidden_uses"])
    assert card["intended_use"]
    # The files beside the registry row: the artefact whose SHA-256 is recorded, the card.
    directory = settings.models_dir / model.version
    assert sha256_of(Path(model.artefact_path)) == model.artefact_sha256 == card["artefact_sha256"]
    assert json.loads((directory / "card.json").read_text()) == card
    markdown = (directory / "card.md").read_text()
    assert f"# Benefit model {model.version}" in markdown
    assert "**Forbidden uses.**" in markdown
    assert "| first appointment | -" in markdown
    assert f"validated out of time from {window['validation_from']}" in markdown


def test_each_training_is_a_new_version_and_any_can_be_made_active_again(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = targeting_settings(settings)
    create_trial(session, clock.now(), base_dna=0.4)
    first = service.train_benefit_model(session, settings, now=clock.now()).model
    second = service.train_benefit_model(session, settings, now=clock.now()).model

    assert second.version == f"{first.version}-2"
    assert second.active
    assert not first.active
    assert {model.version for model in service.list_models(session)} == {
        first.version,
        second.version,
    }

    clock.advance(minutes=5)
    service.activate_model(session, first.version, now=clock.now())
    session.refresh(second)
    assert first.active
    assert not second.active
    assert first.activated_at == clock.now()
    assert service.load_active_artefact(session).version == first.version
    with pytest.raises(ConflictError, match="already active"):
        service.activate_model(session, first.version, now=clock.now())
    with pytest.raises(NotFoundError):
        service.activate_model(session, "benefit-nope", now=clock.now())


def test_training_refuses_too_few_rows_and_keeps_the_previous_model(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = targeting_settings(settings)
    create_trial(session, clock.now(), base_dna=0.4)
    previous = service.train_benefit_model(session, settings, now=clock.now()).model
    strict = settings.model_copy(update={"targeting_min_training_rows": 5000})

    with pytest.raises(NotReadyError, match="1200 assigned appointments have an outcome"):
        service.train_benefit_model(session, strict, now=clock.now())

    assert [model.version for model in service.list_models(session)] == [previous.version]
    assert previous.active


@pytest.fixture
def runner(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "MODELS_DIR": str(tmp_path / "cli-models"),
        "CALLS_HOLDOUT_SHARE": "0.2",
        "CALLS_QUEUE_POLICY": "benefit",
        "TARGETING_MIN_SUBGROUP": "20",
        "TARGETING_MIN_TRAINING_ROWS": "200",
        "TARGETING_MIN_HOLDOUT_OUTCOMES": "50",
        "TARGETING_BOOTSTRAP_REPLICATES": "100",
    }.items():
        monkeypatch.setenv(f"NAVIGATOR_{name}", value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_targeting_train_and_status_on_the_command_line(
    session: Session, clock: FixedClock, runner: CliRunner
) -> None:
    before = runner.invoke(app, ["targeting", "status", "--json"], obj=clock)
    create_trial(session, clock.now(), base_dna=0.4)
    session.commit()

    trained = runner.invoke(app, ["targeting", "train", "--json"], obj=clock)
    human_status = runner.invoke(app, ["targeting", "status"], obj=clock)

    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["effective"] == "risk"
    assert "no benefit model is active" in json.loads(before.stdout)["message"]
    assert trained.exit_code == 0, trained.output
    output = json.loads(trained.stdout)
    assert output["card"]["version"] == f"benefit-{clock.now():%Y%m%d-%H%M%S}"
    assert output["queue_policy"] == "benefit"
    assert human_status.exit_code == 0
    assert "ranks calls by expected DNAs avoided" in human_status.stdout


def test_targeting_train_without_a_trial_exits_non_zero(
    session: Session, clock: FixedClock, runner: CliRunner
) -> None:
    create_trial(session, clock.now(), holdout_every=10_000)
    session.commit()

    result = runner.invoke(app, ["targeting", "train"], obj=clock)

    assert result.exit_code == 1
    assert "hold-out has no appointments" in result.output
