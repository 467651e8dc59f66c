"""Training, registering, activating and scoring DNA-risk models.

Services take a session and flush; the caller owns the transaction. Scores are for offering
help (calls, reminders, support), never for overbooking, discharge or penalties.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlalchemy.orm import Session

from app.console import NULL_PROGRESS, ProgressReporter
from app.db.base import utcnow
from app.errors import ConflictError, InvalidInputError, NotFoundError, NotReadyError
from app.reference.codes import ethnic_group
from app.risk import repository
from app.risk.artefacts import RiskArtefact, calibrate, load_artefact, save_artefact
from app.risk.card import build_card, write_card
from app.risk.evaluation import (
    fairness_table,
    group_labels,
    logistic_fit,
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
from app.risk.tables import RiskModel
from app.settings import Settings

logger = logging.getLogger("navigator.risk")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 500,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 50,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
    "random_state": 0,
}
# Domain knowledge as constraints (DOMAIN.md section 4): more and more recent missed
# appointments, a clinic's higher DNA rate and a longer lead time never lower the risk. They
# stop the trees from learning noisy steps, which on a trust's first year of data otherwise
# loses to the patient's prior DNA rate alone.
MONOTONIC: dict[str, int] = {
    "n_prior_dna": 1,
    "prior_dna_rate": 1,
    "shrunk_prior_dna_rate": 1,
    "dna_last_4": 1,
    "clinic_dna_rate": 1,
    "days_since_last_dna": -1,
    "lead_time_days": 1,
}
LOGISTIC_MAX_ROWS = 200_000
PRIOR_RATE_PSEUDOCOUNT = 2.0
TRAINING_STEPS = 8
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


@dataclass
class ScoredAppointment:
    appointment_id: int
    risk: float
    band: str
    reasons: list[str]


@dataclass
class ScoringResult:
    model_version: str
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


def band_of(risk: FloatArray, settings: Settings) -> npt.NDArray[np.str_]:
    return np.where(
        risk >= settings.risk_band_high,
        "high",
        np.where(risk >= settings.risk_band_medium, "medium", "low"),
    )


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


def _time_split(
    start_s: IntArray, test_share: float, calibration_share: float
) -> tuple[IntArray, IntArray, IntArray, int, int]:
    """Indices of fit, calibration and test rows by start time (earliest fits)."""
    calibration_from = int(np.quantile(start_s, 1 - test_share - calibration_share))
    test_from = int(np.quantile(start_s, 1 - test_share))
    fit = np.flatnonzero(start_s < calibration_from)
    calibration = np.flatnonzero((start_s >= calibration_from) & (start_s < test_from))
    test = np.flatnonzero(start_s >= test_from)
    return fit, calibration, test, calibration_from, test_from


def train_model(
    session: Session,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    out_dir: Path | None = None,
    activate: bool = True,
    progress: ProgressReporter = NULL_PROGRESS,
    history: AppointmentHistory | None = None,
) -> TrainingResult:
    """Train, calibrate, evaluate and register a model on outcomes known before `as_of`.

    `history` may be passed by callers that already hold the appointments as columns (the
    benchmark); otherwise every appointment is read from the database.
    """
    started = time.perf_counter()
    trained_at = utcnow()
    as_of = as_of or trained_at
    progress.update(total=TRAINING_STEPS, description="Loading appointments")
    if history is None:
        history = repository.load_history(session)
    progress.advance()

    cutoff = _epoch(as_of)
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

    start_s = history.start_s[eligible]
    fit, calibration, test, calibration_from, test_from = _time_split(
        start_s, settings.risk_test_share, settings.risk_calibration_share
    )
    for name, part in (("fitting", fit), ("calibration", calibration), ("test", test)):
        part_y = y_all[part]
        if len(part) == 0 or part_y.sum() == 0 or part_y.sum() == len(part):
            raise InvalidInputError(
                f"the {name} period has no DNAs or no attendances; add more history"
            )

    progress.update(description="Building features")
    include_ethnicity = settings.risk_include_ethnicity
    names = feature_names(include_ethnicity=include_ethnicity)
    mask = categorical_mask(names)
    vocabulary = Vocabulary.learn(history, eligible[fit])
    moments = scoring_moments(history, eligible, settings.call_horizon_days)
    features = build_features(
        history,
        eligible,
        moments,
        vocabulary,
        timezone=settings.timezone,
        include_ethnicity=include_ethnicity,
    )
    progress.advance()

    progress.update(description="Fitting gradient boosting")
    monotonic = [MONOTONIC.get(name, 0) for name in names]
    classifier = HistGradientBoostingClassifier(
        categorical_features=mask, monotonic_cst=monotonic, **HYPERPARAMETERS
    )
    classifier.fit(features[fit], y_all[fit])
    progress.advance()

    progress.update(description="Calibrating")
    raw_calibration = np.asarray(classifier.decision_function(features[calibration]), dtype=float)
    intercept, slope = logistic_fit(raw_calibration, y_all[calibration])
    calibration_params = {"a": slope, "b": intercept}
    artefact = RiskArtefact(
        classifier=classifier,
        calibration=calibration_params,
        feature_names=names,
        include_ethnicity=include_ethnicity,
        vocabulary=vocabulary,
        reference=_reference_row(features[fit], mask),
        version=_new_version(session, trained_at),
    )
    progress.advance()

    progress.update(description="Evaluating")
    y_test = y_all[test]
    p_test = artefact.predict_proba(features[test])
    metrics = summary_metrics(y_test, p_test)
    metrics["reliability"] = reliability_curve(y_test, p_test)
    progress.advance()

    progress.update(description="Fitting baselines")
    baselines, baseline_scores = _baselines(features, y_all, fit, test, names, mask)
    comparison = paired_differences(y_test, p_test, baseline_scores, np.random.default_rng(0))
    progress.advance()

    progress.update(description="Auditing fairness")
    test_rows = eligible[test]
    patient = history.patient[test_rows]
    groups = group_labels(
        {
            "imd_decile": history.imd_decile[patient],
            "core20": history.core20[patient],
            "age_band": features[test, names.index("age_band")],
            "sex": history.sex[patient],
            "ethnic_group": np.array(
                [ethnic_group(str(c)) for c in history.ethnic_category[patient]], dtype=object
            ),
        }
    )
    fairness = fairness_table(y_test, p_test, groups, gap_limit=settings.risk_fairness_gap_limit)
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
            "calibration_from": _iso(calibration_from),
            "test_from": _iso(test_from),
            "last_start": _iso(start_s.max()),
        },
        rows={
            "eligible": len(eligible),
            "dnas": dnas,
            "fit": len(fit),
            "calibration": len(calibration),
            "test": len(test),
            "excluded_navigator_called": excluded_called,
        },
        features=names,
        categorical=[name for name, cat in zip(names, mask, strict=True) if cat],
        include_ethnicity=include_ethnicity,
        hyperparameters={
            **HYPERPARAMETERS,
            "monotonic_constraints": MONOTONIC,
            "n_iter_fitted": int(classifier.n_iter_),
        },
        calibration={
            "method": "sigmoid (Platt) on the held-out calibration period",
            **calibration_params,
        },
        metrics=metrics,
        baselines=baselines,
        fairness=fairness,
        contact_choice=CONTACT_CHOICE,
        bands={"medium": settings.risk_band_medium, "high": settings.risk_band_high},
        call_horizon_days=settings.call_horizon_days,
        sha256=sha256,
        comparison=comparison,
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
        repository.set_active(session, model)
    progress.advance()
    seconds = time.perf_counter() - started
    logger.info("trained risk model %s on %d rows in %.1fs", model.version, len(eligible), seconds)
    return TrainingResult(model=model, card=card, directory=directory, seconds=seconds)


def _baselines(
    features: FloatArray,
    y: FloatArray,
    fit: IntArray,
    test: IntArray,
    names: list[str],
    mask: list[bool],
) -> tuple[dict[str, Any], dict[str, FloatArray]]:
    """The patient's prior DNA rate alone, and a logistic regression, on the same split.

    Returns their test-period metrics and their test-period scores (for paired comparison).
    """
    dna = features[:, names.index("n_prior_dna")]
    attended = features[:, names.index("n_prior_attended")]
    base_rate = float(y[fit].mean())
    prior_rate = (dna + PRIOR_RATE_PSEUDOCOUNT * base_rate) / (
        dna + attended + PRIOR_RATE_PSEUDOCOUNT
    )
    rng = np.random.default_rng(0)
    logistic_rows = fit if len(fit) <= LOGISTIC_MAX_ROWS else rng.choice(fit, LOGISTIC_MAX_ROWS)
    logistic = _logistic_baseline(names, mask).fit(features[logistic_rows], y[logistic_rows])
    scores = {
        "prior_dna_rate": prior_rate[test],
        "logistic_regression": np.asarray(
            logistic.predict_proba(features[test])[:, 1], dtype=float
        ),
    }
    return {name: summary_metrics(y[test], values) for name, values in scores.items()}, scores


# Registry.


def list_models(session: Session) -> list[RiskModel]:
    return repository.list_models(session)


def get_active_model(session: Session) -> RiskModel:
    model = repository.active_model(session)
    if model is None:
        raise NotReadyError("no risk model is active; train one with `navigator train`")
    return model


def load_model_artefact(model: RiskModel) -> RiskArtefact:
    return load_artefact(Path(model.artefact_path), model.artefact_sha256)


def activate_model(session: Session, version: str) -> RiskModel:
    """Make `version` the active model, after checking its artefact still loads."""
    model = repository.get_model(session, version)
    if model is None:
        raise NotFoundError(f"no risk model has version {version!r}")
    load_model_artefact(model)
    if model.active:
        raise ConflictError(f"risk model {version} is already active")
    repository.set_active(session, model)
    return model


# Scoring.


def score_appointments(
    session: Session,
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    store: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> ScoringResult:
    """Score every appointment starting in [start, end) with the active model.

    Upcoming appointments are scored with what is known now; past ones (a backtest) as they
    would have been at `max(booked_at, start_at - call horizon)`, so no outcome of the scored
    appointment or of anything later is used.
    """
    now = now or utcnow()
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
        return ScoringResult(model_version=model.version, timings=timings)
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
    logit = artefact.raw_logit(features)
    risk = calibrate(logit, artefact.calibration)
    lap("predict")
    reasons = explain(artefact, features, logit)
    bands = band_of(risk, settings)
    lap("reasons")
    result = ScoringResult(model_version=model.version, timings=timings)
    ids = history.appointment_id[rows].tolist()
    result.scored = [
        ScoredAppointment(appointment_id=i, risk=float(r), band=str(b), reasons=why)
        for i, r, b, why in zip(ids, risk.tolist(), bands.tolist(), reasons, strict=True)
    ]
    if store:
        scored_at = utcnow()
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
