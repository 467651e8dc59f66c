"""Evaluation of risk scores: discrimination, calibration, capture, and fairness by group.

Bootstrap confidence intervals use Poisson weights so one matrix operation evaluates every
replicate; groups larger than `MAX_BOOTSTRAP_ROWS` are subsampled, which bounds the cost
however large the test period is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.special import expit
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from app.reference.codes import AGE_BANDS, SEXES, ethnic_group
from app.risk.features import AppointmentHistory

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CAPTURE_SHARES = (0.1, 0.2, 0.3)
RELIABILITY_BINS = 10
BOOTSTRAP_REPLICATES = 200
MAX_BOOTSTRAP_ROWS = 20_000
MIN_GROUP_ROWS = 30


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=float)


def calibration_intercept_slope(y: FloatArray, p: FloatArray) -> tuple[float, float]:
    """Calibration-in-the-large (intercept with the slope fixed at 1) and calibration slope.

    Both from logistic regressions of the outcome on logit(p), fitted by Newton's method.
    """
    x = _logit(p)
    intercept = 0.0
    for _ in range(50):
        mu = expit(intercept + x)
        gradient = np.sum(y - mu)
        hessian = np.sum(mu * (1 - mu)) + 1e-12
        step = gradient / hessian
        intercept += step
        if abs(step) < 1e-10:
            break
    _constant, slope = logistic_fit(x, y)
    return float(intercept), slope


def logistic_fit(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    """Intercept and slope of a one-variable logistic regression (Newton's method)."""
    beta = np.zeros(2)
    design = np.column_stack([np.ones_like(x), x])
    for _ in range(50):
        mu = expit(design @ beta)
        gradient = design.T @ (y - mu)
        hessian = (design * (mu * (1 - mu))[:, None]).T @ design + np.eye(2) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def reliability_curve(
    y: FloatArray, p: FloatArray, bins: int = RELIABILITY_BINS
) -> list[dict[str, float]]:
    """Mean predicted against observed DNA rate in equal-count bins of predicted risk."""
    order = np.argsort(p, kind="stable")
    curve = []
    for chunk in np.array_split(order, bins):
        if len(chunk) == 0:
            continue
        curve.append(
            {
                "predicted": float(np.mean(p[chunk])),
                "observed": float(np.mean(y[chunk])),
                "count": len(chunk),
            }
        )
    return curve


def capture_at(y: FloatArray, p: FloatArray, threshold: float) -> float:
    """Share of all DNAs among the appointments at or above a risk threshold."""
    total = float(np.sum(y))
    return float(np.sum(y[p >= threshold]) / total) if total else float("nan")


def top_share_thresholds(p: FloatArray) -> dict[str, float]:
    return {
        f"top_{round(share * 100)}": float(np.quantile(p, 1 - share)) for share in CAPTURE_SHARES
    }


def summary_metrics(y: FloatArray, p: FloatArray) -> dict[str, Any]:
    """The headline metrics of scores `p` against outcomes `y` (1 = DNA)."""
    both_classes = 0 < np.sum(y) < len(y)
    intercept, slope = calibration_intercept_slope(y, p) if both_classes else (np.nan, np.nan)
    thresholds = top_share_thresholds(p) if len(p) else {}
    return {
        "rows": len(y),
        "dna_rate": float(np.mean(y)) if len(y) else float("nan"),
        "mean_risk": float(np.mean(p)) if len(p) else float("nan"),
        "auroc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "calibration_intercept": intercept,
        "calibration_slope": slope,
        "capture": {name: capture_at(y, p, t) for name, t in thresholds.items()},
    }


def _weighted_auroc(y: FloatArray, p: FloatArray, weights: FloatArray) -> FloatArray:
    """AUROC of each row of `weights` (replicates x rows), ties counted as one half."""
    unique, inverse = np.unique(p, return_inverse=True)
    # rows x distinct scores indicator: weights @ indicator sums the weights per score.
    indicator = sparse.csr_matrix(
        (np.ones(len(p)), (np.arange(len(p)), inverse)), shape=(len(p), len(unique))
    )
    positives = np.asarray((indicator[y == 1].T @ weights[:, y == 1].T).T)
    negatives = np.asarray((indicator[y == 0].T @ weights[:, y == 0].T).T)
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    concordant = np.sum(positives * (negatives_below + 0.5 * negatives), axis=1)
    total = positives.sum(axis=1) * negatives.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, concordant / total, np.nan)


