"""The benefit model: who a navigator call helps, learnt from the programme's own trial.

**Method: a call-effect model anchored on the risk score, fitted on the randomised contrast.**
For each assigned appointment the chance of a DNA is modelled on the log-odds scale as

    logit P(DNA) = (a0 + (1 + a1) x logit(risk))  +  called x (b . z)

where `risk` is the risk model's stored score (the baseline, recalibrated by two
coefficients), `called` is 1 when a call was queued, and `z` are the call's effect modifiers:
the log-odds of risk, lead time (2 to 6 weeks, 6 weeks or more, as the subgroup report bands
it), first appointment, interpreter, communication need, learning disability, Core20, no SMS
channel, IMD decile and age. It is fitted by penalised maximum likelihood (scipy L-BFGS; a
ridge penalty per fitted row on the modifiers, chosen by blocked cross-validation over the
weeks, none on the baseline or the call's average effect) on the **would-be-called stratum**
only (`would_be_called`, below): the call-arm appointments a call was queued for and the
hold-out appointments the queue would have called had they not been held out. Within that
stratum the arms are randomised, so the coefficients `b` estimate how the call's effect
varies, not who the queue happened to pick. The benefit of calling is
`P(DNA | no call) - P(DNA | call)`, the expected DNAs the call avoids.

Why this and not a T-learner or an uplift library (the first version was a T-learner with two
`HistGradientBoostingClassifier`s; `causalml` pulls in torch, lightgbm and xgboost, and
`scikit-uplift` has had no release since 2022):

- **Where there is data to learn from.** The risk policy calls the top of the ranking, so
  called appointments exist only there: below the day's cut-off nobody was called, and a
  learner must extrapolate. Boosted trees extrapolate flat, so the T-learner's two models
  disagreed in exactly the region the benefit policy explores; a model with the effect on the
  log-odds scale carries what the trial shows (for example "the call helps more six weeks
  ahead") to patients the queue has not yet called, and the risk score, known for everyone,
  anchors the baseline.
- **Measured on the synthetic trust** (`navigator simulate targeting`, 3 repeats each,
  4 December 2026): with heterogeneous true effects the T-learner's ranking avoided as many
  DNAs per call as ranking by the risk score alone (-0.4%), this model 10% more; with one
  effect for everyone the T-learner lost 23% against the risk score, this model 12% (the cost
  of exploration and the floors is 7%).
- Fourteen coefficients: quick to fit (milliseconds on 50,000 rows), read by a person on the
  model card, stored as plain numbers (no pickled estimator to trust).

The switching rule counts hold-out outcomes only, since they are what makes the whole
estimate checkable, and the out-of-time Qini interval below must be above 0 before the queue
uses the model.

**Validation, out of time, randomised, rolling origin.** The queue's model is fitted on the
earlier weeks and checked on the latest `validation_share` of weeks; so that a year's trial
is not judged on a quarter of it, the same fit is repeated from earlier origins
(`fit_out_of_time`: `folds` folds of `validation_share` each, every fold scored by a model
fitted only on the weeks before it) and all the folds' rows are checked together by a Qini
curve on the randomised contrast
itself (call arm against hold-out): appointments ranked by predicted benefit, at each top
fraction the DNAs the call arm avoided relative to the hold-out, scaled to the call arm's size.
Capacity calls only part of the call arm, so over the whole arm the contrast is diluted by
everyone a call never reached; the check therefore uses the *would-be-called stratum*
(`would_be_called`): each day, the call-arm appointments that got a call and the hold-out
appointments whose queue priority was at least that day's lowest called priority, i.e. those
the queue would have called had they not been held out. Membership depends only on the
appointment's own priority and the day's cut-off, never on an outcome, so within the stratum
the arms are still randomised. The area between the curve and random ranking (per call-arm
appointment) is the headline figure; a bootstrap (resampling appointments within each arm)
gives its 95% interval. The same area for ranking by risk is reported beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from app.errors import InvalidInputError
from app.risk.artefacts import TamperedArtefactError, sha256_of

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FEATURES: tuple[str, ...] = (
    "risk",
    "lead_time_days",
    "first_attendance",
    "interpreter_needed",
    "communication_need",
    "learning_disability",
    "core20",
    "no_sms_channel",
    "imd_decile",
    "age_years",
)
# The call's effect modifiers (z above), named for the model card.
EFFECT_TERMS: tuple[str, ...] = (
    "average effect",
    "log-odds of risk",
    "lead time 2 to 6 weeks",
    "lead time 6 weeks or more",
    "first appointment",
    "interpreter needed",
    "communication need",
    "learning disability",
    "Core20",
    "no SMS channel",
    "IMD decile (per 10)",
    "age (per 100 years)",
)
BASELINE_TERMS: tuple[str, ...] = ("baseline intercept", "baseline slope on log-odds of risk")
# Ridge penalty on the effect modifiers (not on the baseline or the average effect), per
# fitted row (the objective is the mean log-loss plus the penalty times the squared
# coefficients): a prior that the call's effect is the same for everyone until the trial
# shows otherwise. Chosen from the grid by blocked cross-validation over the weeks fitted
# (`choose_penalty`); on the synthetic trust 0.02 kept the heterogeneous gain with the least
# loss when there is none, 0.2 lost the gain, and a trial with one sharp modifier (a call that
# helps only first appointments) needs 0.
PENALTY_GRID: tuple[float, ...] = (0.0, 0.002, 0.02, 0.2)
DEFAULT_PENALTY = 0.02
CV_BLOCKS = 4
PROBABILITY_CLIP = 1e-4
QINI_POINTS = 20
ARTEFACT_FILE = "benefit.json"
ARTEFACT_KIND = "navigator-call-effect-model/1"


@dataclass
class TargetingColumns:
    """What the benefit model sees of each assigned appointment, as columns.

    `risk` is the stored DNA risk at assignment (NaN when unscored); booleans are 0/1;
    `first_attendance` 1, 0 or NaN; `imd_decile` NaN when unknown.
    """

    risk: FloatArray
    lead_time_days: FloatArray
    first_attendance: FloatArray
    interpreter_needed: FloatArray
    communication_need: FloatArray
    learning_disability: FloatArray
    core20: FloatArray
    no_sms_channel: FloatArray
    imd_decile: FloatArray
    age_years: FloatArray

    def matrix(self) -> FloatArray:
        return np.column_stack(
            [np.asarray(getattr(self, name), dtype=np.float64) for name in FEATURES]
        )

    def __len__(self) -> int:
        return len(self.risk)


def _logit(probability: FloatArray) -> FloatArray:
    clipped = np.clip(probability, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.asarray(special.logit(clipped), dtype=np.float64)


def _expit(value: FloatArray) -> FloatArray:
    return np.asarray(special.expit(value), dtype=np.float64)


def _columns(features: FloatArray, fill_risk: float) -> tuple[FloatArray, FloatArray]:
    """(logit of risk, effect design z) for a feature matrix in `FEATURES` order."""
    column = {name: features[:, index] for index, name in enumerate(FEATURES)}
    risk_logit = _logit(np.where(np.isnan(column["risk"]), fill_risk, column["risk"]))
    lead = np.nan_to_num(column["lead_time_days"], nan=0.0)
    design = np.column_stack(
        [
            np.ones(len(features)),
            risk_logit,
            (lead >= 14.0) & (lead < 42.0),
            lead >= 42.0,
            np.nan_to_num(column["first_attendance"], nan=0.0),
            np.nan_to_num(column["interpreter_needed"], nan=0.0),
            np.nan_to_num(column["communication_need"], nan=0.0),
            np.nan_to_num(column["learning_disability"], nan=0.0),
            np.nan_to_num(column["core20"], nan=0.0),
            np.nan_to_num(column["no_sms_channel"], nan=0.0),
            np.nan_to_num(column["imd_decile"], nan=5.5) / 10.0,
            np.nan_to_num(column["age_years"], nan=50.0) / 100.0,
        ]
    ).astype(np.float64)
    return risk_logit, design


@dataclass
class BenefitArtefact:
    """The fitted coefficients; `benefit` = P(DNA | no call) - P(DNA | call)."""

    baseline: FloatArray  # BASELINE_TERMS
    effect: FloatArray  # EFFECT_TERMS
    fill_risk: float  # the risk used for an unscored appointment (training stratum's median)
    version: str
    penalty: float = DEFAULT_PENALTY
    feature_names: list[str] = field(default_factory=lambda: list(FEATURES))

    def benefit(self, features: FloatArray) -> FloatArray:
        if len(features) == 0:
            return np.zeros(0)
        risk_logit, design = _columns(features, self.fill_risk)
        untreated = self.baseline[0] + (1.0 + self.baseline[1]) * risk_logit
        return _expit(untreated) - _expit(untreated + design @ self.effect)

    def coefficients(self) -> dict[str, float]:
        """Every coefficient by name (log-odds), for the model card."""
        named = zip((*BASELINE_TERMS, *EFFECT_TERMS), (*self.baseline, *self.effect), strict=True)
        return {name: float(value) for name, value in named}


def _solve(
    risk_logit: FloatArray, matrix: FloatArray, y: FloatArray, penalty: float
) -> FloatArray | None:
    """Penalised maximum likelihood: the coefficients, or None when L-BFGS did not converge."""
    # No penalty on the baseline's two coefficients or the call's average effect.
    weights = np.full(matrix.shape[1], penalty * len(y))
    weights[:3] = 0.0

    def objective(beta: FloatArray) -> tuple[float, FloatArray]:
        eta = risk_logit + matrix @ beta
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta) + np.sum(weights * beta**2))
        gradient = matrix.T @ (_expit(eta) - y) + 2.0 * weights * beta
        return loss, np.asarray(gradient, dtype=np.float64)

    solution = optimize.minimize(objective, np.zeros(matrix.shape[1]), jac=True, method="L-BFGS-B")
    if not solution.success or not np.all(np.isfinite(solution.x)):
        return None
    return np.asarray(solution.x, dtype=np.float64)


def _log_loss(risk_logit: FloatArray, matrix: FloatArray, y: FloatArray, beta: FloatArray) -> float:
    eta = risk_logit + matrix @ beta
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


def choose_penalty(
    risk_logit: FloatArray, matrix: FloatArray, y: FloatArray, blocks: IntArray
) -> float:
    """The grid's penalty with the least held-out log-loss over contiguous blocks of weeks
    (each block held out in turn); the larger penalty wins a tie."""
    losses: dict[float, float] = {}
    for penalty in PENALTY_GRID:
        total = 0.0
        for block in np.unique(blocks):
            held = blocks == block
            beta = _solve(risk_logit[~held], matrix[~held], y[~held], penalty)
            if beta is None:
                total = math.inf
                break
            total += _log_loss(risk_logit[held], matrix[held], y[held], beta)
        losses[penalty] = total
    best = min(losses.values())
    return max(penalty for penalty, loss in losses.items() if loss <= best + 1e-9)


def fit_benefit_model(
    features: FloatArray,
    called: BoolArray,
    dna: BoolArray,
    *,
    version: str,
    day: IntArray | None = None,
    penalty: float | None = None,
) -> BenefitArtefact:
    """Fit the model on would-be-called stratum rows: `called` True for rows a call was
    queued for, False for the held-out rows the queue would have called. The penalty is
    chosen by `choose_penalty` over `CV_BLOCKS` blocks of the rows' queue `day`s unless given."""
    called = np.asarray(called, dtype=bool)
    y = np.asarray(dna, dtype=np.float64)
    for name, part in (("called", called), ("held-out", ~called)):
        if part.sum() == 0 or y[part].sum() == 0 or y[part].sum() == part.sum():
            raise InvalidInputError(
                f"the {name} appointments have no DNAs or no attendances; the benefit model "
                "needs both in each arm"
            )
    risk = features[:, FEATURES.index("risk")]
    known = risk[~np.isnan(risk)]
    fill_risk = float(np.median(known)) if len(known) else float(y.mean())
    risk_logit, design = _columns(features, fill_risk)
    matrix = np.column_stack([np.ones(len(y)), risk_logit, called[:, None] * design])
    if penalty is None:
        days = np.zeros(len(y), dtype=np.int64) if day is None else np.asarray(day)
        ranks = np.searchsorted(np.unique(days), days)
        blocks = (ranks * CV_BLOCKS) // max(int(ranks.max()) + 1, 1)
        penalty = (
            choose_penalty(risk_logit, matrix, y, blocks)
            if len(np.unique(blocks)) > 1
            else DEFAULT_PENALTY
        )
    beta = _solve(risk_logit, matrix, y, penalty)
    if beta is None:
        raise InvalidInputError(
            "the benefit model did not converge; the trial data may be too few or too uniform"
        )
    return BenefitArtefact(
        baseline=beta[:2], effect=beta[2:], fill_risk=fill_risk, version=version, penalty=penalty
    )


