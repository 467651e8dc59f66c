"""The benefit model on its own: it learns from the randomised contrast who a call helps, and
refuses a model file it cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.risk.artefacts import TamperedArtefactError, sha256_of
from app.targeting.uplift import (
    FEATURES,
    PENALTY_GRID,
    fit_benefit_model,
    load_benefit_artefact,
    save_benefit_artefact,
)


def _trial(rows: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Randomised rows in which a call halves the DNA risk six weeks or more ahead and does
    nothing nearer the day."""
    rng = np.random.default_rng(seed)
    features = np.zeros((rows, len(FEATURES)))
    column = {name: index for index, name in enumerate(FEATURES)}
    risk = rng.uniform(0.1, 0.5, rows)
    lead = rng.choice([10.0, 30.0, 60.0], rows)
    features[:, column["risk"]] = risk
    features[:, column["lead_time_days"]] = lead
    features[:, column["imd_decile"]] = rng.integers(1, 11, rows)
    features[:, column["age_years"]] = rng.integers(18, 90, rows)
    called = rng.random(rows) < 0.8
    probability = np.where(called & (lead >= 42), risk * 0.5, risk)
    dna = rng.random(rows) < probability
    day = np.arange(rows) // 20
    return features, called, dna, day


def test_the_model_finds_whom_the_call_helps() -> None:
    features, called, dna, day = _trial(8000)

    model = fit_benefit_model(features, called, dna, version="test", day=day)

    coefficients = model.coefficients()
    assert coefficients["lead time 6 weeks or more"] < -0.4
    assert model.penalty in PENALTY_GRID
    # Two appointments alike but for the lead time: the call is worth more six weeks ahead.
    pair = features[:2].copy()
    pair[:, FEATURES.index("risk")] = 0.3
    pair[0, FEATURES.index("lead_time_days")] = 60.0
    pair[1, FEATURES.index("lead_time_days")] = 10.0
    far, near = model.benefit(pair)
    assert far > 0.1
    assert far > 3 * max(near, 0.0)


def test_an_unscored_appointment_gets_a_benefit_from_the_typical_risk() -> None:
    features, called, dna, day = _trial(4000)
    model = fit_benefit_model(features, called, dna, version="test", day=day)
    row = features[:1].copy()
    row[0, FEATURES.index("risk")] = np.nan
    row[0, FEATURES.index("lead_time_days")] = 60.0

    (benefit,) = model.benefit(row)

    assert np.isfinite(benefit)
    assert benefit > 0


def test_a_saved_model_loads_back_and_a_file_it_cannot_read_is_refused(tmp_path: Path) -> None:
    features, called, dna, day = _trial(4000)
    model = fit_benefit_model(features, called, dna, version="test", day=day)
    path, sha256 = save_benefit_artefact(model, tmp_path / "v1")

    loaded = load_benefit_artefact(path, sha256)

    assert np.allclose(loaded.benefit(features[:50]), model.benefit(features[:50]))
    # An earlier version's binary file (or anything else), recorded with its own SHA-256.
    other = tmp_path / "old.skops"
    other.write_bytes(b"PK\x03\x04 not a benefit model")
    with pytest.raises(TamperedArtefactError, match="retrain it"):
        load_benefit_artefact(other, sha256_of(other))
