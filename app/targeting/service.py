"""Benefit targeting: the call's effect by subgroup from the randomised hold-out, training
and registering the benefit model, and the rule that decides which policy the queue runs.

Services take a session and a moment (`now`) and flush; the caller owns the transaction.
Errors a manager can act on (no trial yet, hold-out share 0, an empty arm) are
`NotReadyError`s: 409 on the API, a message on the page, a non-zero exit on the CLI.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.analytics.stats import newcombe_difference_interval
from app.appointments.tables import Appointment
from app.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
    NotReadyError,
)
from app.reference.codes import NOT_YET_KNOWN
from app.risk.card import FORBIDDEN_USES as RISK_FORBIDDEN_USES
from app.risk.card import json_safe
from app.settings import Settings
from app.targeting import repository
from app.targeting.policy import GROUP_LABELS, PRIORITY_GROUPS, SwitchDecision, switching_rule
from app.targeting.repository import TrialRows
from app.targeting.tables import BenefitModel
from app.targeting.uplift import (
    CV_BLOCKS,
    FEATURES,
    PENALTY_GRID,
    BenefitArtefact,
    fit_out_of_time,
    fold_cuts,
    load_benefit_artefact,
    save_benefit_artefact,
    validate,
    would_be_called,
)

logger = logging.getLogger("navigator.targeting")
BoolArray = npt.NDArray[np.bool_]

INTENDED_USE = (
    "To choose, within the day's navigator capacity, the call-arm patients a call is most "
    "likely to help (expected DNAs avoided), above an equity floor for each priority group."
)
FORBIDDEN_USES = [
    *RISK_FORBIDDEN_USES,
    "choosing who is held out of the trial (the hold-out is drawn before any policy)",
    "withholding care or reasonable adjustments from anyone a call would not help",
]
DIMENSIONS = {
    "risk_band": "Risk band",
    "priority_group": "Priority group",
    "first_or_follow_up": "First or follow-up",
    "lead_time_band": "Lead time",
    "imd_quintile": "IMD quintile (Q1 = most deprived)",
    "specialty": "Specialty",
}
LEAD_BANDS = (
    (0.0, 14.0, "under 2 weeks"),
    (14.0, 42.0, "2 to 6 weeks"),
    (42.0, 1e9, "6 weeks or more"),
)


def _require_trial(settings: Settings, rows: TrialRows, *, what: str) -> None:
    if settings.calls_holdout_share <= 0:
        raise NotReadyError(
            "The hold-out share (NAVIGATOR_CALLS_HOLDOUT_SHARE) is 0, so nobody is held out and "
            f"there is no randomised comparison for {what}."
        )
    call = int(rows.call_arm.sum())
    holdout = int((~rows.call_arm).sum())
    if call == 0 or holdout == 0:
        empty = "call arm" if call == 0 else "hold-out"
        raise NotReadyError(
            f"The {empty} has no appointments with an outcome in this period, so there is "
            f"nothing to compare for {what}."
        )
    minimum = settings.targeting_min_subgroup
    if min(call, holdout) < minimum:
        raise NotReadyError(
            f"Too little trial data for {what}: {call} call-arm and {holdout} hold-out "
            f"appointments have an outcome; each arm needs at least {minimum}."
        )


# Effects by subgroup.


def _levels(rows: TrialRows, dimension: str) -> list[tuple[str, BoolArray]]:
    if dimension == "risk_band":
        order = ["low", "medium", "high", "unscored"]
        return [(band, rows.band == band) for band in order if (rows.band == band).any()]
    if dimension == "priority_group":
        levels = [
            (GROUP_LABELS[group], rows.membership[:, column])
            for column, group in enumerate(PRIORITY_GROUPS)
        ]
        none = np.asarray(~rows.membership.any(axis=1), dtype=bool)
        return [*levels, ("None (high risk only)", none)]
    if dimension == "first_or_follow_up":
        first = rows.columns.first_attendance
        return [("First", first == 1), ("Follow-up", first == 0), ("Not recorded", np.isnan(first))]
    if dimension == "lead_time_band":
        lead = rows.columns.lead_time_days
        return [(label, (lead >= low) & (lead < high)) for low, high, label in LEAD_BANDS]
    if dimension == "imd_quintile":
        decile = rows.columns.imd_decile
        quintile = np.ceil(decile / 2)
        levels = [(f"Q{q}", quintile == q) for q in range(1, 6)]
        return [*levels, ("Unknown", np.isnan(decile))]
    codes = sorted(set(rows.specialty.tolist()))
    return [(str(code), rows.specialty == code) for code in codes]


def _effect(rows: TrialRows, mask: BoolArray, minimum: int) -> dict[str, Any]:
    call = mask & rows.call_arm
    holdout = mask & ~rows.call_arm
    n_call, n_holdout = int(call.sum()), int(holdout.sum())
    d_call, d_holdout = int(rows.dna[call].sum()), int(rows.dna[holdout].sum())
    cell: dict[str, Any] = {
        "n_call": n_call,
        "n_holdout": n_holdout,
        "suppressed": min(n_call, n_holdout) < minimum,
    }
    if cell["suppressed"]:
        cell.update(
            difference=None,
            ci_low=None,
            ci_high=None,
            dna_rate_call=None,
            dna_rate_holdout=None,
            dnas_call=None,
            dnas_holdout=None,
            reason=f"fewer than {minimum} appointments in an arm: not shown",
        )
        return cell
    interval = newcombe_difference_interval(d_call, n_call, d_holdout, n_holdout)
    cell.update(
        dnas_call=d_call,
        dnas_holdout=d_holdout,
        dna_rate_call=d_call / n_call,
        dna_rate_holdout=d_holdout / n_holdout,
        difference=d_call / n_call - d_holdout / n_holdout,
        ci_low=interval.low,
        ci_high=interval.high,
        reason=None,
    )
    return cell


def subgroup_effects(
    session: Session, settings: Settings, *, start: datetime, end: datetime
) -> dict[str, Any]:
    """The call's effect on the DNA rate (call arm minus hold-out, intention to treat)
    overall and by subgroup, for appointments that started in [start, end)."""
    if end <= start:
        raise InvalidInputError("the period must end after it starts")
    rows = repository.load_trial_rows(session, *repository.outcomes_between(start, end))
    _require_trial(settings, rows, what="the call's effect")
    everyone = np.ones(len(rows), dtype=bool)
    minimum = settings.targeting_min_subgroup
    return {
        "from": start,
        "to": end,
        "method": (
            "Intention to treat: every eligible appointment with a final outcome in its "
            "randomised arm, whether or not a call was made or reached the patient; "
            "cancellations stay in the denominator. Difference = call-arm DNA rate minus "
            "hold-out DNA rate (negative means fewer DNAs with calls), 95% Newcombe interval. "
            f"Cells with fewer than {minimum} appointments in an arm are suppressed."
        ),
        "minimum_per_arm": minimum,
        "overall": _effect(rows, everyone, minimum),
        "subgroups": {
            dimension: {
                "label": DIMENSIONS[dimension],
                "levels": [
                    {"level": level, **_effect(rows, mask, minimum)}
                    for level, mask in _levels(rows, dimension)
                ],
            }
            for dimension in DIMENSIONS
        },
    }


# The benefit model.


@dataclass
class TrainingResult:
    model: BenefitModel
    card: dict[str, Any]
    seconds: float


def _new_version(session: Session, now: datetime) -> str:
    base = f"benefit-{now:%Y%m%d-%H%M%S}"
    version, suffix = base, 1
    while repository.get_model(session, version) is not None:
        suffix += 1
        version = f"{base}-{suffix}"
    return version


def _day_iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def train_benefit_model(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    out_dir: Path | None = None,
    activate: bool = True,
) -> TrainingResult:
    """Fit the call-effect model on outcomes known before `now` (the would-be-called stratum
    of the earlier weeks), validate it out of time by rolling origin over the later weeks,
    register it with its card and (by default) make it the active benefit model."""
    started = time.perf_counter()
    rows = repository.load_trial_rows(
        session, Appointment.start_at < now, Appointment.attendance_code != NOT_YET_KNOWN
    )
    _require_trial(settings, rows, what="the benefit model")
    if len(rows) < settings.targeting_min_training_rows:
        raise NotReadyError(
            f"Too little trial data for the benefit model: {len(rows)} assigned appointments "
            f"have an outcome; training needs at least {settings.targeting_min_training_rows}."
        )
    features = rows.columns.matrix()
    stratum = would_be_called(rows.priority, rows.queue_day, rows.call_arm, rows.called)
    cuts = fold_cuts(
        rows.queue_day, settings.targeting_validation_share, settings.targeting_validation_folds
    )
    training = rows.queue_day < cuts[-1]
    latest = ~training & stratum
    if (
        training.sum() == 0
        or (latest & rows.call_arm).sum() == 0
        or (latest & ~rows.call_arm).sum() == 0
    ):
        raise NotReadyError(
            "Too little trial data for the benefit model: the later weeks kept for validation "
            "need called and held-out appointments; wait for more weeks of the programme."
        )
    fitted = training & stratum
    if (fitted & rows.called).sum() == 0 or (fitted & ~rows.called).sum() == 0:
        raise NotReadyError(
            "Too little trial data for the benefit model: the earlier weeks need called "
            "appointments and held-out appointments the queue would have called."
        )
    version = _new_version(session, now)
    out_of_time = fit_out_of_time(
        features,
        rows.called,
        rows.dna,
        rows.queue_day,
        stratum,
        share=settings.targeting_validation_share,
        folds=settings.targeting_validation_folds,
        version=version,
    )
    artefact, check = out_of_time.artefact, out_of_time.check
    metrics = validate(
        out_of_time.benefit,
        rows.columns.risk[check],
        rows.call_arm[check],
        rows.dna[check],
        replicates=settings.targeting_bootstrap_replicates,
        rng=np.random.default_rng(0),
    )
    metrics["validation_folds"] = out_of_time.folds_used
    directory = (out_dir or settings.models_dir) / version
    path, sha256 = save_benefit_artefact(artefact, directory)
    card = json_safe(
        {
            "version": version,
            "trained_at": now,
            "model": (
                "call-effect model: the risk score's log-odds recalibrated, plus a call term "
                "with effect modifiers, fitted by penalised maximum likelihood on the "
                "randomised would-be-called stratum (app/targeting/uplift.py)"
            ),
            "data_window": {
                "first_queue_date": _day_iso(rows.queue_day.min()),
                # The earliest validation fold's first day; the queue's model learnt from the
                # days before `model_learnt_before` and was checked on the weeks after.
                "validation_from": _day_iso(int(rows.queue_day[check].min())),
                "model_learnt_before": _day_iso(cuts[-1]),
                "last_queue_date": _day_iso(rows.queue_day.max()),
            },
            "rows": {
                "with_outcome": len(rows),
                "training": int(training.sum()),
                "training_stratum": int(fitted.sum()),
                "training_called": int((training & rows.called).sum()),
                "training_not_called": int((training & ~rows.called).sum()),
                "holdout_outcomes": int((training & ~rows.call_arm).sum()),
                "validation_call_arm": int((check & rows.call_arm).sum()),
                "validation_holdout": int((check & ~rows.call_arm).sum()),
            },
            "features": list(FEATURES),
            "hyperparameters": {
                "effect_penalty": artefact.penalty,
                "penalty_grid": list(PENALTY_GRID),
                "cross_validation_blocks": CV_BLOCKS,
            },
            "coefficients": artefact.coefficients(),
            "metrics": metrics,
            "intended_use": INTENDED_USE,
            "forbidden_uses": FORBIDDEN_USES,
            "artefact_sha256": sha256,
        }
    )
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (directory / "card.md").write_text(render_card(card), encoding="utf-8")
    model = BenefitModel(
        version=version,
        artefact_path=str(path),
        artefact_sha256=sha256,
        trained_at=now,
        card=card,
        active=False,
    )
    session.add(model)
    session.flush()
    if activate:
        repository.set_active(session, model, now)
    seconds = time.perf_counter() - started
    logger.info("trained benefit model %s on %d rows in %.1fs", version, len(rows), seconds)
    return TrainingResult(model=model, card=card, seconds=seconds)


def render_card(card: dict[str, Any]) -> str:
    metrics = card["metrics"]
    window = card["data_window"]
    low, high = metrics["qini_area_ci"]
    return "\n".join(
        [
            f"# Benefit model {card['version']}",
            "",
            f"**Intended use.** {card['intended_use']}",
            "",
            "**Forbidden uses.** Never for " + "; ".join(card["forbidden_uses"]) + ".",
            "",
            f"Model: {card['model']}. Trained {card['trained_at']}.",
            f"Queue dates {window['first_queue_date']} to {window['last_queue_date']}; "
            f"learnt from the days before {window['model_learnt_before']}; "
            f"validated out of time from {window['validation_from']} "
            f"({metrics.get('validation_folds', 1)} rolling-origin folds, each scored by a "
            "model fitted only on the weeks before it).",
            "",
            "Rows: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in card["rows"].items())
            + ".",
            "",
            "## Out-of-time validation (would-be-called stratum, call arm against hold-out)",
            "",
            f"Qini area {metrics['qini_area']:.4f} (95% bootstrap interval "
            f"{_fmt(low)} to {_fmt(high)}); ranking by risk {metrics['risk_qini_area']:.4f}.",
            "",
            f"Features: {', '.join(card['features'])}.",
            "",
            *_coefficient_lines(card.get("coefficients") or {}),
            f"Artefact SHA-256: `{card['artefact_sha256']}`",
            "",
        ]
    )


def _coefficient_lines(coefficients: dict[str, float]) -> list[str]:
    """The coefficients in words: a negative call coefficient means the call lowers the
    chance of a DNA more for that group (log-odds)."""
    if not coefficients:
        return []
    lines = [
        "## Coefficients (log-odds; call terms below 0 mean the call helps more)",
        "",
        "| term | coefficient |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value:+.3f} |" for name, value in coefficients.items()]
    return [*lines, ""]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def list_models(session: Session) -> list[BenefitModel]:
    return repository.list_models(session)


def load_active_artefact(session: Session) -> BenefitArtefact:
    model = repository.active_model(session)
    if model is None:
        raise NotReadyError(
            "no benefit model is active; train one with `navigator targeting train`"
        )
    return load_benefit_artefact(Path(model.artefact_path), model.artefact_sha256)


def activate_model(session: Session, version: str, *, now: datetime) -> BenefitModel:
    model = repository.get_model(session, version)
    if model is None:
        raise NotFoundError(f"no benefit model has version {version!r}")
    load_benefit_artefact(Path(model.artefact_path), model.artefact_sha256)
    if model.active:
        raise ConflictError(f"benefit model {version} is already active")
    repository.set_active(session, model, now)
    return model


def queue_decision(session: Session, settings: Settings) -> SwitchDecision:
    """Which policy the queue runs now (`switching_rule` on the active benefit model)."""
    model = repository.active_model(session) if settings.calls_queue_policy == "benefit" else None
    card = model.card if model is not None else {}
    interval = (card.get("metrics") or {}).get("qini_area_ci") or [None, None]
    decision = switching_rule(
        requested=settings.calls_queue_policy,
        holdout_share=settings.calls_holdout_share,
        holdout_outcomes=(card.get("rows") or {}).get("holdout_outcomes"),
        min_holdout_outcomes=settings.targeting_min_holdout_outcomes,
        qini_ci_low=interval[0],
        model_version=model.version if model is not None else None,
    )
    if decision.switched and model is not None:
        # The queue cannot rank by a model file it refuses to load (missing, changed or with
        # unexpected types); say so here, where the page and `targeting status` read it.
        try:
            load_benefit_artefact(Path(model.artefact_path), model.artefact_sha256)
        except DomainError as error:
            return SwitchDecision(
                decision.requested,
                "risk",
                f"The queue stays on the risk policy: {error.message}.",
            )
    return decision


def targeting_report(
    session: Session, settings: Settings, *, start: datetime, end: datetime
) -> dict[str, Any]:
    """Effects by subgroup, the active benefit model's validation, and the queue's policy."""
    effects = subgroup_effects(session, settings, start=start, end=end)
    model = repository.active_model(session)
    decision = queue_decision(session, settings)
    return json_safe(
        {
            **effects,
            "benefit_model": (
                {
                    "version": model.version,
                    "trained_at": model.trained_at,
                    "data_window": model.card.get("data_window"),
                    "rows": model.card.get("rows"),
                    "validation": model.card.get("metrics"),
                    "forbidden_uses": model.card.get("forbidden_uses"),
                }
                if model is not None
                else None
            ),
            "queue_policy": {
                "requested": decision.requested,
                "effective": decision.effective,
                "message": decision.message,
                "floor_scale": settings.targeting_floor_scale,
                "exploration_share": settings.targeting_exploration_share,
            },
        }
    )
