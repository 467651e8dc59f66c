"""Drift of a registered model on the outcomes that arrived after it was trained.

A model is tested once, at training, on a period it never saw. Trusts change (a new clinic, a
PAS migration, a new reminder service), so the monthly review (`app.risk.review`) scores every
appointment whose outcome arrived after the model's training as-of exactly as the queue would
have scored it (features as known at `max(booked_at, start_at - call horizon)`, with the
model's active scorer) and reports, for each local calendar month:

- AUROC (ranking) and calibration-in-the-large: observed DNA rate minus the mean predicted
  risk, in probability points, with a 95% interval;
- the same by ethnic group, IMD quintile, age band, sex, Core20 and need;
- an alert when a month's whole interval lies beyond `settings.risk_drift_calibration_limit`
  (months with fewer than `settings.risk_drift_min_rows` outcomes never alert).

Over the whole drift window each group also gets the card's calibration audit (bootstrap
intervals, flagged in plain words beyond `settings.risk_calibration_limit`). The result is
plain JSON (aggregates only, never an appointment), stored on the review's decision row, shown
on `/model` and exported in `/metrics`.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from app.risk.artefacts import RiskArtefact
from app.risk.card import json_safe
from app.risk.evaluation import MIN_GROUP_ROWS, audit_groups, group_calibration
from app.risk.features import AppointmentHistory, build_features, scoring_moments
from app.settings import Settings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Z95 = 1.959964


def uk_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _month_starts(first: date, last: date) -> list[date]:
    months, day = [], date(first.year, first.month, 1)
    while day <= last:
        months.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return months


def drift_rows(history: AppointmentHistory, *, since_s: int, now_s: int) -> IntArray:
    """Appointments (positions in `history`) that started at or after `since_s` and whose
    attended-or-not outcome was recorded before `now_s`; navigator-called ones are left out,
    as in training (a call changes the outcome)."""
    decided = np.isin(history.attendance_code, (3, 5, 6, 7))
    known = (
        decided
        & (history.start_s >= since_s)
        & (history.start_s < now_s)
        & (history.recorded_s < now_s)
        & ~history.called
    )
    return np.flatnonzero(known)


def _auroc(y: FloatArray, p: FloatArray) -> float | None:
    if len(y) < MIN_GROUP_ROWS or not 0 < y.sum() < len(y):
        return None
    return float(roc_auc_score(y, p))


def _calibration(y: FloatArray, p: FloatArray) -> dict[str, Any]:
    observed = float(y.mean())
    predicted = float(p.mean())
    half = Z95 * math.sqrt(max(observed * (1 - observed), 1e-12) / len(y))
    difference = observed - predicted
    return {
        "rows": len(y),
        "dnas": int(y.sum()),
        "observed": observed,
        "predicted": predicted,
        "observed_minus_predicted": difference,
        "observed_minus_predicted_ci": [difference - half, difference + half],
        "auroc": _auroc(y, p),
    }


def monthly_drift(
    history: AppointmentHistory,
    artefact: RiskArtefact,
    card: dict[str, Any],
    settings: Settings,
    *,
    now: datetime,
    risk_of: Any = None,
) -> dict[str, Any]:
    """Monthly AUROC and calibration-in-the-large of the model `artefact` (whose card is
    `card`) on outcomes that arrived after its training as-of, overall and by group.

    `risk_of(artefact, history, rows, features)` gives the risk the queue would use (the
    service's scorer, with any per-group recalibration); by default the artefact's own.
    """
    as_of = datetime.fromisoformat(str(card["as_of"]))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    calendar = settings.calendar
    since_s, now_s = int(as_of.timestamp()), int(now.timestamp())
    limit = settings.risk_drift_calibration_limit
    report: dict[str, Any] = {
        "model_version": card.get("version"),
        "as_of": as_of.isoformat(),
        "computed_at": now.isoformat(),
        "limit": limit,
        "min_rows": settings.risk_drift_min_rows,
        "test_auroc": (card.get("metrics") or {}).get("auroc"),
        "months": [],
        "alerts": [],
        "by_group_since_training": {},
    }
    rows = drift_rows(history, since_s=since_s, now_s=now_s)
    if len(rows) == 0:
        report["summary"] = (
            f"No outcomes have arrived since the model was trained on outcomes known before "
            f"{uk_date(calendar.today(as_of))}, so there is no drift to measure yet."
        )
        return report
    features = build_features(
        history,
        rows,
        scoring_moments(history, rows, settings.call_horizon_days),
        artefact.vocabulary,
        timezone=settings.timezone,
        include_ethnicity=artefact.include_ethnicity,
    )
    risk = (
        np.asarray(risk_of(artefact, history, rows, features), dtype=float)
        if risk_of is not None
        else artefact.risk(features)
    )
    y = np.isin(history.attendance_code[rows], (3, 7)).astype(float)
    groups = audit_groups(
        history, rows, features[:, artefact.feature_names.index("age_band")], need=True
    )
    starts = history.start_s[rows]
    first_day = calendar.today(datetime.fromtimestamp(int(starts.min()), UTC))
    last_day = calendar.today(now)
    months = _month_starts(first_day, last_day)
    bounds = np.array([int(calendar.day_start(m).timestamp()) for m in months], dtype=np.int64)
    month_of = np.searchsorted(bounds, starts, side="right") - 1
    for index, month in enumerate(months):
        chosen = month_of == index
        if not chosen.any():
            continue
        entry = _calibration(y[chosen], risk[chosen])
        entry.update(
            month=f"{month:%Y-%m}",
            label=f"{month:%B %Y}",
            short_label=f"{month:%b %y}",
            partial=bool(index == 0 and as_of > calendar.day_start(month))
            or bool(index == len(months) - 1),
        )
        low, high = entry["observed_minus_predicted_ci"]
        if entry["rows"] >= settings.risk_drift_min_rows and (low > limit or high < -limit):
            direction = "under" if low > limit else "over"
            entry["flag"] = f"{direction}-predicted"
            report["alerts"].append(
                {"month": entry["month"], "message": _alert_message(entry, direction, limit)}
            )
        entry["groups"] = {
            attribute: [
                _group_entry(label, y[chosen & (labels == label)], risk[chosen & (labels == label)])
                for label in sorted({str(v) for v in labels[chosen]})
            ]
            for attribute, labels in groups.items()
        }
        report["months"].append(entry)
    report["by_group_since_training"] = group_calibration(
        y,
        risk,
        groups,
        limit=settings.risk_calibration_limit,
        rng=np.random.default_rng(2),
        replicates=settings.risk_bootstrap_replicates,
    )
    report["overall"] = _calibration(y, risk)
    report["summary"] = _summary(report, calendar.today(as_of), last_day)
    safe: dict[str, Any] = json_safe(report)
    return safe


def _group_entry(label: str, y: FloatArray, p: FloatArray) -> dict[str, Any]:
    return {
        "group": label,
        "rows": len(y),
        "observed": float(y.mean()),
        "predicted": float(p.mean()),
        "observed_minus_predicted": float(y.mean() - p.mean()),
        "auroc": _auroc(y, p),
    }


def _alert_message(entry: dict[str, Any], direction: str, limit: float) -> str:
    points = abs(entry["observed_minus_predicted"]) * 100
    consequence = (
        "more appointments are being missed than the model expects"
        if direction == "under"
        else "fewer appointments are being missed than the model expects"
    )
    return (
        f"In {entry['label']} the model {direction}-predicted DNAs by {points:.1f} points "
        f"({entry['observed']:.1%} missed against a mean predicted risk of "
        f"{entry['predicted']:.1%}), beyond the drift limit of {limit * 100:.1f} points: "
        f"{consequence}. Retrain the model or review the monthly challenger."
    )


def _summary(report: dict[str, Any], as_of_day: date, last_day: date) -> str:
    overall = report["overall"]
    latest = report["months"][-1]
    auroc = latest.get("auroc")
    test = report.get("test_auroc")
    ranking = (
        f"its AUROC was {auroc:.3f}" + (f" ({test:.3f} on its test period)" if test else "")
        if auroc is not None
        else "there were too few outcomes to measure its ranking"
    )
    within = (
        f"{len(report['alerts'])} month{'s' if len(report['alerts']) != 1 else ''} beyond the "
        f"drift limit of {report['limit'] * 100:.1f} points"
        if report["alerts"]
        else f"every month within the drift limit of {report['limit'] * 100:.1f} points"
    )
    return (
        f"Since the model was trained on outcomes known before {uk_date(as_of_day)}, "
        f"{overall['rows']:,} appointments have had an outcome (to {uk_date(last_day)}). "
        f"In {latest['label']}{' so far' if latest['partial'] else ''}, {ranking}, and it "
        f"predicted {latest['predicted']:.1%} against {latest['observed']:.1%} observed "
        f"(calibration-in-the-large {latest['observed_minus_predicted'] * 100:+.1f} points); "
        f"{within}."
    )