def bootstrap_intervals(
    y: FloatArray, p: FloatArray, rng: np.random.Generator, replicates: int = BOOTSTRAP_REPLICATES
) -> dict[str, list[float]]:
    """95% percentile intervals of AUROC, Brier and observed/expected, by Poisson bootstrap."""
    if len(y) > MAX_BOOTSTRAP_ROWS:
        keep = rng.choice(len(y), MAX_BOOTSTRAP_ROWS, replace=False)
        y, p = y[keep], p[keep]
    weights = rng.poisson(1.0, size=(replicates, len(y))).astype(float)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = (weights @ (p - y) ** 2) / total
        observed_expected = (weights @ y) / (weights @ p)
    auroc = _weighted_auroc(y, p, weights)

    def interval(values: FloatArray) -> list[float]:
        finite = values[np.isfinite(values)]
        if len(finite) < replicates // 2:
            return [float("nan"), float("nan")]
        return [float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))]

    return {
        "auroc": interval(auroc),
        "brier": interval(brier),
        "observed_expected": interval(observed_expected),
    }


def _weighted_auroc_ap(
    y: FloatArray, p: FloatArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """AUROC and average precision of each row of `weights` (replicates x rows)."""
    unique, inverse = np.unique(p, return_inverse=True)
    indicator = sparse.csr_matrix(
        (np.ones(len(p)), (np.arange(len(p)), inverse)), shape=(len(p), len(unique))
    )
    positives = np.asarray((indicator[y == 1].T @ weights[:, y == 1].T).T)
    negatives = np.asarray((indicator[y == 0].T @ weights[:, y == 0].T).T)
    negatives_below = np.cumsum(negatives, axis=1) - negatives
    concordant = np.sum(positives * (negatives_below + 0.5 * negatives), axis=1)
    total_positive = positives.sum(axis=1)
    total = total_positive * negatives.sum(axis=1)
    # Average precision: thresholds from the highest score down, as sklearn steps them.
    true_above = np.cumsum(positives[:, ::-1], axis=1)
    all_above = true_above + np.cumsum(negatives[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(all_above > 0, true_above / all_above, 0.0)
        ap = np.sum(positives[:, ::-1] * precision, axis=1) / total_positive
        auroc = np.where(total > 0, concordant / total, np.nan)
    return auroc, ap


def paired_differences(
    y: FloatArray,
    model: FloatArray,
    others: dict[str, FloatArray],
    rng: np.random.Generator,
    replicates: int = BOOTSTRAP_REPLICATES,
    max_rows: int = 100_000,
    chunk: int = 20,
) -> dict[str, dict[str, Any]]:
    """Model minus each other score in AUROC and AP, with paired 95% bootstrap intervals.

    Paired: every replicate reweights the same appointments for the model and the other
    score, so the interval is of the difference itself (much narrower than two separate
    intervals when the scores agree on most appointments).
    """
    # Point differences on every row; only the intervals come from a subsample when large.
    points = {
        name: (
            float(roc_auc_score(y, model) - roc_auc_score(y, other)),
            float(average_precision_score(y, model) - average_precision_score(y, other)),
        )
        for name, other in others.items()
    }
    if len(y) > max_rows:
        keep = rng.choice(len(y), max_rows, replace=False)
        y, model = y[keep], model[keep]
        others = {name: values[keep] for name, values in others.items()}
    results: dict[str, dict[str, Any]] = {}
    draws = [
        rng.poisson(1.0, size=(chunk, len(y))).astype(float) for _ in range(replicates // chunk)
    ]
    model_replicates = [_weighted_auroc_ap(y, model, weights) for weights in draws]
    model_auroc = np.concatenate([auroc for auroc, _ in model_replicates])
    model_ap = np.concatenate([ap for _, ap in model_replicates])
    for name, other in others.items():
        other_replicates = [_weighted_auroc_ap(y, other, weights) for weights in draws]
        auroc_diff = model_auroc - np.concatenate([auroc for auroc, _ in other_replicates])
        ap_diff = model_ap - np.concatenate([ap for _, ap in other_replicates])
        results[name] = {
            "auroc_difference": points[name][0],
            "auroc_difference_ci": [
                float(np.nanquantile(auroc_diff, 0.025)),
                float(np.nanquantile(auroc_diff, 0.975)),
            ],
            "average_precision_difference": points[name][1],
            "average_precision_difference_ci": [
                float(np.nanquantile(ap_diff, 0.025)),
                float(np.nanquantile(ap_diff, 0.975)),
            ],
            "bootstrap_rows": len(y),
            "replicates": len(auroc_diff),
        }
    return results


def group_labels(attributes: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[np.object_]]:
    """Fairness grouping of each test row: ethnic group, IMD quintile, Core20, age band, sex."""
    decile = attributes["imd_decile"]
    quintile = np.array(
        ["Not known" if np.isnan(d) else f"Q{int((d + 1) // 2)}" for d in decile], dtype=object
    )
    core20 = np.where(attributes["core20"], "Core20", "Not Core20").astype(object)
    age = attributes["age_band"]
    age_labels = np.array(
        ["Not known" if np.isnan(a) else AGE_BANDS[int(a)][2] for a in age], dtype=object
    )
    sex = np.array([SEXES.get(str(s), "Not known") for s in attributes["sex"]], dtype=object)
    return {
        "ethnic_group": np.asarray(attributes["ethnic_group"], dtype=object),
        "imd_quintile": quintile,
        "core20": core20,
        "age_band": age_labels,
        "sex": sex,
    }


def need_labels(history: AppointmentHistory, patient: IntArray) -> npt.NDArray[np.object_]:
    labels = np.full(len(patient), "no recorded need", dtype=object)
    needs = history.communication_needs[patient]
    labels[np.array([bool(n) for n in needs], dtype=bool)] = "a communication need"
    labels[history.learning_disability[patient]] = "a learning disability"
    labels[history.interpreter_needed[patient]] = "an interpreter"
    return labels


def audit_groups(
    history: AppointmentHistory, rows: IntArray, age_band: FloatArray, *, need: bool = True
) -> dict[str, npt.NDArray[np.object_]]:
    """The audit group of each appointment `rows` (positions in `history`) by ethnic group, IMD
    quintile, Core20, age band, sex and (with `need`) need; `age_band` is the feature column."""
    patient = history.patient[rows]
    groups = group_labels(
        {
            "imd_decile": history.imd_decile[patient],
            "core20": history.core20[patient],
            "age_band": age_band,
            "sex": history.sex[patient],
            "ethnic_group": np.array(
                [ethnic_group(str(c)) for c in history.ethnic_category[patient]], dtype=object
            ),
        }
    )
    if need:
        groups["need"] = need_labels(history, patient)
    return groups


def fairness_table(
    y: FloatArray,
    p: FloatArray,
    groups: dict[str, npt.NDArray[np.object_]],
    *,
    gap_limit: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics with 95% CIs per group of each attribute, and the best-worst AUROC gap.

    Groups are never dropped: small ones are listed with their counts and no metrics, so
    missing ethnicity recording (Z, 99) stays visible as a data-quality signal.
    """
    rng = np.random.default_rng(seed)
    thresholds = top_share_thresholds(p) if len(p) else {"top_20": 1.0}
    table: dict[str, Any] = {}
    for attribute, labels in groups.items():
        rows = []
        for label in sorted({str(v) for v in labels}):
            mask = labels == label
            group_y, group_p = y[mask], p[mask]
            row: dict[str, Any] = {
                "group": label,
                "rows": int(mask.sum()),
                "dnas": int(group_y.sum()),
                "dna_rate": float(group_y.mean()),
                "mean_risk": float(group_p.mean()),
            }
            enough = mask.sum() >= MIN_GROUP_ROWS and 0 < group_y.sum() < mask.sum()
            if enough:
                intercept, slope = calibration_intercept_slope(group_y, group_p)
                row.update(
                    auroc=float(roc_auc_score(group_y, group_p)),
                    average_precision=float(average_precision_score(group_y, group_p)),
                    brier=float(brier_score_loss(group_y, group_p)),
                    calibration_intercept=intercept,
                    calibration_slope=slope,
                    capture_top_20=capture_at(group_y, group_p, thresholds["top_20"]),
                    ci95=bootstrap_intervals(group_y, group_p, rng),
                )
            rows.append(row)
        scored = [row for row in rows if "auroc" in row]
        gap, separated = 0.0, False
        if len(scored) >= 2:
            best = max(scored, key=lambda row: row["auroc"])
            worst = min(scored, key=lambda row: row["auroc"])
            gap = float(best["auroc"] - worst["auroc"])
            # Whether the intervals of best and worst do not even overlap: a gap that small
            # groups alone cannot explain.
            separated = bool(best["ci95"]["auroc"][0] > worst["ci95"]["auroc"][1])
        table[attribute] = {
            "groups": rows,
            "auroc_gap": gap,
            "gap_limit": gap_limit,
            "gap_flagged": gap > gap_limit,
            "gap_beyond_noise": separated,
        }
    return table


# --- where navigators act: the callable population and the day's capacity -------------------


def capture_at_capacity(
    y: FloatArray, p: FloatArray, day: npt.NDArray[np.int64], capacity: int
) -> dict[str, Any]:
    """Share of the window's DNAs among the `capacity` highest-risk appointments of each day.

    This is what the call queue does: each day it calls the top of the list until the
    navigators' capacity is used, so a model is worth what it puts in those places.
    """
    total = float(np.sum(y))
    if capacity <= 0 or len(y) == 0:
        return {"capacity_per_day": capacity, "called": 0, "capture": float("nan")}
    order = np.lexsort((-p, day))
    sorted_day = day[order]
    first_of_day = np.searchsorted(sorted_day, sorted_day, side="left")
    rank = np.arange(len(order)) - first_of_day
    chosen = order[rank < capacity]
    return {
        "capacity_per_day": capacity,
        "called": len(chosen),
        "called_share": len(chosen) / len(y),
        "capture": float(np.sum(y[chosen]) / total) if total else float("nan"),
        "dna_rate_called": float(np.mean(y[chosen])) if len(chosen) else float("nan"),
    }


# --- calibration for every group -------------------------------------------------------------


def group_calibration(
    y: FloatArray,
    p: FloatArray,
    groups: dict[str, npt.NDArray[np.object_]],
    *,
    limit: float,
    rng: np.random.Generator,
    replicates: int = BOOTSTRAP_REPLICATES,
    min_rows: int = MIN_GROUP_ROWS,
) -> dict[str, Any]:
    """Observed minus predicted DNA rate (calibration-in-the-large) and calibration slope per
    group, with 95% bootstrap intervals; a group whose whole interval lies beyond `limit`
    (in probability points) is flagged as under- or over-predicted, in plain words.
    """
    table: dict[str, Any] = {}
    flags: list[dict[str, Any]] = []
    for attribute, labels in groups.items():
        rows = []
        for label in sorted({str(v) for v in labels}):
            index = np.flatnonzero(labels == label)
            group_y, group_p = y[index], p[index]
            row: dict[str, Any] = {
                "group": label,
                "rows": len(index),
                "observed": float(group_y.mean()),
                "predicted": float(group_p.mean()),
                "observed_minus_predicted": float(group_y.mean() - group_p.mean()),
            }
            if len(index) >= min_rows and 0 < group_y.sum() < len(index):
                row.update(_calibration_intervals(group_y, group_p, rng, replicates))
                low, high = row["observed_minus_predicted_ci"]
                if low > limit or high < -limit:
                    direction = "under" if low > limit else "over"
                    row["flag"] = f"{direction}-predicted"
                    row["message"] = _calibration_message(attribute, label, row, direction)
                    flags.append({"attribute": attribute, **row})
            rows.append(row)
        table[attribute] = {"groups": rows}
    return {"limit": limit, "attributes": table, "flags": flags}


def _calibration_intervals(
    y: FloatArray, p: FloatArray, rng: np.random.Generator, replicates: int
) -> dict[str, Any]:
    if len(y) > MAX_BOOTSTRAP_ROWS:
        keep = rng.choice(len(y), MAX_BOOTSTRAP_ROWS, replace=False)
        y, p = y[keep], p[keep]
    weights = rng.poisson(1.0, size=(replicates, len(y))).astype(float)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = (weights @ y - weights @ p) / total
    # Slope on a subset of replicates: each is a small Newton fit.
    slopes = []
    x = _logit(p)
    for weight in weights[: min(replicates, 50)]:
        slopes.append(_weighted_slope(x, y, weight))
    _intercept, slope = logistic_fit(x, y)

    def interval(values: FloatArray) -> list[float]:
        finite = values[np.isfinite(values)]
        if len(finite) < 10:
            return [float("nan"), float("nan")]
        return [float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))]

    return {
        "observed_minus_predicted_ci": interval(difference),
        "calibration_slope": slope,
        "calibration_slope_ci": interval(np.array(slopes, dtype=float)),
    }


def _weighted_slope(x: FloatArray, y: FloatArray, weight: FloatArray) -> float:
    beta = np.zeros(2)
    design = np.column_stack([np.ones_like(x), x])
    for _ in range(30):
        mu = expit(design @ beta)
        gradient = design.T @ (weight * (y - mu))
        hessian = (design * (weight * mu * (1 - mu))[:, None]).T @ design + np.eye(2) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[1])


GROUP_NOUNS = {
    "ethnic_group": "{label} patients",
    "imd_quintile": "patients in IMD quintile {label}",
    "core20": "{label} patients",
    "age_band": "patients aged {label}",
    "sex": "{label} patients",
    "need": "patients with {label}",
}


def _calibration_message(attribute: str, label: str, row: dict[str, Any], direction: str) -> str:
    who = GROUP_NOUNS.get(attribute, "{label}").format(label=label)
    points = abs(row["observed_minus_predicted"]) * 100
    consequence = (
        "their calls are ranked too low"
        if direction == "under"
        else ("their calls are ranked too high")
    )
    return (
        f"The model {direction}-predicts DNAs for {who} by {points:.1f} points "
        f"({row['observed']:.1%} missed against a mean predicted risk of "
        f"{row['predicted']:.1%}): {consequence}."
    )
