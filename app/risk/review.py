"""The monthly risk review: the champion's drift, a challenger, and a recorded decision.

`retrain_and_decide` is what the worker's monthly `risk_review` job runs (and `navigator model
review` on demand):

1. **Drift** of the active model (the champion) on every outcome that arrived after its
   training as-of (`app.risk.drift`).
2. **A challenger** trained by the usual procedure (`service.train_model`) on every outcome
   known now, registered but not active.
3. **The comparison**, on the latest period neither model has seen: the challenger's test
   period (its procedure was fitted and calibrated on earlier outcomes only), restricted to
   appointments that started after the champion's as-of. Both are scored as the queue would
   have scored them; the difference of AUROC (challenger minus champion) gets a paired 95%
   bootstrap interval (every replicate reweights the same appointments for both).
4. **The decision.** The challenger becomes active unless it is worse: unless the lower end of
   that interval is below minus `settings.risk_challenger_margin`. A challenger as good as the
   champion wins, since it has seen the latest outcomes. With too few new outcomes to compare,
   or no challenger (too little data), the champion stays. With no champion, the challenger
   becomes active.

Every review is recorded in `risk_model_decisions` (outcome, versions, reason in plain words,
the comparison and the drift), whatever it decided. The caller owns the transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score
from sqlalchemy.orm import Session

from app.errors import DomainError, InvalidInputError
from app.risk import repository, service
from app.risk.artefacts import RiskArtefact
from app.risk.card import json_safe
from app.risk.drift import monthly_drift, uk_date
from app.risk.evaluation import paired_differences
from app.risk.features import AppointmentHistory, build_features, scoring_moments
from app.risk.tables import DecisionOutcome, RiskModel, RiskModelDecision
from app.settings import Settings

logger = logging.getLogger("navigator.risk.review")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Fewer new outcomes than this (or no DNA among them) and the champion is kept untested.
MIN_COMPARISON_ROWS = 200


@dataclass
class Comparison:
    rows: int
    dnas: int
    champion: dict[str, float]
    challenger: dict[str, float]
    auroc_difference: float
    auroc_difference_ci: list[float]
    average_precision_difference: float
    average_precision_difference_ci: list[float]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _as_of(model: RiskModel) -> datetime:
    moment = datetime.fromisoformat(str(model.card["as_of"]))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def champion_scores(
    history: AppointmentHistory, artefact: RiskArtefact, rows: IntArray, settings: Settings
) -> FloatArray:
    """The champion's risk for `rows` (positions in `history`), as the queue would have
    scored each before it started."""
    features = build_features(
        history,
        rows,
        scoring_moments(history, rows, settings.call_horizon_days),
        artefact.vocabulary,
        timezone=settings.timezone,
        include_ethnicity=artefact.include_ethnicity,
    )
    return service.scorer_risk(artefact, history, rows, features)


def _metrics(y: FloatArray, p: FloatArray) -> dict[str, float]:
    return {
        "auroc": float(roc_auc_score(y, p)),
        "average_precision": float(average_precision_score(y, p)),
        "observed": float(y.mean()),
        "predicted": float(p.mean()),
    }


def compare(
    y: FloatArray, challenger: FloatArray, champion: FloatArray, *, replicates: int
) -> Comparison:
    """Challenger minus champion on the same appointments, with paired 95% intervals."""
    paired = paired_differences(
        y, challenger, {"champion": champion}, np.random.default_rng(3), replicates=replicates
    )["champion"]
    return Comparison(
        rows=len(y),
        dnas=int(y.sum()),
        champion=_metrics(y, champion),
        challenger=_metrics(y, challenger),
        auroc_difference=paired["auroc_difference"],
        auroc_difference_ci=paired["auroc_difference_ci"],
        average_precision_difference=paired["average_precision_difference"],
        average_precision_difference_ci=paired["average_precision_difference_ci"],
    )


def may_be_worse(auroc_difference_low: float, margin: float) -> bool:
    """The decision rule: the challenger may be worse than the champion when the lower end of
    the paired 95% interval of (challenger minus champion) AUROC is below minus `margin`. At
    exactly minus the margin it is not worse, and is promoted."""
    return auroc_difference_low < -margin


def retrain_and_decide(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    out_dir: Path | None = None,
    history: AppointmentHistory | None = None,
) -> RiskModelDecision:
    """Measure the champion's drift, train a challenger on every outcome known `now`, make it
    active only if it is not worse than the champion on the latest period, and record it."""
    if history is None:
        history = repository.load_history(session)
    champion = repository.active_model(session)
    champion_artefact: RiskArtefact | None = None
    drift: dict[str, Any] = {}
    champion_problem = None
    if champion is not None:
        try:
            champion_artefact = service.load_model_artefact(champion)
        except DomainError as error:
            champion_problem = error.message
        else:
            drift = monthly_drift(
                history,
                champion_artefact,
                champion.card,
                settings,
                now=now,
                risk_of=service.scorer_risk,
            )

    def record(
        outcome: DecisionOutcome,
        reason: str,
        *,
        challenger: RiskModel | None = None,
        comparison: dict[str, Any] | None = None,
    ) -> RiskModelDecision:
        active = repository.active_model(session)
        decision = repository.add_decision(
            session,
            RiskModelDecision(
                decided_at=now,
                outcome=outcome.value,
                champion_version=champion.version if champion else None,
                challenger_version=challenger.version if challenger else None,
                active_version=active.version if active else None,
                reason=reason,
                comparison=json_safe(comparison or {}),
                drift=drift,
            ),
        )
        logger.info(
            "risk review: %s (champion %s, challenger %s)",
            outcome.value,
            decision.champion_version,
            decision.challenger_version,
        )
        return decision

    try:
        trained = service.train_model(
            session,
            settings,
            now=now,
            as_of=now,
            out_dir=out_dir,
            activate=False,
            history=history,
        )
    except InvalidInputError as error:
        return record(
            DecisionOutcome.NOT_TRAINED,
            f"No challenger could be trained: {error.message}. The active model is unchanged.",
        )
    challenger = trained.model
    if champion is None or champion_artefact is None:
        repository.set_active(session, challenger, now=now)
        why = (
            "No model was active"
            if champion is None
            else f"The active model's file could not be used ({champion_problem})"
        )
        return record(
            DecisionOutcome.PROMOTED,
            f"{why}, so the challenger {challenger.version} is now active.",
            challenger=challenger,
        )

    since = _as_of(champion)
    order = np.argsort(history.appointment_id, kind="stable")
    positions = order[np.searchsorted(history.appointment_id[order], trained.test_appointment_ids)]
    unseen = history.start_s[positions] >= int(since.timestamp())
    y = trained.test_outcomes[unseen]
    since_day = uk_date(settings.calendar.today(since))
    if len(y) < MIN_COMPARISON_ROWS or not 0 < y.sum() < len(y):
        return record(
            DecisionOutcome.KEPT,
            f"Only {len(y)} appointments in the challenger's test period started after the "
            f"active model was trained (on outcomes before {since_day}), "
            f"{int(y.sum())} of them missed: too few to compare the two fairly, so the active "
            f"model {champion.version} is kept.",
            challenger=challenger,
        )
    champion_risk = champion_scores(history, champion_artefact, positions[unseen], settings)
    result = compare(
        y,
        trained.test_scores[unseen],
        champion_risk,
        replicates=settings.risk_bootstrap_replicates,
    )
    callable_rows = trained.test_callable[unseen]
    callable_y = y[callable_rows]
    comparison = result.as_dict()
    comparison["margin"] = settings.risk_challenger_margin
    comparison["period_from"] = since.isoformat()
    if 0 < callable_y.sum() < len(callable_y):
        comparison["callable"] = compare(
            callable_y,
            trained.test_scores[unseen][callable_rows],
            champion_risk[callable_rows],
            replicates=settings.risk_bootstrap_replicates,
        ).as_dict()
    low, high = result.auroc_difference_ci
    figures = (
        f"on {result.rows:,} appointments since {since_day} ({result.dnas:,} missed), the "
        f"challenger's AUROC was {result.challenger['auroc']:.3f} against the champion's "
        f"{result.champion['auroc']:.3f}: a difference of {result.auroc_difference:+.3f} "
        f"(95% paired interval {low:+.3f} to {high:+.3f})"
    )
    if may_be_worse(low, settings.risk_challenger_margin):
        return record(
            DecisionOutcome.KEPT,
            f"The challenger {challenger.version} may be worse than the active model "
            f"{champion.version}: {figures}, whose lower end is below the margin of "
            f"-{settings.risk_challenger_margin:.3f}. The active model is kept.",
            challenger=challenger,
            comparison=comparison,
        )
    repository.set_active(session, challenger, now=now)
    return record(
        DecisionOutcome.PROMOTED,
        f"The challenger {challenger.version} is not worse than {champion.version}: {figures}, "
        f"no lower than the margin of -{settings.risk_challenger_margin:.3f}. It has seen the "
        "latest outcomes, so it is now the active model.",
        challenger=challenger,
        comparison=comparison,
    )
