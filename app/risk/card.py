"""Model cards: what a model is, what it was trained on, how well and how fairly it works.

Written next to the artefact as `card.json` (for machines and the API) and `card.md` (for
people), and stored in the registry row.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

INTENDED_USE = (
    "To offer help: prioritise navigator calls, reminders and support (interpreters, travel, "
    "longer appointments) for appointments more likely to be missed."
)
FORBIDDEN_USES = [
    "overbooking clinics",
    "discharging patients or removing them from waiting lists",
    "penalties of any kind",
]
FAIRNESS_LABELS = {
    "ethnic_group": "Ethnic group",
    "imd_quintile": "IMD quintile (Q1 = most deprived)",
    "core20": "Core20",
    "age_band": "Age band",
    "sex": "Sex",
    "need": "Need (interpreter, communication, learning disability)",
}


BASELINE_NAMES = {
    "prior_dna_rate": "the patient's prior DNA rate alone",
    "logistic_regression": "a logistic regression on the same features",
    "default_gradient_boosting": "a default-settings gradient-boosting model on the same features",
}
POPULATION_NAMES = {
    "all": "on all test appointments",
    "callable": "on the appointments navigators can call",
}
ACTIVE_SCORER_NOTES = {
    "model": "The queue is ranked by this model: it did best on the validation period.",
    "logistic_regression": (
        "The queue is ranked by the logistic regression, which did better than this model on "
        "the validation period; the model still gives the reasons shown."
    ),
    "prior_dna_rate": (
        "The queue is ranked by the patient's prior DNA rate, which did better than this model "
        "on the validation period; the model still gives the reasons shown."
    ),
}
CALLABLE_NOTE = (
    "Navigators call about {days} days ahead, so appointments booked less than {days} days "
    "before they start cannot be called. Same-day and short-notice bookings are easy to rank "
    "(their features differ) and inflate AUROC on all appointments: judge the model on the "
    "callable population."
)


def verdicts(comparisons: dict[str, dict[str, Any]]) -> list[str]:
    """Plain sentences: is the model better than each baseline on the paired interval?"""
    sentences = []
    for population, table in comparisons.items():
        for name, diff in table.items():
            low, high = diff["auroc_difference_ci"]
            who = BASELINE_NAMES.get(name, name)
            where = POPULATION_NAMES.get(population, population)
            if low is None or high is None:
                continue
            if low > 0:
                sentences.append(
                    f"Better than {who} {where}: AUROC {diff['auroc_difference']:+.3f} "
                    f"(95% interval {low:+.3f} to {high:+.3f})."
                )
            elif high < 0:
                sentences.append(
                    f"Worse than {who} {where}: AUROC {diff['auroc_difference']:+.3f} "
                    f"(95% interval {low:+.3f} to {high:+.3f})."
                )
            else:
                sentences.append(
                    f"Not better than {who} {where}: the AUROC difference "
                    f"{diff['auroc_difference']:+.3f} has a 95% interval from {low:+.3f} to "
                    f"{high:+.3f}, which includes 0."
                )
    return sentences


def json_safe(value: Any) -> Any:
    """The value with NaN and infinities as None, so it is valid JSON everywhere."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_card(
    *,
    version: str,
    trained_at: datetime,
    as_of: datetime,
    window: dict[str, str],
    rows: dict[str, int],
    features: list[str],
    categorical: list[str],
    include_ethnicity: bool,
    hyperparameters: dict[str, Any],
    calibration: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, Any],
    fairness: dict[str, Any],
    contact_choice: str,
    bands: dict[str, Any],
    call_horizon_days: int,
    sha256: str,
    comparison: dict[str, Any] | None = None,
    used_features: list[str] | None = None,
    dropped_features: dict[str, str] | None = None,
    selection: dict[str, Any] | None = None,
    calibration_by_group: dict[str, Any] | None = None,
    comparison_callable: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    active_scorer: str = "model",
    group_recalibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    comparisons = {"all": comparison or {}, "callable": comparison_callable or {}}
    card = {
        "version": version,
        "trained_at": trained_at,
        "as_of": as_of,
        "model": "scikit-learn HistGradientBoostingClassifier (native categorical splits)",
        "data_window": window,
        "rows": rows,
        "features": features,
        "used_features": used_features if used_features is not None else features,
        "dropped_features": dropped_features or {},
        "categorical_features": categorical,
        "ethnicity_is_input": include_ethnicity,
        "feature_notes": (
            f"Features as known at the scoring moment: now for upcoming appointments, "
            f"max(booked_at, start_at - {call_horizon_days} days) in backtests and training. "
            "Only earlier appointments that started, and whose outcome was recorded, before "
            "that moment are counted. Patient attributes (age, sex, IMD, needs) are as "
            "currently recorded, not as they were at each appointment. Other appointments "
            "on the same day are counted by the trust's local calendar day."
        ),
        "hyperparameters": hyperparameters,
        "calibration": calibration,
        "metrics": metrics,
        "baselines": baselines,
        "comparison_with_baselines": comparison or {},
        "comparison_with_baselines_callable": comparison_callable or {},
        "verdicts": verdicts(comparisons),
        "selection": selection or {},
        "validation": validation or {},
        "active_scorer": active_scorer,
        "active_scorer_note": ACTIVE_SCORER_NOTES.get(active_scorer, ""),
        "callable_note": CALLABLE_NOTE.format(days=call_horizon_days),
        "fairness": fairness,
        "calibration_by_group": calibration_by_group or {},
        "group_recalibration": group_recalibration or {},
        "bands": bands,
        "intended_use": INTENDED_USE,
        "forbidden_uses": FORBIDDEN_USES,
        "contacted_appointments": contact_choice,
        "artefact_sha256": sha256,
    }
    safe: dict[str, Any] = json_safe(card)
    return safe


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(values: list[Any] | None) -> str:
    if not values or values[0] is None:
        return ""
    return f" ({values[0]:.3f} to {values[1]:.3f})"


