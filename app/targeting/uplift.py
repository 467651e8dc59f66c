"""The benefit model: who a navigator call helps, learnt from the programme's own trial.

**Method: a T-learner with scikit-learn gradient boosting.** Two
`HistGradientBoostingClassifier`s estimate the chance of a DNA without a call (fitted on every
assigned appointment no call was queued for: the randomised hold-out and the call-arm
appointments capacity did not reach) and with one (fitted on those a call was queued for);
the benefit of calling is their difference, the expected DNAs a call avoids. Why this and not
an uplift library:

- `scikit-uplift` and `causalml` offer the same meta-learners (T-, S-, X-learners) on top of
  scikit-learn estimators; `causalml` pulls in heavy dependencies (torch, lightgbm, xgboost,
  cython builds) and `scikit-uplift` has had no release since 2022. The T-learner is a dozen
  lines on the estimator the risk model already uses, with the same skops artefact format
  and trusted-types check, so nothing new has to be trusted, pinned or audited.
- Uplift trees/forests (`causalml`'s `UpliftRandomForestClassifier`) split on the treatment
  difference directly, but are slow in pure Python on 50,000 rows and have no monotonic
  constraints; boosting with "risk never lowers the no-call DNA chance" keeps the small
  hold-out model stable.
- The known weakness of a T-learner (the two models' errors add up) is measured, not assumed:
  the out-of-time Qini curve below has a bootstrap interval, and the queue switches to the
  benefit policy only when that interval is above 0 (`app.targeting.service`).

**Why treated = "a call was queued" and control = "no call was queued".** The hold-out is
randomised, so for any features x it is an unbiased sample of untreated outcomes. Which
call-arm appointments got a call depended only on things in x (risk and priority groups,
through today's priority) and on the day's competition for capacity, which does not depend on
the patient's outcome; so E[DNA | x, called] is the treated outcome at x, and by the same
argument the call-arm appointments left uncalled are untreated outcomes at their x (they
widen the control model's data at low priorities, where the hold-out alone is thin; at the
top of the ranking, where everyone in the call arm is called, the control model rests on the
hold-out alone). Features a policy never saw do not confound either arm. The switching rule
counts hold-out outcomes only, since they are what makes the whole estimate checkable.

**Validation, out of time, randomised.** The model is fitted on the earlier weeks and
checked on the later `validation_share` of weeks by a Qini curve on the randomised contrast
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

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from app.errors import InvalidInputError
from app.risk.artefacts import TRUSTED_TYPES, TamperedArtefactError, sha256_of

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
# "A higher risk never lowers the chance of a DNA", in both arms.
MONOTONIC = {"risk": 1}
HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 80,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.15,
    "n_iter_no_change": 20,
    "random_state": 0,
}
QINI_POINTS = 20
# The two learners fit and predict in one OpenMP thread. Their data are small (a year of
# programme history is ~50,000 rows) and on a shared machine the default thread pool only
# contends: measured under load 8 on the 2-core machine, fitting 37,500 rows took 12.9 s with
# the default pool and 0.9 s in one thread (as the risk model does for small trusts).
OPENMP_THREADS = 1
ARTEFACT_FILE = "benefit.skops"


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


def _classifier() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        monotonic_cst=[MONOTONIC.get(name, 0) for name in FEATURES], **HYPERPARAMETERS
    )


@dataclass
class BenefitArtefact:
    """The two fitted models; `benefit` = P(DNA | no call) - P(DNA | call)."""

    control: HistGradientBoostingClassifier
    treated: HistGradientBoostingClassifier
    version: str
    feature_names: list[str] = field(default_factory=lambda: list(FEATURES))

    def benefit(self, features: FloatArray) -> FloatArray:
        if len(features) == 0:
            return np.zeros(0)
        with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
            untreated = self.control.predict_proba(features)[:, 1]
            treated = self.treated.predict_proba(features)[:, 1]
        return np.asarray(untreated - treated, dtype=np.float64)


def fit_t_learner(
    features: FloatArray, called: BoolArray, dna: BoolArray, *, version: str
) -> BenefitArtefact:
    """Fit both models: `called` True for rows a call was queued for, False for the rest
    (hold-out and call-arm appointments capacity did not reach)."""
    called = np.asarray(called, dtype=bool)
    y = np.asarray(dna, dtype=float)
    for name, part in (("called", called), ("not called", ~called)):
        if part.sum() == 0 or y[part].sum() == 0 or y[part].sum() == part.sum():
            raise InvalidInputError(
                f"the {name} appointments have no DNAs or no attendances; the benefit model "
                "needs both in each arm"
            )
    with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
        control = _classifier().fit(features[~called], y[~called])
        treated = _classifier().fit(features[called], y[called])
    return BenefitArtefact(control=control, treated=treated, version=version)


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


# Artefacts (skops, checked like the risk model's).


def save_benefit_artefact(artefact: BenefitArtefact, directory: Path) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ARTEFACT_FILE
    sio.dump(
        {
            "control": artefact.control,
            "treated": artefact.treated,
            "version": artefact.version,
            "feature_names": list(artefact.feature_names),
        },
        path,
    )
    return path, sha256_of(path)


def load_benefit_artefact(path: Path, expected_sha256: str) -> BenefitArtefact:
    if not path.is_file():
        raise TamperedArtefactError(f"benefit model file {path} is missing; retrain it")
    if sha256_of(path) != expected_sha256:
        raise TamperedArtefactError(
            f"benefit model file {path} does not match the SHA-256 recorded when it was "
            "trained; it has been changed or replaced and will not be loaded"
        )
    untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise TamperedArtefactError(
            f"benefit model file {path} contains unexpected types: {', '.join(sorted(untrusted))}"
        )
    payload = sio.load(path, trusted=TRUSTED_TYPES)
    if list(payload["feature_names"]) != list(FEATURES):
        raise InvalidInputError(
            "the benefit model was trained on a different feature list; retrain it "
            "(navigator train-benefit)"
        )
    return BenefitArtefact(
        control=payload["control"],
        treated=payload["treated"],
        version=str(payload["version"]),
        feature_names=list(payload["feature_names"]),
    )
