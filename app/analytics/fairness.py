"""Fairness beside impact: is the risk model fair, and does the targeting reach the groups with
most DNAs? In plain words first, then the tables.

The model's calibration and ranking by group are read from the active risk model's card (the
risk feature computes them on the model's test period when it trains; nothing is recomputed
here). The targeting policy's reach by group is the period's reach against DNA burden (the
same figures as the reach tables, in fewer columns).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.analytics.schemas import Column, Section, Table
from app.analytics.stats import LEFT_BEHIND_RATIO
from app.risk.card import FAIRNESS_LABELS
from app.risk.repository import active_model

TARGETING_DIMENSIONS = ("ethnic-group", "imd-quintile", "age-band", "sex")
CALIBRATION_COLUMNS = [
    Column(key="rows", label="Test appointments", format="count"),
    Column(key="observed", label="DNA rate", format="percent"),
    Column(key="predicted", label="Mean predicted risk", format="percent"),
    Column(key="gap", label="Observed - predicted", format="percent"),
    Column(key="gap_low", label="95% CI low", format="percent"),
    Column(key="gap_high", label="95% CI high", format="percent"),
    Column(key="flag", label="Flag"),
]
RANKING_COLUMNS = [
    Column(key="rows", label="Test appointments", format="count"),
    Column(key="auroc", label="AUROC", format="ratio"),
    Column(key="auroc_low", label="95% CI low", format="ratio"),
    Column(key="auroc_high", label="95% CI high", format="ratio"),
    Column(key="slope", label="Calibration slope", format="ratio"),
]
TARGETING_COLUMNS = [
    ("share_of_dnas", "Share of DNAs"),
    ("called_rate", "Called"),
    ("reached_rate", "Reached"),
    ("share_of_reached", "Share of those reached"),
    ("reach_to_burden", "Reach / burden"),
    ("ratio_ci_low", "95% CI low"),
    ("ratio_ci_high", "95% CI high"),
]


def fairness(session: Session, reach: Section) -> Section:
    """The fairness section: plain-words findings (`message`, one per line) and tables."""
    findings: list[str] = []
    tables: list[Table] = []
    model = active_model(session)
    if model is None:
        findings.append(
            "No risk model is active, so there is no model fairness to report: calls are "
            "ordered without a model score."
        )
    else:
        model_findings, model_tables = _model_fairness(model.version, model.card or {})
        findings += model_findings
        tables += model_tables
    targeting_findings, targeting_tables = _targeting_reach(reach)
    findings += targeting_findings
    tables += targeting_tables
    return Section(available=True, message="\n".join(findings), tables=tables)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _interval(values: Any) -> tuple[float | None, float | None]:
    if not values or len(values) != 2:
        return None, None
    return _finite(values[0]), _finite(values[1])


def _day_words(moment: str) -> str:
    """An ISO date or date-time from a model card as the pages show dates: 21 Sep 2026."""
    try:
        return f"{date.fromisoformat(str(moment)[:10]):%-d %b %Y}"
    except ValueError:
        return str(moment)


def _model_fairness(version: str, card: dict[str, Any]) -> tuple[list[str], list[Table]]:
    window = card.get("data_window") or {}
    tested = (
        f" (measured on its test period from {_day_words(window['test_from'])})"
        if window.get("test_from")
        else ""
    )
    findings: list[str] = []
    calibration = card.get("calibration_by_group") or {}
    flags = calibration.get("flags") or []
    limit = _finite(calibration.get("limit"))
    if flags:
        findings += [str(flag.get("message")) for flag in flags]
    elif calibration:
        findings.append(
            f"Calibration: the active risk model {version}{tested} predicts DNAs about as "
            f"often as they happened in every group checked: no group's interval lies beyond "
            f"{(limit or 0) * 100:.1f} points."
        )
    else:
        findings.append(
            f"Calibration by group is not on the active model {version}'s card; retrain to add it."
        )
    ranking = card.get("fairness") or {}
    wide = [
        (attribute, table)
        for attribute, table in ranking.items()
        if table.get("gap_flagged") and table.get("gap_beyond_noise")
    ]
    for attribute, table in wide:
        findings.append(
            f"Ranking: by {_lower(FAIRNESS_LABELS.get(attribute, attribute))}, the model sorts "
            f"who will miss an appointment less well for some groups than others (AUROC gap "
            f"{table['auroc_gap']:.3f}, limit {table['gap_limit']:.2f}, beyond chance)."
        )
    if ranking and not wide:
        findings.append(
            "Ranking: the model sorts who will miss an appointment about equally well in every "
            "group (no AUROC gap beyond its limit that chance does not explain)."
        )
    tables: list[Table] = []
    for attribute, values in (calibration.get("attributes") or {}).items():
        rows = []
        for group in values.get("groups") or []:
            low, high = _interval(group.get("observed_minus_predicted_ci"))
            rows.append(
                {
                    "group": group.get("group"),
                    "rows": group.get("rows"),
                    "observed": _finite(group.get("observed")),
                    "predicted": _finite(group.get("predicted")),
                    "gap": _finite(group.get("observed_minus_predicted")),
                    "gap_low": low,
                    "gap_high": high,
                    "flag": group.get("flag") or "",
                }
            )
        label = FAIRNESS_LABELS.get(attribute, attribute)
        tables.append(
            Table(
                slug=f"model-calibration-by-{attribute.replace('_', '-')}",
                title=f"Risk model calibration by {_lower(label)}",
                note=(
                    f"From the active model {version}'s card{tested}. Observed - predicted "
                    "above zero means DNAs are under-predicted (the group's calls are ranked "
                    "too low); a group is flagged when its whole interval lies beyond "
                    f"{(limit or 0) * 100:.1f} points."
                ),
                columns=[Column(key="group", label=label), *CALIBRATION_COLUMNS],
                rows=rows,
            )
        )
    for attribute, table in ranking.items():
        rows = []
        for group in table.get("groups") or []:
            low, high = _interval((group.get("ci95") or {}).get("auroc"))
            rows.append(
                {
                    "group": group.get("group"),
                    "rows": group.get("rows"),
                    "auroc": _finite(group.get("auroc")),
                    "auroc_low": low,
                    "auroc_high": high,
                    "slope": _finite(group.get("calibration_slope")),
                }
            )
        label = FAIRNESS_LABELS.get(attribute, attribute)
        tables.append(
            Table(
                slug=f"model-ranking-by-{attribute.replace('_', '-')}",
                title=f"Risk model ranking by {_lower(label)}",
                note=(
                    f"From the active model {version}'s card{tested}. AUROC: the chance the "
                    "model ranks a patient who missed above one who attended (0.5 is a coin "
                    f"toss). Best-worst gap {_finite(table.get('auroc_gap')) or 0:.3f}, "
                    f"limit {_finite(table.get('gap_limit')) or 0:.2f}."
                ),
                columns=[Column(key="group", label=label), *RANKING_COLUMNS],
                rows=rows,
            )
        )
    return findings, tables


def _targeting_reach(reach: Section) -> tuple[list[str], list[Table]]:
    if not reach.available:
        return [reach.message or "No reach figures for this period."], []
    by_slug = {table.slug: table for table in reach.tables}
    findings: list[str] = []
    tables: list[Table] = []
    behind: list[str] = []
    for slug in TARGETING_DIMENSIONS:
        source = by_slug.get(f"reach-by-{slug}")
        if source is None:
            continue
        columns = {column.key: column for column in source.columns}
        keep = [columns["group"]] + [
            columns[key].model_copy(update={"label": label}) for key, label in TARGETING_COLUMNS
        ]
        rows = []
        for row in source.rows:
            flag = "left behind" if row.get("left_behind") else ""
            rows.append({column.key: row.get(column.key) for column in keep} | {"flag": flag})
            if row.get("left_behind"):
                behind.append(f"{row['group']} ({_lower(columns['group'].label)})")
        tables.append(
            Table(
                slug=f"targeting-reach-by-{slug}",
                title=f"Targeting: who the calls reach, by {_lower(columns['group'].label)}",
                note=(
                    "Each group's share of patients reached by a call divided by its share of "
                    f"DNAs; under {LEFT_BEHIND_RATIO} (unrounded) is flagged as left behind."
                ),
                columns=[*keep, Column(key="flag", label="Flag")],
                rows=rows,
            )
        )
    if behind:
        findings.append(
            "Targeting: the calls reach some groups less than their share of DNAs: "
            + "; ".join(behind)
            + f" (reach share under {LEFT_BEHIND_RATIO} of DNA share)."
        )
    else:
        findings.append(
            "Targeting: in this period every group's share of those reached by a call is at "
            f"least {LEFT_BEHIND_RATIO} of its share of DNAs (groups too small to report aside)."
        )
    return findings, tables


def _lower(text: str) -> str:
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]
