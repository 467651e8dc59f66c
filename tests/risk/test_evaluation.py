"""Evaluation metrics agree with scikit-learn and behave as their definitions say."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from app.risk.evaluation import (
    _weighted_auroc,
    bootstrap_intervals,
    calibration_intercept_slope,
    fairness_table,
    paired_differences,
    summary_metrics,
)


def _calibrated_sample(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-2.5, 0.8, rows)))
    y = (rng.random(rows) < p).astype(float)
    return y, p


def test_weighted_auroc_with_unit_weights_is_the_usual_auroc() -> None:
    y, p = _calibrated_sample(2_000)
    p = np.round(p, 2)  # ties are counted as one half, as scikit-learn does
    assert np.isclose(_weighted_auroc(y, p, np.ones((1, len(y))))[0], roc_auc_score(y, p))


def test_calibrated_scores_have_slope_near_one_and_overconfident_ones_below() -> None:
    y, p = _calibrated_sample(50_000)
    intercept, slope = calibration_intercept_slope(y, p)
    assert abs(slope - 1) < 0.05
    assert abs(intercept) < 0.05
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-(2 * logit + 2.5)))
    assert calibration_intercept_slope(y, overconfident)[1] < 0.6


def test_capture_and_intervals() -> None:
    y, p = _calibrated_sample(5_000)
    metrics = summary_metrics(y, p)
    assert 0.1 < metrics["capture"]["top_10"] < metrics["capture"]["top_20"] < 1
    intervals = bootstrap_intervals(y, p, np.random.default_rng(0), replicates=100)
    low, high = intervals["auroc"]
    assert low < metrics["auroc"] < high


def test_fairness_flags_a_group_the_model_cannot_rank() -> None:
    y, p = _calibrated_sample(6_000)
    groups = np.where(np.arange(len(y)) % 2 == 0, "A", "B").astype(object)
    noisy = p.copy()
    noisy[groups == "B"] = np.random.default_rng(1).permutation(p[groups == "B"])
    table = fairness_table(
        y, noisy, {"sex": groups, "tiny": np.array(["x"] * len(y), object)}, gap_limit=0.05
    )
    assert table["sex"]["gap_flagged"]
    assert table["sex"]["gap_beyond_noise"]
    assert not table["tiny"]["gap_flagged"]


def test_paired_differences_separate_a_better_score_from_an_identical_one() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(4_000) < 0.1).astype(float)
    noise = rng.normal(0, 1, 4_000)
    better = y + noise * 0.8
    worse = y + noise * 0.8 + rng.normal(0, 1.5, 4_000)
    result = paired_differences(
        y, better, {"same": better.copy(), "worse": worse}, np.random.default_rng(0), replicates=40
    )
    assert result["same"]["auroc_difference"] == 0.0
    assert result["same"]["auroc_difference_ci"] == [0.0, 0.0]
    assert result["worse"]["auroc_difference_ci"][0] > 0
    assert result["worse"]["average_precision_difference_ci"][0] > 0
    assert result["worse"]["replicates"] == 40
