"""Which features carry information, and which gradient-boosting settings to deploy.

Real extracts differ: some send no specialty, no first-attendance flag or no LSOA, some have
one clinic, some six weeks of history. A feature that is missing for every row or takes one
value carries no information (and a column with no values at all crashes the binning of
`HistGradientBoostingClassifier`), so it is dropped before fitting and the card says why.

Settings are chosen from `GRID` by rolling temporal validation inside the training window:
each fold fits on the appointments before it and is scored on the next slice, as the model
will be used (fitted on the past, scoring the future). The grid is small on purpose: one
constrained shape that suits additive data and first trusts, and larger trees for trusts whose
DNAs depend on combinations of factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Settings shared by every candidate: early stopping on the last tenth of the fitting rows.
COMMON: dict[str, Any] = {
    "max_iter": 400,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
    "random_state": 0,
}
# The documented grid. "constrained" is the original model (tiny trees, monotonic constraints
# from DOMAIN.md section 4); the others grow trees large enough to learn interactions such as
# lead time with first attendance or deprivation with specialty.
GRID: dict[str, dict[str, Any]] = {
    "constrained": {
        "learning_rate": 0.05,
        "max_leaf_nodes": 7,
        "min_samples_leaf": 50,
        "l2_regularization": 1.0,
        "monotonic": True,
    },
    "medium": {
        "learning_rate": 0.08,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
        "monotonic": False,
    },
    "large": {
        "learning_rate": 0.08,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 80,
        "l2_regularization": 1.0,
        "monotonic": False,
    },
    "large_monotonic": {
        "learning_rate": 0.08,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 80,
        "l2_regularization": 1.0,
        "monotonic": True,
    },
}
# Domain knowledge as constraints (DOMAIN.md section 4): more and more recent missed
# appointments, a clinic's higher DNA rate and a longer lead time never lower the risk.
MONOTONIC: dict[str, int] = {
    "n_prior_dna": 1,
    "prior_dna_rate": 1,
    "shrunk_prior_dna_rate": 1,
    "dna_last_4": 1,
    "clinic_dna_rate": 1,
    "days_since_last_dna": -1,
    "lead_time_days": 1,
}
SELECTION_FOLDS = 2
# Each fold fits on at most this many rows (the latest before the fold): selection compares
# settings, and on a million appointments a sample ranks them as well as every row does. At
# 100,000 selection was half of training's CPU time on 200,000 appointments (84 of 168 CPU
# seconds, scripts/bench_risk.py, 3 December 2026) and pushed 1,000,000 past the 180 s target.
SELECTION_MAX_FIT_ROWS = 40_000
MIN_FOLD_ROWS = 200


@dataclass
class FeatureChoice:
    used: list[str]
    dropped: dict[str, str]  # feature -> why it was dropped


def informative_features(
    features: FloatArray, names: list[str], rows: IntArray, *, always_drop: dict[str, str]
) -> FeatureChoice:
    """The features that vary over `rows`; the others with the reason each was dropped."""
    used: list[str] = []
    dropped: dict[str, str] = dict(always_drop)
    for column, name in enumerate(names):
        if name in dropped:
            continue
        values = features[rows, column]
        known = values[~np.isnan(values)]
        if len(known) == 0:
            dropped[name] = "missing for every appointment in the extract"
        elif np.all(known == known[0]) and len(known) == len(values):
            dropped[name] = f"the same value ({known[0]:g}) for every appointment"
        else:
            used.append(name)
    return FeatureChoice(used=used, dropped=dropped)


def make_classifier(
    setting: dict[str, Any], names: list[str], categorical: list[bool], **overrides: Any
) -> HistGradientBoostingClassifier:
    params = {key: value for key, value in setting.items() if key != "monotonic"}
    monotonic = [MONOTONIC.get(name, 0) for name in names] if setting["monotonic"] else None
    return HistGradientBoostingClassifier(
        categorical_features=categorical if any(categorical) else None,
        monotonic_cst=monotonic,
        **{**COMMON, **params, **overrides},
    )


def rolling_folds(start_s: IntArray, rows: IntArray, folds: int) -> list[tuple[IntArray, IntArray]]:
    """(fit, validate) pairs: the last `folds` equal slices of `rows` by time, each validated
    by a model fitted on everything before it."""
    order = rows[np.argsort(start_s[rows], kind="stable")]
    slices = np.array_split(order[len(order) // 2 :], folds)
    result = []
    for validate in slices:
        if len(validate) == 0:
            continue
        fit = order[start_s[order] < start_s[validate].min()]
        if len(fit) >= MIN_FOLD_ROWS:
            result.append((fit[-SELECTION_MAX_FIT_ROWS:], validate))
    return result


def _auroc_ap(y: FloatArray, p: FloatArray) -> tuple[float, float]:
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


@dataclass
class Selection:
    chosen: str
    scores: dict[str, dict[str, Any]]
    folds: int
    # The last fold's validation rows and the chosen setting's scores on them, so simpler
    # scorers can be compared on the same appointments.
    last_validation: IntArray
    last_scores: FloatArray
    last_fit: IntArray


def select_setting(
    features: FloatArray,
    y: FloatArray,
    start_s: IntArray,
    rows: IntArray,
    names: list[str],
    categorical: list[bool],
) -> Selection:
    """Mean AUROC over rolling folds of each grid setting; the best mean wins (average
    precision breaks ties). With too little history for folds, the constrained setting."""
    folds = rolling_folds(start_s, rows, SELECTION_FOLDS)
    usable = [(fit, val) for fit, val in folds if 0 < y[fit].sum() < len(fit)]
    scores: dict[str, dict[str, Any]] = {}
    predictions: dict[str, FloatArray] = {}
    for name, setting in GRID.items():
        aurocs, aps = [], []
        for fold, (fit, validate) in enumerate(usable):
            model = make_classifier(setting, names, categorical).fit(features[fit], y[fit])
            p = np.asarray(model.predict_proba(features[validate])[:, 1], dtype=float)
            auroc, ap = _auroc_ap(y[validate], p)
            aurocs.append(auroc)
            aps.append(ap)
            if fold == len(usable) - 1:
                predictions[name] = p
        scores[name] = {
            **setting,
            "fold_auroc": aurocs,
            "fold_average_precision": aps,
            "mean_auroc": float(np.nanmean(aurocs)) if aurocs else float("nan"),
            "mean_average_precision": float(np.nanmean(aps)) if aps else float("nan"),
        }
    ranked = [
        name for name in GRID if np.isfinite(scores[name]["mean_auroc"])
    ]  # keeps grid order on ties
    chosen = (
        max(
            ranked,
            key=lambda n: (
                round(scores[n]["mean_auroc"], 4),
                scores[n]["mean_average_precision"],
            ),
        )
        if ranked
        else "constrained"
    )
    last_fit, last_validation = usable[-1] if usable else (rows[:0], rows[:0])
    return Selection(
        chosen=chosen,
        scores=scores,
        folds=len(usable),
        last_validation=last_validation,
        last_scores=predictions.get(chosen, np.zeros(len(last_validation))),
        last_fit=last_fit,
    )
