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
}


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
    bands: dict[str, float],
    call_horizon_days: int,
    sha256: str,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    card = {
        "version": version,
        "trained_at": trained_at,
        "as_of": as_of,
        "model": "scikit-learn HistGradientBoostingClassifier (native categorical splits)",
        "data_window": window,
        "rows": rows,
        "features": features,
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
        "fairness": fairness,
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


def write_card(card: dict[str, Any], directory: Path) -> None:
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (directory / "card.md").write_text(render_markdown(card), encoding="utf-8")