# Rolling-origin validation.


@dataclass
class OutOfTime:
    """The model the queue would use and its rolling-origin validation rows.

    `cuts` are the queue days where each validation fold starts (ascending) and `end` the day
    after the last; every row of `check` was scored by a model fitted only on the
    would-be-called rows of days before its own fold. `artefact` is the last fold's model,
    fitted on every day before `cuts[-1]`, the one validated on the latest weeks."""

    artefact: BenefitArtefact
    check: BoolArray
    benefit: FloatArray  # for the rows of `check`, in their order
    cuts: list[int]
    folds_used: int


def fold_cuts(day: IntArray, share: float, folds: int) -> list[int]:
    """The first queue day of each validation fold: each fold is `share` of the days, the
    latest last; as many folds as fit while some earlier weeks remain to learn from."""
    folds = max(1, min(folds, math.ceil(1.0 / share) - 1))
    return [int(np.quantile(day, 1.0 - k * share)) for k in range(folds, 0, -1)]


def fit_out_of_time(
    features: FloatArray,
    called: BoolArray,
    dna: BoolArray,
    day: IntArray,
    stratum: BoolArray,
    *,
    share: float,
    folds: int,
    version: str,
) -> OutOfTime:
    """Rolling origin: for each fold, fit on the would-be-called rows of the days before it
    and score the fold's would-be-called rows. An early fold whose past is too thin to fit
    (an arm with no DNAs or no attendances) is left out; the last one never is."""
    day = np.asarray(day)
    cuts = fold_cuts(day, share, folds)
    ends = [*cuts[1:], int(day.max()) + 1]
    benefit = np.full(len(day), np.nan)
    check = np.zeros(len(day), dtype=bool)
    artefact: BenefitArtefact | None = None
    used = 0
    for index, (start, end) in enumerate(zip(cuts, ends, strict=True)):
        past = (day < start) & stratum
        last = index == len(cuts) - 1
        try:
            model = fit_benefit_model(
                features[past], called[past], dna[past], version=version, day=day[past]
            )
        except InvalidInputError:
            if last:
                raise
            continue
        rows = (day >= start) & (day < end) & stratum
        benefit[rows] = model.benefit(features[rows])
        check |= rows
        used += 1
        if last:
            artefact = model
    if artefact is None:  # unreachable: the last fold raises instead
        raise InvalidInputError("the benefit model could not be fitted on the trial's weeks")
    return OutOfTime(
        artefact=artefact, check=check, benefit=benefit[check], cuts=cuts, folds_used=used
    )


