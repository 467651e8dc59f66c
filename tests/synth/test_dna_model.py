"""The generative DNA model: each DOMAIN.md effect points the right way at the right size."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from app.synth.dna_model import ADDITIVE_MODEL, DEFAULT_MODEL, DnaModel, dna_probability
from app.synth.service import write_trust
from tests.clock import TODAY

N = 1_000


def _probability(**overrides: object) -> float:
    """Mean probability for N identical appointments, varying only the overridden inputs."""
    model: DnaModel = DEFAULT_MODEL
    inputs: dict[str, object] = {
        "first_appointment": np.zeros(N, dtype=bool),
        "specialty_effect": model.specialty_effect(np.full(N, "330")),
        "imd_decile": np.full(N, 5),
        "age_years": np.full(N, 45.0),
        "male": np.zeros(N, dtype=bool),
        "lead_days": np.full(N, 28.0),
        "prior_dnas": np.zeros(N, dtype=np.int64),
        "interpreter_needed": np.zeros(N, dtype=bool),
        "communication_need": np.zeros(N, dtype=bool),
        "learning_disability": np.zeros(N, dtype=bool),
        "ethnic_group_effect": model.ethnic_group_effect(np.full(N, "White")),
        "latent_propensity": np.zeros(N),
    }
    for key, value in overrides.items():
        inputs[key] = np.full(N, value) if np.isscalar(value) else value
    return float(dna_probability(model, **inputs).mean())  # type: ignore[arg-type]


def test_each_effect_points_the_way_domain_md_says() -> None:
    base = _probability()
    assert _probability(first_appointment=True) > base
    assert _probability(specialty_effect=DEFAULT_MODEL.specialty["340"]) > base
    assert 1.35 < _probability(imd_decile=1) / _probability(imd_decile=10) < 1.7
    assert _probability(age_years=25.0) > base > _probability(age_years=70.0)
    assert _probability(male=True) > base
    assert _probability(lead_days=90.0) > base > _probability(lead_days=3.0)
    assert _probability(interpreter_needed=True) > base
    assert _probability(communication_need=True) > base
    assert _probability(learning_disability=True) > base
    # Earlier DNAs are the strongest single predictor.
    prior = _probability(prior_dnas=1) / base
    for other in (
        _probability(first_appointment=True),
        _probability(age_years=25.0),
        _probability(interpreter_needed=True),
        _probability(lead_days=90.0),
    ):
        assert prior > other / base


def test_contacts_multiply_the_risk_by_their_true_relative_risks() -> None:
    base = _probability()
    called = _probability(navigator_call_reached=np.ones(N, dtype=bool))
    texted = _probability(sms_reminder=np.ones(N, dtype=bool))
    assert called / base == pytest.approx(0.70)
    assert texted / base == pytest.approx(0.95)


@pytest.mark.slow
def test_realised_rates_on_a_moderate_trust_match_domain_md(tmp_path: Path) -> None:
    summary = write_trust(tmp_path, patients=30_000, weeks_history=52, weeks_ahead=3,
                          catchment="leicester", seed=11, today=TODAY)  # fmt: skip

    assert 0.06 <= summary.dna_rate <= 0.085
    assert summary.dna_rate_first > summary.dna_rate_follow_up
    assert 0.085 <= summary.dna_rate_respiratory <= 0.13
    deciles = summary.by_imd_decile
    most = (deciles["1"]["dna_rate"] + deciles["2"]["dna_rate"]) / 2
    least = (deciles["9"]["dna_rate"] + deciles["10"]["dna_rate"]) / 2
    assert 1.2 < most / least < 1.9
    groups = summary.by_ethnic_group
    assert groups["Black or Black British"]["dna_rate"] > groups["White"]["dna_rate"]
    assert groups["99"]["appointments"] > 0


def _odds_with(model: DnaModel, **overrides: object) -> float:
    inputs: dict[str, object] = {
        "first_appointment": np.zeros(N, dtype=bool),
        "specialty_effect": model.specialty_effect(np.full(N, "330")),
        "imd_decile": np.full(N, 5),
        "age_years": np.full(N, 45.0),
        "male": np.zeros(N, dtype=bool),
        "lead_days": np.full(N, 28.0),
        "prior_dnas": np.zeros(N, dtype=np.int64),
        "interpreter_needed": np.zeros(N, dtype=bool),
        "communication_need": np.zeros(N, dtype=bool),
        "learning_disability": np.zeros(N, dtype=bool),
        "ethnic_group_effect": model.ethnic_group_effect(np.full(N, "White")),
        "latent_propensity": np.zeros(N),
    }
    for key, value in overrides.items():
        inputs[key] = np.full(N, value) if np.isscalar(value) else value
    p = float(dna_probability(model, **inputs).mean())  # type: ignore[arg-type]
    return p / (1 - p)


@pytest.mark.parametrize(("model", "interacts"), [(DEFAULT_MODEL, True), (ADDITIVE_MODEL, False)])
def test_the_documented_interactions_are_non_additive_and_switch_off(
    model: DnaModel, interacts: bool
) -> None:
    """Each interaction changes one factor's odds ratio with another factor's level; the
    additive model's odds ratios do not depend on the other factor."""

    def ratio(change: Mapping[str, object], at: Mapping[str, object]) -> float:
        return _odds_with(model, **change, **at) / _odds_with(model, **at)

    def differs(a: float, b: float) -> bool:
        return abs(math.log(a) - math.log(b)) > 0.1

    # Lead time matters more for first appointments than for follow-ups.
    long_wait = {"lead_days": 120.0}
    first = ratio(long_wait, {"first_appointment": np.ones(N, dtype=bool)})
    follow_up = ratio(long_wait, {})
    assert differs(first, follow_up) is interacts
    assert (first > follow_up) or not interacts
    # Deprivation weighs more in respiratory medicine than in cardiology.
    deprived = {"imd_decile": 1}
    respiratory = ratio(deprived, {"deprivation_slope": model.deprivation_slope(np.full(N, "340"))})
    cardiology = ratio(deprived, {"deprivation_slope": model.deprivation_slope(np.full(N, "320"))})
    assert differs(respiratory, cardiology) is interacts
    # Young adults miss Mondays more than Wednesdays; older patients do not.
    monday = {"weekday": np.zeros(N, dtype=np.int64)}
    wednesday = {"weekday": np.full(N, 2, dtype=np.int64)}
    young_monday = _odds_with(model, age_years=25.0, **monday)
    young_wednesday = _odds_with(model, age_years=25.0, **wednesday)
    old_monday = _odds_with(model, age_years=70.0, **monday)
    old_wednesday = _odds_with(model, age_years=70.0, **wednesday)
    assert differs(young_monday / young_wednesday, old_monday / old_wednesday) is interacts
