"""Training, registering, activating and scoring DNA-risk models.

Services take a session and flush; the caller owns the transaction. Scores are for offering
help (calls, reminders, support), never for overbooking, discharge or penalties.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from app.console import NULL_PROGRESS, ProgressReporter
from app.errors import ConflictError, InvalidInputError, NotFoundError, NotReadyError
from app.risk import repository
from app.risk.artefacts import (
    RiskArtefact,
    calibrate,
    load_artefact,
    prior_rate_scores,
    save_artefact,
)
from app.risk.card import build_card, write_card
from app.risk.evaluation import (
    audit_groups,
    capture_at_capacity,
    fairness_table,
    group_calibration,
    logistic_fit,
    need_labels,
    paired_differences,
    reliability_curve,
    summary_metrics,
)
from app.risk.features import (
    AppointmentHistory,
    Vocabulary,
    build_features,
    categorical_mask,
    feature_names,
    scoring_moments,
)
from app.risk.reasons import explain
from app.risk.recalibration import apply_offsets, fit_offsets
from app.risk.recalibration import evaluate as evaluate_recalibration
from app.risk.recalibration import verdict as recalibration_verdict
from app.risk.selection import (
    COMMON,
    GRID,
    MONOTONIC,
    SELECTION_MAX_FIT_ROWS,
    informative_features,
    make_classifier,
    select_setting,
)
from app.risk.tables import RiskModel
from app.settings import Settings

logger = logging.getLogger("navigator.risk")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DAY_SECONDS = 86_400

# Hyperparameters are chosen per trust from `app.risk.selection.GRID`.
LOGISTIC_MAX_ROWS = 200_000
PRIOR_RATE_PSEUDOCOUNT = 2.0
TRAINING_STEPS = 9
CONTACT_CHOICE = (
    "Appointments that had a navigator call (an appointment_contacts row with channel 'call') "
    "are excluded from training, calibration and evaluation: a call changes the outcome it "
    "would be trained to predict, and at scoring time no call has happened yet, so contact "
    "cannot be a model input. The randomised hold-out is never called, so high-risk "
    "appointments stay represented through it. SMS reminders are standard care for everyone "
    "and are kept."
)


@dataclass
class TrainingResult:
    model: RiskModel
    card: dict[str, Any]
    directory: Path
    seconds: float
    # The test period as the procedure was tested on it (fitted and calibrated on earlier
    # outcomes only): appointment ids, outcomes (1 = DNA), the active scorer's risk, and
    # whether each appointment was callable. The monthly review compares a challenger with the
    # champion on these.
    test_appointment_ids: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_outcomes: FloatArray = field(default_factory=lambda: np.zeros(0))
    test_scores: FloatArray = field(default_factory=lambda: np.zeros(0))
    test_callable: BoolArray = field(default_factory=lambda: np.zeros(0, bool))


@dataclass
class ScoredAppointment:
    appointment_id: int
    risk: float
    band: str
    reasons: list[str]


@dataclass
class ScoringResult:
    model_version: str
    period: tuple[datetime, datetime]
    scored: list[ScoredAppointment] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def band_counts(self) -> dict[str, int]:
        counts = {"low": 0, "medium": 0, "high": 0}
        for row in self.scored:
            counts[row.band] += 1
        return counts


def _epoch(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat()


def band_of(risk: FloatArray, cutoffs: dict[str, float]) -> npt.NDArray[np.str_]:
    """Band of each risk by the model's cut-offs (`{"medium": ..., "high": ...}`)."""
    return np.where(
        risk >= cutoffs["high"],
        "high",
        np.where(risk >= cutoffs["medium"], "medium", "low"),
    )