def render_markdown(card: dict[str, Any]) -> str:
    metrics = card["metrics"]
    window = card["data_window"]
    lines = [
        f"# DNA-risk model {card['version']}",
        "",
        f"**Intended use.** {card['intended_use']}",
        "",
        "**Forbidden uses.** Never for " + ", ".join(card["forbidden_uses"]) + ".",
        "",
        f"Trained {card['trained_at']} on outcomes known before {card['as_of']}.",
        f"Data window: {window['first_start']} to {window['last_start']}; "
        f"calibration from {window['calibration_from']}, test from {window['test_from']}.",
        "",
        "Rows: " + ", ".join(f"{key} {value}" for key, value in card["rows"].items()) + ".",
        "",
        f"**Ethnicity is {'an input' if card['ethnicity_is_input'] else 'not an input'}** of "
        "this model; it is always used to audit fairness.",
        "",
        f"**Contacted appointments.** {card['contacted_appointments']}",
        "",
        f"Features: {', '.join(card['features'])}.",
        "",
        card["feature_notes"],
        "",
        "## Verdict",
        "",
        *[f"- {sentence}" for sentence in card.get("verdicts") or []],
        "",
        card.get("active_scorer_note", ""),
        "",
        *_feature_lines(card),
        "## Test-period performance",
        "",
        "| model | AUROC | average precision | Brier | calibration slope | intercept |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("this model", metrics)] + [
        (name.replace("_", " "), values) for name, values in card["baselines"].items()
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {_number(values['auroc'])} | {_number(values['average_precision'])} | "
            f"{_number(values['brier'], 4)} | {_number(values['calibration_slope'], 2)} | "
            f"{_number(values['calibration_intercept'], 2)} |"
        )
    comparison = card.get("comparison_with_baselines") or {}
    if comparison:
        lines += [
            "",
            "This model minus each baseline on the same test appointments (paired bootstrap, "
            "95% intervals; an interval above 0 means the model is better):",
            "",
            "| baseline | AUROC difference | average precision difference |",
            "|---|---|---|",
        ]
        for name, diff in comparison.items():
            lines.append(
                f"| {name.replace('_', ' ')} | {diff['auroc_difference']:+.4f}"
                f"{_interval(diff['auroc_difference_ci'])} | "
                f"{diff['average_precision_difference']:+.4f}"
                f"{_interval(diff['average_precision_difference_ci'])} |"
            )
    capture = metrics["capture"]
    lines += [
        "",
        "Share of DNAs among the highest-risk appointments: "
        + ", ".join(f"{k.replace('_', ' ')}%: {_number(v, 2)}" for k, v in capture.items()),
        "",
        "Reliability (predicted vs observed, equal-count bins):",
        "",
        "| predicted | observed | appointments |",
        "|---|---|---|",
    ]
    lines += [
        f"| {_number(b['predicted'])} | {_number(b['observed'])} | {b['count']} |"
        for b in metrics["reliability"]
    ]
    lines += ["", "## Fairness (test period, 95% bootstrap intervals)", ""]
    for attribute, table in card["fairness"].items():
        flag = " **gap above limit**" if table["gap_flagged"] else ""
        if table["gap_flagged"] and not table.get("gap_beyond_noise"):
            flag += " (the best and worst groups' intervals overlap: may be noise)"
        lines += [
            f"### {FAIRNESS_LABELS.get(attribute, attribute)}",
            "",
            f"Best-worst AUROC gap {_number(table['auroc_gap'])} (limit "
            f"{_number(table['gap_limit'], 2)}){flag}.",
            "",
            "| group | appointments | DNA rate | mean risk | AUROC | calibration slope |",
            "|---|---|---|---|---|---|",
        ]
        for group in table["groups"]:
            ci = group.get("ci95", {}).get("auroc")
            lines.append(
                f"| {group['group']} | {group['rows']} | {_number(group['dna_rate'])} | "
                f"{_number(group['mean_risk'])} | {_number(group.get('auroc'))}{_interval(ci)} | "
                f"{_number(group.get('calibration_slope'), 2)} |"
            )
        lines.append("")
    lines += _selection_and_bands_lines(card)
    lines += _group_calibration_lines(card)
    recalibration = card.get("group_recalibration") or {}
    if recalibration.get("verdict"):
        lines += ["## Per-group recalibration", "", recalibration["verdict"], ""]
    lines += [
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(card["hyperparameters"], indent=2),
        "```",
        "",
        f"Artefact SHA-256: `{card['artefact_sha256']}`",
        "",
    ]
    return "\n".join(lines)


