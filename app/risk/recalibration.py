"""Per-group intercept recalibration: evaluated at every training, applied only when it helps.

A model can rank well overall and still predict too little risk for one group (DOMAIN.md
section 8: a vendor model under-predicted Black patients' no-shows), so their calls are ranked
too low. Recalibration adds one logit offset per group of one attribute (the setting
`risk_group_recalibration_attribute`, default ethnic group) so that the group's mean predicted
risk matches what it really did, shrunk towards no offset for small groups.

It is evaluated as it would be used: offsets fitted on the calibration period, judged on the
test period that nothing saw. It "helps" when, on the test period, the groups' mean absolute
observed-minus-predicted gap falls, the Brier score does not rise and AUROC does not fall by
more than `MAX_AUROC_LOSS`. The card shows the evaluation either way. Only when the setting
`risk_group_recalibration` is on *and* it helped are offsets refitted on the latest slice and
stored in the deployed artefact; otherwise scores are left alone. Offsets use the attribute as
currently recorded for the patient; with ethnicity this makes ethnicity an input of the score,
which is why it is off by default and a trust's choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.metrics import brier_score_loss, roc_auc_score

from app.risk.evaluation import MIN_GROUP_ROWS, calibration_intercept_slope

FloatArray = npt.NDArray[np.float64]
Labels = npt.NDArray[np.object_]
# Offsets are shrunk by n / (n + SHRINK_ROWS): a group of 100 keeps a third of its own.
SHRINK_ROWS = 200
MAX_AUROC_LOSS = 0.002


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=float)


def fit_offsets(y: FloatArray, p: FloatArray, labels: Labels) -> dict[str, float]:
    """One logit offset per group: calibration-in-the-large of the group, shrunk."""
    offsets: dict[str, float] = {}
    for label in sorted({str(v) for v in labels}):
        chosen = labels == label
        rows = int(chosen.sum())
        group_y = y[chosen]
        if rows < MIN_GROUP_ROWS or not 0 < group_y.sum() < rows:
            continue
        intercept, _slope = calibration_intercept_slope(group_y, p[chosen])
        offsets[label] = float(intercept * rows / (rows + SHRINK_ROWS))
    return offsets


def apply_offsets(p: FloatArray, labels: Labels, offsets: dict[str, float]) -> FloatArray:
    if not offsets:
        return p
    shift = np.array([offsets.get(str(label), 0.0) for label in labels], dtype=float)
    return np.asarray(expit(_logit(p) + shift), dtype=float)


def _group_gap(y: FloatArray, p: FloatArray, labels: Labels) -> dict[str, float]:
    """Mean and largest absolute observed-minus-predicted over groups of at least
    `MIN_GROUP_ROWS` appointments."""
    gaps = [
        abs(float(y[labels == label].mean() - p[labels == label].mean()))
        for label in {str(v) for v in labels}
        if (labels == label).sum() >= MIN_GROUP_ROWS
    ]
    return {
        "mean_absolute_gap": float(np.mean(gaps)) if gaps else float("nan"),
        "largest_gap": float(np.max(gaps)) if gaps else float("nan"),
    }


def _scores(y: FloatArray, p: FloatArray, labels: Labels) -> dict[str, float]:
    both = 0 < y.sum() < len(y)
    return {
        "auroc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        **_group_gap(y, p, labels),
    }


def evaluate(
    attribute: str,
    calibration: tuple[FloatArray, FloatArray, Labels],
    test: tuple[FloatArray, FloatArray, Labels],
) -> dict[str, Any]:
    """Offsets fitted on the calibration period (y, p, labels), judged on the test period."""
    offsets = fit_offsets(*calibration)
    y, p, labels = test
    before = _scores(y, p, labels)
    after = _scores(y, apply_offsets(p, labels, offsets), labels)
    helps = bool(
        after["mean_absolute_gap"] < before["mean_absolute_gap"]
        and after["brier"] <= before["brier"]
        and after["auroc"] >= before["auroc"] - MAX_AUROC_LOSS
    )
    return {
        "attribute": attribute,
        "offsets_from_calibration_period": offsets,
        "test_before": before,
        "test_after": after,
        "helps": helps,
    }


def verdict(evaluation: dict[str, Any], setting_on: bool, applied: bool) -> str:
    """The card's sentence about per-group recalibration."""
    before, after = evaluation["test_before"], evaluation["test_after"]
    figures = (
        f"on the test period it moved the groups' mean absolute gap between observed and "
        f"predicted DNA rates from {before['mean_absolute_gap'] * 100:.2f} to "
        f"{after['mean_absolute_gap'] * 100:.2f} points (AUROC {before['auroc']:.3f} to "
        f"{after['auroc']:.3f}, Brier {before['brier']:.4f} to {after['brier']:.4f})"
    )
    who = evaluation["attribute"].replace("_", " ")
    if applied:
        return f"Per-group recalibration by {who} is on and applied: {figures}."
    if setting_on:
        return (
            f"Per-group recalibration by {who} is switched on but not applied, because it did "
            f"not help: {figures}."
        )
    helped = "would help" if evaluation["helps"] else "would not help"
    return f"Per-group recalibration by {who} is off (the default); it {helped}: {figures}."