def band_cutoffs(risk: FloatArray, day: IntArray, settings: Settings) -> dict[str, Any]:
    """Cut-offs from the trust's own distribution of callable appointments' risk, or fixed.

    "capacity": high is the share of a day's callable appointments that the navigators on duty
    can call (their daily capacity over the mean number per day), medium the next band of the
    same size, so "high" means "the queue can reach you" wherever the trust's DNA rate is.
    """
    capacity = settings.calls_navigators_on_duty * settings.calls_per_navigator_per_day
    fixed = {"medium": settings.risk_band_medium, "high": settings.risk_band_high}
    if settings.risk_band_method == "fixed" or len(risk) == 0:
        return {"method": "fixed", **fixed, "capacity_per_day": capacity}
    per_day = len(risk) / max(len(np.unique(day)), 1)
    share = min(capacity / per_day, 1.0) if per_day else 1.0
    high = float(np.quantile(risk, 1 - share))
    medium = float(np.quantile(risk, max(1 - 2 * share, 0.0)))
    return {
        "method": "capacity",
        "high": high,
        "medium": min(medium, high),
        "capacity_per_day": capacity,
        "callable_per_day": per_day,
        "high_share": share,
    }


def _reference_row(features: FloatArray, mask: list[bool]) -> FloatArray:
    """A typical appointment: the median of each numeric feature, the commonest category."""
    reference = np.full(features.shape[1], np.nan)
    for column, is_categorical in enumerate(mask):
        values = features[:, column]
        values = values[~np.isnan(values)]
        if len(values) == 0:
            continue
        if is_categorical:
            codes, counts = np.unique(values, return_counts=True)
            reference[column] = codes[np.argmax(counts)]
        else:
            reference[column] = float(np.median(values))
    return reference


def _logistic_baseline(names: list[str], mask: list[bool]) -> Pipeline:
    numeric = [i for i, cat in enumerate(mask) if not cat and names[i] != "clinic"]
    categorical = [i for i, cat in enumerate(mask) if cat and names[i] != "clinic"]
    transform = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(transform, LogisticRegression(max_iter=300))


def _new_version(session: Session, trained_at: datetime) -> str:
    base = f"dna-{trained_at:%Y%m%d-%H%M%S}"
    version, suffix = base, 1
    while repository.get_model(session, version) is not None:
        suffix += 1
        version = f"{base}-{suffix}"
    return version


@dataclass
class _Split:
    """Row positions (into the eligible appointments) of each period, earliest first."""

    fit: IntArray  # fits the model whose test-period figures the card reports
    calibration: IntArray  # calibrates it; also the validation period for the active scorer
    test: IntArray
    deploy_fit: IntArray  # every outcome before the latest slice: fits the deployed model
    deploy_calibration: IntArray  # the latest slice: calibrates the deployed model
    calibration_from: int
    test_from: int
    deploy_calibration_from: int


def _time_split(start_s: IntArray, test_share: float, calibration_share: float) -> _Split:
    """Fit, calibration and test rows by start time (earliest fits), and the refit's split."""
    calibration_from = int(np.quantile(start_s, 1 - test_share - calibration_share))
    test_from = int(np.quantile(start_s, 1 - test_share))
    deploy_from = int(np.quantile(start_s, 1 - calibration_share))
    return _Split(
        fit=np.flatnonzero(start_s < calibration_from),
        calibration=np.flatnonzero((start_s >= calibration_from) & (start_s < test_from)),
        test=np.flatnonzero(start_s >= test_from),
        deploy_fit=np.flatnonzero(start_s < deploy_from),
        deploy_calibration=np.flatnonzero(start_s >= deploy_from),
        calibration_from=calibration_from,
        test_from=test_from,
        deploy_calibration_from=deploy_from,
    )


def _check_moment_within_data(history: AppointmentHistory, cutoff: int, as_of: datetime) -> None:
    """A clear refusal when there is nothing to learn from before `as_of`."""
    if len(history) == 0:
        raise InvalidInputError("there are no appointments to train on: import an extract first")
    first_start = int(history.start_s.min())
    if cutoff <= first_start:
        raise InvalidInputError(
            f"training uses outcomes known before {as_of:%Y-%m-%d}, which is before the first "
            f"appointment in the data ({_iso(first_start)[:10]}): check the clock or --as-of"
        )


# More than this share of appointments booked after they started means the extract's columns
# are swapped or mis-parsed, not the odd late entry.
MAX_BOOKED_AFTER_START_SHARE = 0.2
MIN_HISTORY_DAYS = 28