def _feature_lines(card: dict[str, Any]) -> list[str]:
    dropped = card.get("dropped_features") or {}
    if not dropped:
        return ["Every feature carried information in this extract.", ""]
    lines = ["Features dropped because they carry no information in this extract:", ""]
    lines += [f"- {name.replace('_', ' ')}: {why}" for name, why in dropped.items()]
    return [*lines, ""]


def _selection_and_bands_lines(card: dict[str, Any]) -> list[str]:
    lines = ["## Where navigators act", "", card.get("callable_note", ""), ""]
    lines += [
        "| model | AUROC (callable) | average precision (callable) | capture at capacity |",
        "|---|---|---|---|",
    ]
    rows = [("this model", card["metrics"])] + [
        (name.replace("_", " "), values) for name, values in card["baselines"].items()
    ]
    for name, values in rows:
        callable_metrics = values.get("callable") or {}
        capture = (values.get("capture_at_capacity") or {}).get("capture")
        lines.append(
            f"| {name} | {_number(callable_metrics.get('auroc'))} | "
            f"{_number(callable_metrics.get('average_precision'))} | {_number(capture)} |"
        )
    capacity = card["metrics"].get("capture_at_capacity") or {}
    lines += [
        "",
        f"Capture at capacity: the share of the test window's callable DNAs among the "
        f"{capacity.get('capacity_per_day', 'n/a')} highest-risk callable appointments of each "
        "day (the navigators' daily capacity).",
        "",
    ]
    bands = card.get("bands") or {}
    if bands:
        method = (
            "from this trust's own risk distribution (high = the share of a day's callable "
            "appointments the navigators can call, medium = the next band of that size)"
            if bands.get("method") == "capacity"
            else "fixed probabilities from the settings"
        )
        lines += [
            f"Bands {method}: high at {_number(bands.get('high'))} and above, medium at "
            f"{_number(bands.get('medium'))} and above.",
            "",
        ]
    selection = card.get("selection") or {}
    if selection.get("grid"):
        lines += [
            "## Settings chosen by rolling temporal validation",
            "",
            selection.get("method", ""),
            "",
            "| setting | leaves | min leaf | learning rate | monotonic | mean AUROC | mean AP |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in selection["grid"].items():
            chosen = " (chosen)" if name == selection.get("chosen") else ""
            lines.append(
                f"| {name}{chosen} | {row['max_leaf_nodes']} | {row['min_samples_leaf']} | "
                f"{row['learning_rate']} | {row['monotonic']} | {_number(row['mean_auroc'])} | "
                f"{_number(row['mean_average_precision'])} |"
            )
        lines.append("")
    return lines


def _group_calibration_lines(card: dict[str, Any]) -> list[str]:
    table = card.get("calibration_by_group") or {}
    if not table:
        return []
    lines = [
        "## Calibration by group (test period, 95% bootstrap intervals)",
        "",
        f"A group is flagged when its whole observed-minus-predicted interval lies beyond "
        f"{_number(table.get('limit'), 3)}.",
        "",
    ]
    flags = table.get("flags") or []
    lines += [f"- **{flag['message']}**" for flag in flags] or ["- No group is flagged."]
    lines.append("")
    for attribute, values in (table.get("attributes") or {}).items():
        lines += [
            f"### {FAIRNESS_LABELS.get(attribute, attribute)}",
            "",
            "| group | appointments | observed | predicted | observed - predicted | slope |",
            "|---|---|---|---|---|---|",
        ]
        for group in values["groups"]:
            lines.append(
                f"| {group['group']} | {group['rows']} | {_number(group['observed'])} | "
                f"{_number(group['predicted'])} | {_number(group['observed_minus_predicted'])}"
                f"{_interval(group.get('observed_minus_predicted_ci'))} | "
                f"{_number(group.get('calibration_slope'), 2)}"
                f"{_interval(group.get('calibration_slope_ci'))} |"
            )
        lines.append("")
    return lines


def write_card(card: dict[str, Any], directory: Path) -> None:
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (directory / "card.md").write_text(render_markdown(card), encoding="utf-8")