# Qini curve.


def would_be_called(
    priority: FloatArray, day: IntArray, call_arm: BoolArray, called: BoolArray
) -> BoolArray:
    """Rows the queue called, or would have called had they not been held out (see above).

    A day whose call arm was called in full (capacity not binding) keeps all its rows.
    """
    priority = np.asarray(priority, dtype=np.float64)
    day = np.asarray(day)
    call_arm = np.asarray(call_arm, dtype=bool)
    called = np.asarray(called, dtype=bool)
    keep = np.zeros(len(priority), dtype=bool)
    for value in np.unique(day):
        rows = day == value
        arm_rows = rows & call_arm
        if not (arm_rows & ~called).any():
            keep |= rows
            continue
        if not (arm_rows & called).any():
            continue
        cut_off = priority[arm_rows & called].min()
        keep |= (arm_rows & called) | (rows & ~call_arm & (priority >= cut_off))
    return keep


def qini_curve(
    score: FloatArray, call_arm: BoolArray, dna: BoolArray, points: int = QINI_POINTS
) -> tuple[FloatArray, FloatArray]:
    """(fractions, gain): ranking by `score` (highest first), at each top fraction the DNAs the
    call arm avoided against the hold-out, scaled to the call arm's size, per call-arm
    appointment in the whole sample. Randomised contrast: `call_arm` is the assigned arm."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    t = np.asarray(call_arm, dtype=bool)[order]
    y = np.asarray(dna, dtype=float)[order]
    n_t = np.cumsum(t)
    n_c = np.cumsum(~t)
    y_t = np.cumsum(y * t)
    y_c = np.cumsum(y * ~t)
    total_t = max(int(n_t[-1]), 1)
    fractions = np.linspace(1.0 / points, 1.0, points)
    cut = np.maximum(np.ceil(fractions * len(order)).astype(int) - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(n_c[cut] > 0, y_c[cut] * n_t[cut] / np.maximum(n_c[cut], 1), 0.0)
    gain = (gain - y_t[cut]) / total_t
    return fractions, np.asarray(gain, dtype=np.float64)


def qini_area(score: FloatArray, call_arm: BoolArray, dna: BoolArray) -> float:
    """Mean height of the Qini curve above the random-ranking line (0 = no better than random)."""
    fractions, gain = qini_curve(score, call_arm, dna)
    return float(np.mean(gain - fractions * gain[-1]))


def _percentile_interval(values: FloatArray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def validate(
    benefit: FloatArray,
    risk: FloatArray,
    call_arm: BoolArray,
    dna: BoolArray,
    *,
    replicates: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Out-of-time metrics of a benefit ranking against risk ranking, with bootstrap intervals."""
    call_arm = np.asarray(call_arm, dtype=bool)
    dna = np.asarray(dna, dtype=bool)
    risk = np.nan_to_num(np.asarray(risk, dtype=np.float64), nan=0.0)
    fractions, gain = qini_curve(benefit, call_arm, dna)
    _, risk_gain = qini_curve(risk, call_arm, dna)
    area = qini_area(benefit, call_arm, dna)
    risk_area = qini_area(risk, call_arm, dna)
    treated_rows = np.flatnonzero(call_arm)
    control_rows = np.flatnonzero(~call_arm)
    areas = np.empty(replicates)
    differences = np.empty(replicates)
    for replicate in range(replicates):
        sample = np.concatenate(
            [
                rng.choice(treated_rows, len(treated_rows)),
                rng.choice(control_rows, len(control_rows)),
            ]
        )
        areas[replicate] = qini_area(benefit[sample], call_arm[sample], dna[sample])
        differences[replicate] = areas[replicate] - qini_area(
            risk[sample], call_arm[sample], dna[sample]
        )
    return {
        "qini_area": area,
        "qini_area_ci": _percentile_interval(areas) if replicates else [math.nan, math.nan],
        "risk_qini_area": risk_area,
        "qini_area_minus_risk": area - risk_area,
        "qini_area_minus_risk_ci": (
            _percentile_interval(differences) if replicates else [math.nan, math.nan]
        ),
        "qini_curve": [
            {"fraction": float(f), "benefit_model": float(g), "risk": float(r)}
            for f, g, r in zip(fractions, gain, risk_gain, strict=True)
        ],
        "rows": {
            "call_arm": int(call_arm.sum()),
            "holdout": int((~call_arm).sum()),
            "dnas": int(dna.sum()),
        },
        "bootstrap_replicates": replicates,
    }