def _check_dates(history: AppointmentHistory, eligible: IntArray) -> None:
    """Refuse extracts whose dates cannot be right: booked after the start for many rows, or
    every appointment starting at (nearly) the same moment."""
    start = history.start_s[eligible]
    booked = history.booked_s[eligible]
    late = int(np.sum(booked > start + DAY_SECONDS))
    if late > MAX_BOOKED_AFTER_START_SHARE * len(eligible):
        raise InvalidInputError(
            f"booked_at is after start_at for {late} of {len(eligible)} appointments with an "
            "outcome: the dates are out of order (are the columns swapped?); fix the extract"
        )
    span_days = (int(start.max()) - int(start.min())) / DAY_SECONDS
    if span_days < MIN_HISTORY_DAYS:
        what = (
            "start_at has the same value for every appointment"
            if span_days == 0
            else f"the appointments with an outcome span only {span_days:.0f} days"
        )
        raise InvalidInputError(
            f"{what}; training splits by time and needs at least {MIN_HISTORY_DAYS} days of "
            "appointments with outcomes"
        )


def train_model(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    as_of: datetime | None = None,
    out_dir: Path | None = None,
    activate: bool = True,
    progress: ProgressReporter = NULL_PROGRESS,
    history: AppointmentHistory | None = None,
) -> TrainingResult:
    """Select, test, refit, calibrate and register a model on outcomes known before `as_of`.

    The procedure is tested as it will be used: settings are chosen by rolling validation on
    the fitting period, fitted there, calibrated on the next period and tested on the latest,
    which nothing saw. The deployed model is then refitted the same way on every outcome
    before the latest slice, which calibrates it. `history` may be passed by callers that
    already hold the appointments as columns (the benchmark); otherwise every appointment is
    read from the database.
    """
    progress.update(total=TRAINING_STEPS, description="Loading appointments")
    if history is None:
        history = repository.load_history(session)
    progress.advance()
    threads = (
        threadpool_limits(limits=1, user_api="openmp")
        if len(history) < SMALL_TRUST_ROWS
        else nullcontext()
    )
    with threads:
        return _train_model(
            session,
            settings,
            now=now,
            as_of=as_of or now,
            out_dir=out_dir,
            activate=activate,
            progress=progress,
            history=history,
        )


# Below this many appointments the trees are fitted on one thread: OpenMP's per-split thread
# start-up dominates small fits, and on a busy shared machine it made them ten times slower.
SMALL_TRUST_ROWS = 50_000


