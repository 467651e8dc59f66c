"""Proof by simulation: replay programmes under each queue policy at equal capacity.

`simulate_targeting` draws a synthetic trust's eligible appointments day by day, with every
appointment's true untreated DNA probability from the generative model
(`app.synth.dna_model.dna_probability`) and its own true call effect
(`app.synth.dna_model.call_risk_reduction`, heterogeneous by default). It is vectorised with
numpy rather than replayed row by row through the database (78 weeks x 20 repeats would take
hours on a shared machine), but every decision goes through the code the service runs:

- the hold-out is the queue's own keyed hash (`app.calls.queue.is_held_out`), drawn per
  patient before any policy, with a programme seed per repeat;
- eligibility follows the queue's rules and settings (high risk band or a priority group);
- the risk policy ranks by the queue's priority (`app.calls.queue.priority_of`: 100 x risk +
  15 per priority group) and takes the top of the day's capacity, exactly as `build_queue`;
- the benefit policy is `app.targeting.policy.select_calls` with the same `equity_floors`
  and exploration share the queue uses, on the benefit of `app.targeting.uplift`'s
  call-effect model, fitted and validated by the same functions as `navigator targeting
  train` on the simulated history (which ran under the risk policy): what the queue does
  once the policy is on;
- `switching_rule` is the queue as `app.targeting.policy.switching_rule` governs it: the
  benefit policy in the repeats whose fitted model passes the rule, risk in the others;
- `risk_score` ranks by the risk score alone (as peers do: no group bonus, no floor), a
  reference that separates what the benefit policy owes to who responds to a call from what
  it owes to replacing today's 15-point group bonus by the equity floor;
- capacity is `app.calls.queue.daily_capacity(settings)` for every policy.

The service's risk model is stood in for by a good but imperfect estimate: the generative
probability with only 60% of each patient's latent propensity visible (the rest is what no
model can see). A reached call multiplies the DNA probability by 1 - r; the true avoided DNAs
of a policy are the sum of r x p over the calls that reached the patient (an expected value,
known exactly to the simulation), divided by the calls made. Every policy sees the same
appointments, arms and call-answer draws in a repeat, so their differences are paired.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from app.calls.queue import NEED_WEIGHT, RISK_WEIGHT, daily_capacity, is_held_out
from app.console import NULL_PROGRESS, ProgressReporter
from app.errors import InvalidInputError
from app.risk.card import json_safe
from app.settings import Settings
from app.synth.dna_model import (
    DEFAULT_MODEL,
    HETEROGENEOUS_CALL_EFFECT,
    HOMOGENEOUS_CALL_EFFECT,
    CallEffectModel,
    DnaModel,
    call_risk_reduction,
    dna_probability,
)
from app.targeting.policy import (
    PRIORITY_GROUPS,
    Floors,
    equity_floors,
    select_calls,
    switching_rule,
)
from app.targeting.uplift import (
    TargetingColumns,
    fit_out_of_time,
    validate,
    would_be_called,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

WORKING_DAYS_PER_WEEK = 5
# The stand-in risk model sees this share of each patient's latent propensity.
VISIBLE_PROPENSITY = 0.6
NO_FLOORS = Floors(
    shares=dict.fromkeys(PRIORITY_GROUPS, 0.0), minimum_calls=dict.fromkeys(PRIORITY_GROUPS, 0)
)

# The queue's two policies; the queue as the switching rule runs it (benefit in the repeats whose
# fitted model passes the rule, risk in the others); and ranking by the risk score alone.
POLICIES: tuple[str, ...] = ("risk", "benefit", "switching_rule", "risk_score")


@dataclass(frozen=True)
class TrustShape:
    """The synthetic trust's size and mix (shares close to `navigator synth`'s)."""

    patients: int = 20_000
    appointments_per_day: int = 1500
    answer_rate: float = 0.65
    first_appointment_share: float = 0.40
    mean_extra_lead_days: float = 30.0  # lead = 7 days (the call window) + exponential
    interpreter_share: float = 0.06
    communication_need_share: float = 0.04
    learning_disability_share: float = 0.025
    no_sms_share: float = 0.15
    unknown_imd_share: float = 0.05


@dataclass
class _Population:
    age: FloatArray
    male: BoolArray
    imd: IntArray
    core20: BoolArray
    interpreter: BoolArray
    communication: BoolArray
    learning_disability: BoolArray
    no_sms: BoolArray
    latent: FloatArray
    prior_dnas: IntArray
    held_out: BoolArray


@dataclass
class _Day:
    """The eligible appointments of one queue day (those a week ahead)."""

    patient: IntArray
    p0: FloatArray
    risk: FloatArray
    reduction: FloatArray
    membership: BoolArray
    held_out: BoolArray
    columns: TargetingColumns
    answer_draw: FloatArray
    dna_draw: FloatArray
    explore_keys: FloatArray


@dataclass
class _PolicyTally:
    calls: int = 0
    avoided: float = 0.0
    group_calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRIORITY_GROUPS, 0))
    group_minimum: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRIORITY_GROUPS, 0))

    def add(self, day: _Day, chosen: IntArray, floors: Floors) -> None:
        self.calls += len(chosen)
        for column, group in enumerate(PRIORITY_GROUPS):
            self.group_calls[group] += int(day.membership[chosen, column].sum())
            self.group_minimum[group] += floors.minimum_calls[group]


def _population(
    rng: np.random.Generator, shape: TrustShape, model: DnaModel, settings: Settings, repeat: int
) -> _Population:
    n = shape.patients
    imd = rng.integers(1, 11, size=n).astype(np.int64)
    imd[rng.random(n) < shape.unknown_imd_share] = 0
    latent = rng.normal(0.0, model.latent_propensity_sd, size=n)
    programme = settings.model_copy(
        update={"calls_programme_seed": f"{settings.calls_programme_seed}-simulation-{repeat}"}
    )
    held_out = np.array(
        [is_held_out(programme, f"SIM{repeat:03d}{index:07d}") for index in range(n)], dtype=bool
    )
    return _Population(
        age=np.clip(rng.normal(50.0, 22.0, size=n), 0.0, 99.0),
        male=rng.random(n) < 0.48,
        imd=imd,
        core20=(imd >= 1) & (imd <= 2),
        interpreter=rng.random(n) < shape.interpreter_share,
        communication=rng.random(n) < shape.communication_need_share,
        learning_disability=rng.random(n) < shape.learning_disability_share,
        no_sms=rng.random(n) < shape.no_sms_share,
        latent=latent,
        prior_dnas=np.minimum(rng.poisson(0.25 * np.exp(latent)), 6).astype(np.int64),
        held_out=held_out,
    )


def _draw_day(
    rng: np.random.Generator,
    people: _Population,
    shape: TrustShape,
    model: DnaModel,
    effect: CallEffectModel,
    settings: Settings,
    specialty_effects: FloatArray,
) -> _Day:
    size = shape.appointments_per_day
    patient = rng.integers(0, len(people.age), size=size).astype(np.int64)
    lead = 7.0 + rng.exponential(shape.mean_extra_lead_days, size=size)
    first = rng.random(size) < shape.first_appointment_share
    specialty = specialty_effects[rng.integers(0, len(specialty_effects), size=size)]
    common: dict[str, Any] = {
        "first_appointment": first,
        "specialty_effect": specialty,
        "imd_decile": people.imd[patient],
        "age_years": people.age[patient],
        "male": people.male[patient],
        "lead_days": lead,
        "prior_dnas": people.prior_dnas[patient],
        "interpreter_needed": people.interpreter[patient],
        "communication_need": people.communication[patient],
        "learning_disability": people.learning_disability[patient],
        "ethnic_group_effect": np.zeros(size),
    }
    p0 = dna_probability(model, latent_propensity=people.latent[patient], **common)
    risk = dna_probability(
        model, latent_propensity=VISIBLE_PROPENSITY * people.latent[patient], **common
    )
    membership = np.column_stack(
        [
            people.core20[patient],
            people.interpreter[patient] | people.communication[patient],
            people.learning_disability[patient],
            people.no_sms[patient],
        ]
    )
    rules = np.column_stack(
        [
            settings.calls_rule_core20 & membership[:, 0],
            settings.calls_rule_communication_need & membership[:, 1],
            settings.calls_rule_learning_disability & membership[:, 2],
            settings.calls_rule_no_sms_channel & membership[:, 3],
            settings.calls_rule_high_risk & (risk >= settings.risk_band_high),
        ]
    )
    keep = np.flatnonzero(rules.any(axis=1))
    reduction = call_risk_reduction(
        effect,
        untreated_probability=p0,
        lead_days=lead,
        first_appointment=first,
        interpreter_needed=people.interpreter[patient],
    )
    imd = people.imd[patient].astype(float)
    columns = TargetingColumns(
        risk=risk[keep],
        lead_time_days=lead[keep],
        first_attendance=first[keep].astype(float),
        interpreter_needed=people.interpreter[patient][keep].astype(float),
        communication_need=people.communication[patient][keep].astype(float),
        learning_disability=people.learning_disability[patient][keep].astype(float),
        core20=people.core20[patient][keep].astype(float),
        no_sms_channel=people.no_sms[patient][keep].astype(float),
        imd_decile=np.where(imd > 0, imd, np.nan)[keep],
        age_years=np.floor(people.age[patient][keep]),
    )
    count = len(keep)
    return _Day(
        patient=patient[keep],
        p0=p0[keep],
        risk=risk[keep],
        reduction=reduction[keep],
        membership=membership[keep],
        held_out=people.held_out[patient[keep]],
        columns=columns,
        answer_draw=rng.random(count),
        dna_draw=rng.random(count),
        explore_keys=rng.random(count),
    )


def risk_priority(risk: FloatArray, membership: BoolArray) -> FloatArray:
    """`app.calls.queue.priority_of`, vectorised (its weights, its rounding)."""
    return np.round(RISK_WEIGHT * risk + NEED_WEIGHT * membership.sum(axis=1), 4)


@dataclass
class _History:
    columns: list[TargetingColumns] = field(default_factory=list)
    called: list[BoolArray] = field(default_factory=list)
    call_arm: list[BoolArray] = field(default_factory=list)
    dna: list[BoolArray] = field(default_factory=list)
    day: list[IntArray] = field(default_factory=list)
    priority: list[FloatArray] = field(default_factory=list)
    # The true expected DNAs a reached call avoids (known only to the simulation).
    truth: list[FloatArray] = field(default_factory=list)

    def features(self) -> FloatArray:
        return np.vstack([columns.matrix() for columns in self.columns])


def _run_day(
    day: _Day,
    settings: Settings,
    room: int,
    policy: str,
    benefit: FloatArray | None,
    answer_rate: float,
) -> tuple[IntArray, Floors, BoolArray]:
    """The calls one ranking makes on one day, its floors, and the DNA of every appointment.

    `policy` is "risk" (the queue's risk policy: the top of its priority, 100 x risk + 15 per
    priority group), "risk_score" (the top of the risk score alone, as peers rank) or
    "benefit" (`select_calls` on `benefit` with the equity floor and exploration)."""
    call_arm = np.flatnonzero(~day.held_out)
    if policy == "benefit" and benefit is not None:
        floors = equity_floors(day.risk, day.membership, room, settings.targeting_floor_scale)
        score = benefit[call_arm]
        share = settings.targeting_exploration_share
    else:
        floors = NO_FLOORS
        share = 0.0
        score = (
            day.risk[call_arm]
            if policy == "risk_score"
            else risk_priority(day.risk[call_arm], day.membership[call_arm])
        )
    picked = select_calls(
        score,
        day.membership[call_arm],
        room,
        floors=floors,
        exploration_share=share,
        exploration_keys=day.explore_keys[call_arm],
    )
    chosen = call_arm[picked]
    reached = np.zeros(len(day.p0), dtype=bool)
    reached[chosen] = day.answer_draw[chosen] < answer_rate
    probability = np.where(reached, day.p0 * (1.0 - day.reduction), day.p0)
    return chosen, floors, day.dna_draw < probability


def _interval(values: FloatArray) -> tuple[float, float, float]:
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(
        stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    )
    return mean, mean - half, mean + half


def simulate_targeting(
    settings: Settings,
    *,
    weeks: int = 26,
    history_weeks: int = 52,
    repeats: int = 20,
    heterogeneous: bool = True,
    seed: int = 2026,
    shape: TrustShape | None = None,
    model: DnaModel = DEFAULT_MODEL,
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict[str, Any]:
    """Replay `repeats` programmes (history under risk, then `weeks` under each policy)."""
    if weeks < 1 or history_weeks < 4 or repeats < 1:
        raise InvalidInputError(
            "the simulation needs at least 1 programme week, 4 history weeks and 1 repeat"
        )
    # One thread for the boosting: on a shared machine its thread pool only contends.
    with threadpool_limits(1):
        return _simulate(
            settings, weeks, history_weeks, repeats, heterogeneous, seed, shape, model, progress
        )


def _simulate(
    settings: Settings,
    weeks: int,
    history_weeks: int,
    repeats: int,
    heterogeneous: bool,
    seed: int,
    shape: TrustShape | None,
    model: DnaModel,
    progress: ProgressReporter,
) -> dict[str, Any]:
    started = time.perf_counter()
    shape = shape or TrustShape()
    effect = HETEROGENEOUS_CALL_EFFECT if heterogeneous else HOMOGENEOUS_CALL_EFFECT
    room = daily_capacity(settings)
    specialty_effects = np.array(list(model.specialty.values()) + [0.0] * 4, dtype=float)
    history_days = history_weeks * WORKING_DAYS_PER_WEEK
    programme_days = weeks * WORKING_DAYS_PER_WEEK
    per_repeat: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    calls: dict[str, int] = dict.fromkeys(POLICIES, 0)
    tallies = {policy: _PolicyTally() for policy in POLICIES}
    switched = 0
    truth_switched = 0
    validations: list[dict[str, Any]] = []
    messages: list[str] = []
    progress.update(total=repeats, description="Simulating programmes")
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        people = _population(rng, shape, model, settings, repeat)
        history = _History()
        for index in range(history_days):
            day = _draw_day(rng, people, shape, model, effect, settings, specialty_effects)
            chosen, _floors, dna = _run_day(day, settings, room, "risk", None, shape.answer_rate)
            called = np.zeros(len(day.p0), dtype=bool)
            called[chosen] = True
            history.columns.append(day.columns)
            history.called.append(called)
            history.call_arm.append(~day.held_out)
            history.dna.append(dna)
            history.day.append(np.full(len(day.p0), index, dtype=np.int64))
            history.priority.append(risk_priority(day.risk, day.membership))
            history.truth.append(day.p0 * day.reduction)
        artefact, validation, decision, truth_passes = _fit_on_history(
            history, settings, rng, repeat
        )
        validations.append(validation)
        truth_switched += int(truth_passes)
        if decision.switched:
            switched += 1
        else:
            messages.append(decision.message)
        sums = {policy: [0.0, 0] for policy in POLICIES}
        for _ in range(programme_days):
            day = _draw_day(rng, people, shape, model, effect, settings, specialty_effects)
            benefit = artefact.benefit(day.columns.matrix())
            for policy in POLICIES:
                # "benefit" ranks by the repeat's fitted model, as the queue does once the
                # policy is on; "switching_rule" only where the rule allowed it, else risk.
                if policy == "switching_rule":
                    mode = "benefit" if decision.switched else "risk"
                else:
                    mode = policy
                chosen, floors, _dna = _run_day(
                    day, settings, room, mode, benefit, shape.answer_rate
                )
                reached = day.answer_draw[chosen] < shape.answer_rate
                avoided = float(np.sum(day.p0[chosen] * day.reduction[chosen] * reached))
                sums[policy][0] += avoided
                sums[policy][1] += len(chosen)
                tallies[policy].add(day, chosen, floors)
        for policy in POLICIES:
            avoided_total, made = sums[policy]
            per_repeat[policy].append(avoided_total / made if made else 0.0)
            calls[policy] += int(made)
        progress.advance()

    result: dict[str, Any] = {"policies": {}}
    for policy in POLICIES:
        mean, low, high = _interval(np.array(per_repeat[policy]))
        tally = tallies[policy]
        result["policies"][policy] = {
            "avoided_per_call": mean,
            "ci_low": low,
            "ci_high": high,
            "calls": calls[policy],
            "floors": _floor_report(tally),
        }

    def compare(policy: str, baseline: str = "risk") -> dict[str, Any]:
        paired = np.array(per_repeat[policy]) - np.array(per_repeat[baseline])
        estimate, low, high = _interval(paired)
        base = result["policies"][baseline]["avoided_per_call"]
        return {
            "estimate": estimate,
            "ci_low": low,
            "ci_high": high,
            "relative": estimate / base if base else None,
        }

    result["difference"] = compare("benefit")
    result["relative_gain"] = result["difference"]["relative"]
    # The queue as the switching rule ran it: it stays on risk in repeats whose model has not
    # yet shown, out of time, that it beats random calling (conservative by design).
    result["difference_switching_rule"] = compare("switching_rule")
    # Against ranking by the risk score alone: what is owed to who responds to a call rather
    # than to dropping today's 15-point group bonus (which the equity floor replaces).
    result["difference_vs_risk_score"] = compare("benefit", "risk_score")
    result["difference_risk_score"] = compare("risk_score")
    result["floors"] = result["policies"]["benefit"]["floors"]
    result["settings"] = {
        "weeks": weeks,
        "history_weeks": history_weeks,
        "repeats": repeats,
        "heterogeneous_effects": heterogeneous,
        "capacity_per_day": room,
        "working_days_per_week": WORKING_DAYS_PER_WEEK,
        "appointments_per_day": shape.appointments_per_day,
        "holdout_share": settings.calls_holdout_share,
        "exploration_share": settings.targeting_exploration_share,
        "floor_scale": settings.targeting_floor_scale,
        "seed": seed,
    }
    result["benefit_model"] = {
        "switched_repeats": switched,
        "stayed_on_risk_because": sorted(set(messages)),
        "qini_area_mean": float(np.mean([v["qini_area"] for v in validations])),
        "qini_area_ci_low_mean": float(np.mean([v["qini_area_ci"][0] for v in validations])),
        "risk_qini_area_mean": float(np.mean([v["risk_qini_area"] for v in validations])),
        # The same out-of-time check run on the true benefit instead of the fitted model: how
        # often a perfect model would pass the rule on this much trial data.
        "true_benefit_passes_repeats": truth_switched,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    # One repeat has no interval across repeats: null in the JSON, never NaN (not JSON).
    safe: dict[str, Any] = json_safe(result)
    return safe


def _floor_report(tally: _PolicyTally) -> dict[str, Any]:
    report = {}
    for group in PRIORITY_GROUPS:
        share = tally.group_calls[group] / tally.calls if tally.calls else 0.0
        floor = tally.group_minimum[group] / tally.calls if tally.calls else 0.0
        report[group] = {"share": share, "floor": floor, "met": share + 1e-12 >= floor}
    return report


def _fit_on_history(
    history: _History, settings: Settings, rng: np.random.Generator, repeat: int
) -> tuple[Any, dict[str, Any], Any, bool]:
    """The repeat's fitted model, its out-of-time validation, the switching rule's decision,
    and whether the true benefit itself would pass the rule's Qini check."""
    features = history.features()
    called = np.concatenate(history.called)
    call_arm = np.concatenate(history.call_arm)
    dna = np.concatenate(history.dna)
    day = np.concatenate(history.day)
    risk = features[:, 0]
    priority = np.concatenate(history.priority)
    stratum = would_be_called(priority, day, call_arm, called)
    fitted = fit_out_of_time(
        features,
        called,
        dna,
        day,
        stratum,
        share=settings.targeting_validation_share,
        folds=settings.targeting_validation_folds,
        version=f"simulation-{repeat}",
    )
    artefact, check = fitted.artefact, fitted.check
    training = day < fitted.cuts[-1]
    validation = validate(
        fitted.benefit,
        risk[check],
        call_arm[check],
        dna[check],
        replicates=settings.targeting_bootstrap_replicates,
        rng=rng,
    )
    decision = switching_rule(
        requested="benefit",
        holdout_share=settings.calls_holdout_share,
        holdout_outcomes=int((training & ~call_arm).sum()),
        min_holdout_outcomes=settings.targeting_min_holdout_outcomes,
        qini_ci_low=validation["qini_area_ci"][0],
        model_version=artefact.version,
    )
    truth = validate(
        np.concatenate(history.truth)[check],
        risk[check],
        call_arm[check],
        dna[check],
        replicates=settings.targeting_bootstrap_replicates,
        rng=rng,
    )
    low = truth["qini_area_ci"][0]
    return artefact, validation, decision, bool(low is not None and low > 0)


__all__ = ["TrustShape", "simulate_targeting"]
