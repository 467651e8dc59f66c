"""`navigator simulate targeting` as a manager runs it, at a size a test can afford: the JSON
of CONTRACT.md, equal capacity, and no loss from the benefit policy against the queue's risk
policy when calls help everyone alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import get_settings
from app.targeting.policy import PRIORITY_GROUPS

TINY = ["simulate", "targeting", "--weeks", "1", "--history-weeks", "4"]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    result: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return result


def test_the_simulation_prints_the_contract_json(runner: CliRunner) -> None:
    result = runner.invoke(app, [*TINY, "--repeats", "2", "--json"])

    assert result.exit_code == 0, result.output
    output = _strict_json(result.stdout)
    risk, benefit = output["policies"]["risk"], output["policies"]["benefit"]
    for policy in (risk, benefit):
        assert {"avoided_per_call", "ci_low", "ci_high", "calls"} <= set(policy)
        assert policy["ci_low"] <= policy["avoided_per_call"] <= policy["ci_high"]
        assert 0 < policy["avoided_per_call"] < 1
    # Equal capacity: 2 navigators x 40 calls x 5 days x 2 repeats for each policy.
    assert risk["calls"] == benefit["calls"] == 800
    difference = output["difference"]
    assert difference["estimate"] == pytest.approx(
        benefit["avoided_per_call"] - risk["avoided_per_call"]
    )
    assert difference["ci_low"] <= difference["estimate"] <= difference["ci_high"]
    assert output["relative_gain"] == pytest.approx(
        difference["estimate"] / risk["avoided_per_call"]
    )
    # Beside them, the queue as the switching rule ran it (the benefit policy where the
    # repeat's model passed the rule, risk elsewhere) and ranking by the risk score alone,
    # at the same capacity.
    governed = output["policies"]["switching_rule"]
    alone = output["policies"]["risk_score"]
    assert governed["calls"] == alone["calls"] == risk["calls"]
    switched = output["benefit_model"]["switched_repeats"]
    # How often the rule's check passes on the true benefit: the trial's power, not the model's.
    assert 0 <= output["benefit_model"]["true_benefit_passes_repeats"] <= 2
    if switched == 2:
        assert governed["avoided_per_call"] == pytest.approx(benefit["avoided_per_call"])
    elif switched == 0:
        assert governed["avoided_per_call"] == pytest.approx(risk["avoided_per_call"])
    assert output["difference_vs_risk_score"]["estimate"] == pytest.approx(
        benefit["avoided_per_call"] - alone["avoided_per_call"]
    )
    assert set(output["floors"]) == set(PRIORITY_GROUPS)
    for floor in output["floors"].values():
        assert set(floor) == {"share", "floor", "met"}
        assert 0 <= floor["share"] <= 1
        assert floor["met"] is (floor["share"] + 1e-12 >= floor["floor"])
    assert output["settings"]["repeats"] == 2
    assert output["settings"]["heterogeneous_effects"] is True


def test_a_single_repeat_has_no_interval_and_still_prints_valid_json(runner: CliRunner) -> None:
    as_json = runner.invoke(app, [*TINY, "--repeats", "1", "--json"])
    human = runner.invoke(app, [*TINY, "--repeats", "1"])

    assert as_json.exit_code == 0, as_json.output
    output = _strict_json(as_json.stdout)
    assert output["policies"]["risk"]["ci_low"] is None
    assert output["difference"]["ci_high"] is None
    assert human.exit_code == 0, human.output
    assert "DNAs avoided per call (95% CI n/a to n/a)" in human.stdout


def test_when_calls_help_everyone_alike_the_benefit_policy_is_not_worse(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trial big enough for the benefit model to pass the switching rule in a short history:
    # half the patients held out, 5 navigators.
    for name, value in {
        "CALLS_HOLDOUT_SHARE": "0.5",
        "CALLS_NAVIGATORS_ON_DUTY": "5",
        "TARGETING_MIN_HOLDOUT_OUTCOMES": "100",
        "TARGETING_BOOTSTRAP_REPLICATES": "100",
    }.items():
        monkeypatch.setenv(f"NAVIGATOR_{name}", value)
    arguments = ["simulate", "targeting", "--weeks", "2", "--history-weeks", "12"]

    result = runner.invoke(app, [*arguments, "--repeats", "3", "--homogeneous", "--json"])

    assert result.exit_code == 0, result.output
    output = _strict_json(result.stdout)
    assert output["settings"]["heterogeneous_effects"] is False
    assert output["benefit_model"]["switched_repeats"] >= 1  # the rule let the queue switch
    # Not worse than the queue's risk policy beyond noise, whether always on or as the
    # switching rule ran it.
    assert output["difference"]["ci_high"] >= 0
    assert output["difference_switching_rule"]["ci_high"] >= 0
    assert all(floor["met"] for floor in output["floors"].values())


def test_too_small_a_simulation_is_refused_plainly(runner: CliRunner) -> None:
    result = runner.invoke(app, ["simulate", "targeting", "--repeats", "0", "--json"])
    history = runner.invoke(app, ["simulate", "targeting", "--history-weeks", "2"])

    assert result.exit_code == 1
    assert "at least 1 programme week, 4 history weeks and 1 repeat" in result.output
    assert history.exit_code == 1