def _train_model(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    as_of: datetime,
    out_dir: Path | None,
    activate: bool,
    progress: ProgressReporter,
    history: AppointmentHistory,
) -> TrainingResult:
    started = time.perf_counter()
    trained_at = now
    cutoff = _epoch(as_of)
    _check_moment_within_data(history, cutoff, as_of)
    code = history.attendance_code
    decided = np.isin(code, (3, 5, 6, 7))
    known = decided & (history.start_s < cutoff) & (history.recorded_s < cutoff)
    excluded_called = int(np.sum(known & history.called))
    eligible = np.flatnonzero(known & ~history.called)
    y_all = np.isin(code[eligible], (3, 7)).astype(float)
    dnas = int(y_all.sum())
    if len(eligible) < settings.risk_min_training_rows:
        raise InvalidInputError(
            f"only {len(eligible)} appointments have an outcome known before "
            f"{as_of:%Y-%m-%d}; training needs at least {settings.risk_min_training_rows}"
        )
    if dnas < settings.risk_min_training_dnas or dnas == len(eligible):
        raise InvalidInputError(
            f"{dnas} of {len(eligible)} appointments with a known outcome were DNAs; training "
            f"needs at least {settings.risk_min_training_dnas} DNAs and some attendances"
        )
    _check_dates(history, eligible)

    start_s = history.start_s[eligible]
    split = _time_split(start_s, settings.risk_test_share, settings.risk_calibration_share)
    for name, part in (
        ("fitting", split.fit),
        ("calibration", split.calibration),
        ("test", split.test),
        ("latest calibration", split.deploy_calibration),
    ):
        part_y = y_all[part]
        if len(part) == 0 or part_y.sum() == 0 or part_y.sum() == len(part):
            dates = (
                f" (appointments from {_iso(start_s[part].min())[:10]} to "
                f"{_iso(start_s[part].max())[:10]})"
                if len(part)
                else ""
            )
            raise InvalidInputError(
                f"the {name} period{dates} has {int(part_y.sum())} DNAs among {len(part)} "
                "appointments with an outcome: training needs both DNAs and attendances in each "
                "period; add more history"
            )

    progress.update(description="Building features")
    include_ethnicity = settings.risk_include_ethnicity
    names = feature_names(include_ethnicity=include_ethnicity)
    mask = categorical_mask(names)
    vocabulary = Vocabulary.learn(history, eligible[split.deploy_fit])
    moments = scoring_moments(history, eligible, settings.call_horizon_days)
    features = build_features(
        history,
        eligible,
        moments,
        vocabulary,
        timezone=settings.timezone,
        include_ethnicity=include_ethnicity,
    )
    choice = informative_features(features, names, split.fit, always_drop={})
    if not choice.used:
        raise InvalidInputError(
            "no feature varies between appointments in this extract: "
            + "; ".join(f"{name}: {why}" for name, why in choice.dropped.items())
        )
    used = [names.index(name) for name in choice.used]
    used_mask = [mask[i] for i in used]
    x = features[:, used]
    progress.advance()

    progress.update(description="Choosing settings by rolling validation")
    selection = select_setting(x, y_all, start_s, split.fit, choice.used, used_mask)
    setting = GRID[selection.chosen]
    progress.advance()

    progress.update(description="Testing the procedure")
    tested = make_classifier(setting, choice.used, used_mask).fit(x[split.fit], y_all[split.fit])
    raw = np.asarray(tested.decision_function(x[split.calibration]), dtype=float)
    intercept, slope = logistic_fit(raw, y_all[split.calibration])
    tested_calibration = {"a": slope, "b": intercept}
    p_calibration = calibrate(raw, tested_calibration)
    p_test = calibrate(
        np.asarray(tested.decision_function(x[split.test]), dtype=float), tested_calibration
    )
    base_rate = float(y_all[split.fit].mean())
    baselines_on = _baseline_scorers(x, y_all, split.fit, choice.used, used_mask)
    calibration_scores = {
        "model": p_calibration,
        "logistic_regression": baselines_on["logistic_regression"](split.calibration),
        "prior_dna_rate": prior_rate_scores(features[split.calibration], names, base_rate),
    }
    validation = _validation_scores(y_all[split.calibration], calibration_scores)
    active_scorer = max(validation, key=lambda name: validation[name]["auroc"])
    progress.advance()

    progress.update(description="Evaluating against the baselines")
    y_test = y_all[split.test]
    lead_days = (history.start_s[eligible] - history.booked_s[eligible]) / DAY_SECONDS
    callable_test = lead_days[split.test] >= settings.call_horizon_days
    test_days = (history.start_s[eligible[split.test]] // DAY_SECONDS).astype(np.int64)
    capacity = settings.calls_navigators_on_duty * settings.calls_per_navigator_per_day
    baseline_scores = {
        "prior_dna_rate": prior_rate_scores(features[split.test], names, base_rate),
        "logistic_regression": baselines_on["logistic_regression"](split.test),
        "default_gradient_boosting": baselines_on["default_gradient_boosting"](split.test),
    }
    metrics = _population_metrics(y_test, p_test, callable_test, test_days, capacity)
    metrics["reliability"] = reliability_curve(y_test, p_test)
    baselines = {
        name: _population_metrics(y_test, values, callable_test, test_days, capacity)
        for name, values in baseline_scores.items()
    }
    rng = np.random.default_rng(0)
    comparison = paired_differences(y_test, p_test, baseline_scores, rng)
    comparison_callable = (
        paired_differences(
            y_test[callable_test],
            p_test[callable_test],
            {name: values[callable_test] for name, values in baseline_scores.items()},
            rng,
        )
        if 0 < y_test[callable_test].sum() < callable_test.sum()
        else {}
    )
    progress.advance()

    progress.update(description="Auditing fairness and calibration by group")
    test_rows = eligible[split.test]
    groups = audit_groups(
        history, test_rows, features[split.test, names.index("age_band")], need=False
    )
    fairness = fairness_table(y_test, p_test, groups, gap_limit=settings.risk_fairness_gap_limit)
    groups["need"] = need_labels(history, history.patient[test_rows])
    test_scores = {
        "model": p_test,
        "logistic_regression": baseline_scores["logistic_regression"],
        "prior_dna_rate": baseline_scores["prior_dna_rate"],
    }[active_scorer]
    age_column = names.index("age_band")
    attribute = settings.risk_group_recalibration_attribute
    recalibration = evaluate_recalibration(
        attribute,
        (
            y_all[split.calibration],
            calibration_scores[active_scorer],
            audit_groups(
                history, eligible[split.calibration], features[split.calibration, age_column]
            )[attribute],
        ),
        (y_test, test_scores, groups[attribute]),
    )
    recalibrate = settings.risk_group_recalibration and recalibration["helps"]
    if recalibrate:
        test_scores = apply_offsets(
            test_scores, groups[attribute], recalibration["offsets_from_calibration_period"]
        )
    calibration_by_group = group_calibration(
        y_test,
        p_test,
        groups,
        limit=settings.risk_calibration_limit,
        rng=np.random.default_rng(1),
        replicates=settings.risk_bootstrap_replicates,
    )
    progress.advance()

    progress.update(description="Refitting on every outcome")
    deployed = make_classifier(setting, choice.used, used_mask).fit(
        x[split.deploy_fit], y_all[split.deploy_fit]
    )
    raw_latest = np.asarray(deployed.decision_function(x[split.deploy_calibration]), dtype=float)
    intercept, slope = logistic_fit(raw_latest, y_all[split.deploy_calibration])
    calibration_params = {"a": slope, "b": intercept}
    logistic = None
    if active_scorer == "logistic_regression":
        logistic = _fit_logistic(x, y_all, np.arange(len(eligible)), choice.used, used_mask)
    artefact = RiskArtefact(
        classifier=deployed,
        calibration=calibration_params,
        feature_names=names,
        include_ethnicity=include_ethnicity,
        vocabulary=vocabulary,
        reference=_reference_row(features[split.deploy_fit], mask),
        version=_new_version(session, trained_at),
        used_features=choice.used,
        scorer=active_scorer,
        logistic=logistic,
        base_rate=float(y_all.mean()),
    )
    latest = split.deploy_calibration
    if recalibrate:
        artefact.group_attribute = attribute
        artefact.group_offsets = fit_offsets(
            y_all[latest],
            artefact.risk(features[latest]),
            audit_groups(history, eligible[latest], features[latest, age_column])[attribute],
        )
    recalibration["applied_offsets"] = dict(artefact.group_offsets)
    recalibration["setting_on"] = settings.risk_group_recalibration
    recalibration["applied"] = bool(recalibrate)
    recalibration["verdict"] = recalibration_verdict(
        recalibration, settings.risk_group_recalibration, bool(recalibrate)
    )
    latest_callable = lead_days[latest] >= settings.call_horizon_days
    latest_risk = scorer_risk(artefact, history, eligible[latest], features[latest])[
        latest_callable
    ]
    latest_days = (history.start_s[eligible[latest]] // DAY_SECONDS)[latest_callable]
    bands = band_cutoffs(latest_risk, latest_days.astype(np.int64), settings)
    progress.advance()

    progress.update(description="Saving the model")
    directory = (out_dir or settings.models_dir) / artefact.version
    path, sha256 = save_artefact(artefact, directory)
    card = build_card(
        version=artefact.version,
        trained_at=trained_at,
        as_of=as_of,
        window={
            "first_start": _iso(start_s.min()),
            "calibration_from": _iso(split.calibration_from),
            "test_from": _iso(split.test_from),
            "deployed_calibration_from": _iso(split.deploy_calibration_from),
            "last_start": _iso(start_s.max()),
        },
        rows={
            "eligible": len(eligible),
            "dnas": dnas,
            "fit": len(split.fit),
            "calibration": len(split.calibration),
            "test": len(split.test),
            "test_callable": int(callable_test.sum()),
            "deployed_fit": len(split.deploy_fit),
            "deployed_calibration": len(split.deploy_calibration),
            "excluded_navigator_called": excluded_called,
        },
        features=names,
        used_features=choice.used,
        dropped_features=choice.dropped,
        categorical=[name for name, cat in zip(choice.used, used_mask, strict=True) if cat],
        include_ethnicity=include_ethnicity,
        hyperparameters={
            "chosen": selection.chosen,
            **setting,
            **COMMON,
            "monotonic_constraints": MONOTONIC if setting["monotonic"] else {},
            "n_iter_fitted": int(deployed.n_iter_),
        },
        selection={
            "method": (
                f"rolling temporal validation: {selection.folds} folds inside the fitting "
                "period, each fitted on the appointments before it (at most "
                f"{SELECTION_MAX_FIT_ROWS:,} rows) and scored on the next slice; the best mean "
                "AUROC wins"
            ),
            "folds": selection.folds,
            "grid": selection.scores,
            "chosen": selection.chosen,
        },
        calibration={
            "method": (
                "sigmoid (Platt) on the latest slice of outcomes, after refitting on every "
                "outcome before it"
            ),
            **calibration_params,
        },
        metrics=metrics,
        baselines=baselines,
        fairness=fairness,
        calibration_by_group=calibration_by_group,
        contact_choice=CONTACT_CHOICE,
        bands=bands,
        call_horizon_days=settings.call_horizon_days,
        sha256=sha256,
        comparison=comparison,
        comparison_callable=comparison_callable,
        validation=validation,
        active_scorer=active_scorer,
        group_recalibration=recalibration,
    )
    write_card(card, directory)
    model = RiskModel(
        version=artefact.version,
        artefact_path=str(path),
        artefact_sha256=sha256,
        trained_at=trained_at,
        card=card,
        active=False,
    )
    session.add(model)
    session.flush()
    if activate:
        repository.set_active(session, model, now=now)
    progress.advance()
    seconds = time.perf_counter() - started
    logger.info("trained risk model %s on %d rows in %.1fs", model.version, len(eligible), seconds)
    return TrainingResult(
        model=model,
        card=card,
        directory=directory,
        seconds=seconds,
        test_appointment_ids=history.appointment_id[test_rows],
        test_outcomes=y_test,
        test_scores=test_scores,
        test_callable=callable_test,
    )


def _population_metrics(
    y: FloatArray, p: FloatArray, callable_rows: BoolArray, day: IntArray, capacity: int
) -> dict[str, Any]:
    """Metrics on every test appointment, on the callable ones, and capture at capacity."""
    metrics = summary_metrics(y, p)
    metrics["callable"] = summary_metrics(y[callable_rows], p[callable_rows])
    metrics["capture_at_capacity"] = capture_at_capacity(
        y[callable_rows], p[callable_rows], day[callable_rows], capacity
    )
    return metrics


def _validation_scores(y: FloatArray, scores: dict[str, FloatArray]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "auroc": float(roc_auc_score(y, p)),
            "average_precision": float(average_precision_score(y, p)),
        }
        for name, p in scores.items()
    }


def _fit_logistic(
    x: FloatArray, y: FloatArray, rows: IntArray, names: list[str], mask: list[bool]
) -> Pipeline:
    rng = np.random.default_rng(0)
    if len(rows) > LOGISTIC_MAX_ROWS:
        rows = rng.choice(rows, LOGISTIC_MAX_ROWS, replace=False)
    return _logistic_baseline(names, mask).fit(x[rows], y[rows])


def _baseline_scorers(
    x: FloatArray, y: FloatArray, fit: IntArray, names: list[str], mask: list[bool]
) -> dict[str, Callable[[IntArray], FloatArray]]:
    """A logistic regression and a default-settings gradient-boosting model on the same
    informative features and fitting rows, as functions of the rows to score."""
    logistic = _fit_logistic(x, y, fit, names, mask)
    default = HistGradientBoostingClassifier(random_state=0).fit(x[fit], y[fit])

    def logistic_scores(rows: IntArray) -> FloatArray:
        return np.asarray(logistic.predict_proba(x[rows])[:, 1], dtype=float)

    def default_scores(rows: IntArray) -> FloatArray:
        return np.asarray(default.predict_proba(x[rows])[:, 1], dtype=float)

    return {"logistic_regression": logistic_scores, "default_gradient_boosting": default_scores}


# Registry.


def list_models(session: Session) -> list[RiskModel]:
    return repository.list_models(session)


def get_active_model(session: Session) -> RiskModel:
    model = repository.active_model(session)
    if model is None:
        raise NotReadyError("no risk model is active; train one with `navigator train`")
    return model


def model_cutoffs(model: RiskModel, settings: Settings) -> dict[str, float]:
    """The band cut-offs recorded on the model's card (fixed settings for older cards)."""
    bands = model.card.get("bands") or {}
    if settings.risk_band_method == "fixed" or "high" not in bands:
        return {"medium": settings.risk_band_medium, "high": settings.risk_band_high}
    return {"medium": float(bands["medium"]), "high": float(bands["high"])}


def scorer_risk(
    artefact: RiskArtefact,
    history: AppointmentHistory,
    rows: IntArray,
    features: FloatArray,
    logit: FloatArray | None = None,
) -> FloatArray:
    """The risk the queue uses for `rows` (positions in `history`, whose features are
    `features`): the artefact's active scorer, with per-group recalibration when the artefact
    carries it (app/risk/recalibration.py)."""
    risk = artefact.risk(features, logit)
    if not artefact.group_offsets:
        return risk
    labels = audit_groups(history, rows, features[:, artefact.feature_names.index("age_band")])[
        artefact.group_attribute
    ]
    return apply_offsets(risk, labels, artefact.group_offsets)


def load_model_artefact(model: RiskModel) -> RiskArtefact:
    return load_artefact(Path(model.artefact_path), model.artefact_sha256)


def activate_model(session: Session, version: str, *, now: datetime) -> RiskModel:
    """Make `version` the active model, after checking its artefact still loads."""
    model = repository.get_model(session, version)
    if model is None:
        raise NotFoundError(f"no risk model has version {version!r}")
    load_model_artefact(model)
    if model.active:
        raise ConflictError(f"risk model {version} is already active")
    repository.set_active(session, model, now=now)
    return model


# Scoring.


def score_appointments(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    store: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> ScoringResult:
    """Score every appointment starting in [start, end) with the active model.

    Upcoming appointments are scored with what is known now; past ones (a backtest) as they
    would have been at `max(booked_at, start_at - call horizon)`, so no outcome of the scored
    appointment or of anything later is used.
    """
    start = start or now
    end = end or start + timedelta(days=14)
    if end <= start:
        raise InvalidInputError("the scoring period must end after it starts")
    model = get_active_model(session)
    artefact = load_model_artefact(model)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        timings[stage] = time.perf_counter() - clock
        clock = time.perf_counter()
        if on_stage is not None:
            on_stage(stage)

    history = repository.load_history(
        session, repository.patients_with_appointments_between(start, end)
    )
    rows = np.flatnonzero((history.start_s >= _epoch(start)) & (history.start_s < _epoch(end)))
    lap("fetch")
    if len(rows) == 0:
        return ScoringResult(model_version=model.version, period=(start, end), timings=timings)
    now_s = _epoch(now)
    backtest = scoring_moments(history, rows, settings.call_horizon_days)
    moments = np.where(history.start_s[rows] > now_s, now_s, backtest)
    features = build_features(
        history,
        rows,
        moments,
        artefact.vocabulary,
        timezone=settings.timezone,
        include_ethnicity=artefact.include_ethnicity,
    )
    lap("features")
    threads = (
        threadpool_limits(limits=1, user_api="openmp")
        if len(rows) < SMALL_TRUST_ROWS
        else nullcontext()
    )
    with threads:
        logit = artefact.raw_logit(features)
        risk = scorer_risk(artefact, history, rows, features, logit)
        lap("predict")
        reasons = explain(artefact, features, logit)
    bands = band_of(risk, model_cutoffs(model, settings))
    lap("reasons")
    result = ScoringResult(model_version=model.version, period=(start, end), timings=timings)
    ids = history.appointment_id[rows].tolist()
    result.scored = [
        ScoredAppointment(appointment_id=i, risk=float(r), band=str(b), reasons=why)
        for i, r, b, why in zip(ids, risk.tolist(), bands.tolist(), reasons, strict=True)
    ]
    if store:
        scored_at = now
        repository.upsert_scores(
            session,
            [
                {
                    "appointment_id": row.appointment_id,
                    "model_version": model.version,
                    "risk": row.risk,
                    "band": row.band,
                    "reasons": row.reasons,
                    "scored_at": scored_at,
                }
                for row in result.scored
            ],
        )
    lap("store")
    logger.info("scored %d appointments with %s", len(result.scored), model.version)
    return result