# Artefacts: the coefficients as JSON, checked by SHA-256 like the risk model's file.


def save_benefit_artefact(artefact: BenefitArtefact, directory: Path) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ARTEFACT_FILE
    payload = {
        "kind": ARTEFACT_KIND,
        "version": artefact.version,
        "feature_names": list(artefact.feature_names),
        "baseline_terms": list(BASELINE_TERMS),
        "effect_terms": list(EFFECT_TERMS),
        "baseline": [float(value) for value in artefact.baseline],
        "effect": [float(value) for value in artefact.effect],
        "fill_risk": artefact.fill_risk,
        "penalty": artefact.penalty,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path, sha256_of(path)


def load_benefit_artefact(path: Path, expected_sha256: str) -> BenefitArtefact:
    if not path.is_file():
        raise TamperedArtefactError(f"benefit model file {path} is missing; retrain it")
    if sha256_of(path) != expected_sha256:
        raise TamperedArtefactError(
            f"benefit model file {path} does not match the SHA-256 recorded when it was "
            "trained; it has been changed or replaced and will not be loaded"
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        kind = payload["kind"]
        baseline = np.array(payload["baseline"], dtype=np.float64)
        effect = np.array(payload["effect"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as error:
        raise TamperedArtefactError(
            f"benefit model file {path} is not a benefit model this version can read; "
            "retrain it (navigator targeting train)"
        ) from error
    if (
        kind != ARTEFACT_KIND
        or list(payload.get("feature_names") or []) != list(FEATURES)
        or list(payload.get("effect_terms") or []) != list(EFFECT_TERMS)
        or baseline.shape != (len(BASELINE_TERMS),)
        or effect.shape != (len(EFFECT_TERMS),)
    ):
        raise InvalidInputError(
            "the benefit model was trained by an earlier version or on a different feature "
            "list; retrain it (navigator targeting train)"
        )
    return BenefitArtefact(
        baseline=baseline,
        effect=effect,
        fill_risk=float(payload["fill_risk"]),
        version=str(payload["version"]),
        penalty=float(payload.get("penalty", DEFAULT_PENALTY)),
        feature_names=list(payload["feature_names"]),
    )
