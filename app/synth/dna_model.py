"""The generative DNA model behind the synthetic trust, with every coefficient in one place.

A patient's chance of not attending is a logistic function of additive log-odds effects
(DOMAIN.md section 4), then multiplied by the relative risk of any contact the appointment
got. The effects are chosen so that the realised data show:

- an overall DNA rate of about 7% (first appointments higher than follow-ups);
- respiratory medicine about 10%;
- IMD decile 1 about 1.5 times decile 10 (a linear log-odds gradient across deciles);
- higher rates at ages 18-35, lower at 65 and over; men slightly above women;
- longer lead times (booking to appointment) raise the risk;
- a patient's earlier DNAs as the strongest single predictor: a latent per-patient
  propensity (normal on the log-odds scale) plus an explicit effect per prior DNA;
- interpreter, communication needs and learning disability somewhat higher;
- some ethnic minority groups higher, and unrecorded ethnicity (Z/99) higher, because it
  travels with patchy engagement in real data.

Real DNAs are not additive on the log-odds, so three documented interactions sit on top
(issue 15: model comparisons on a purely additive trust flatter a logistic regression). Each
is centred so the overall rates above barely move; `ADDITIVE_MODEL` switches all three off.

- **Lead time with first attendance.** A long wait matters far more for a first appointment
  (the referral problem may have resolved, the letter was months ago, no routine yet) than
  for a follow-up: first appointments get an extra `first_lead_time_per_log_week` per log week
  of lead time, centred at `first_lead_time_centre_days`, so short-notice first appointments
  (urgent referrals) are *less* likely to be missed than average and long-wait ones much more.
- **Deprivation with specialty.** The deprivation gradient is steeper in some specialties
  (respiratory and dermatology: travel costs and repeated visits weigh on the poorest) and
  flatter in others (cardiology): `deprivation_by_specialty` adds a per-decile slope for each
  specialty, centred at the middle decile.
- **Age with weekday.** Young adults (18-35) miss Monday and Friday appointments far more
  (work and shifts), and fewer midweek; patients aged 65 and over miss fewer on Mondays and
  Fridays and slightly more midweek: `young_adult_weekday` and `older_weekday` give the
  log-odds by weekday (0 = Monday). Applied only when the caller passes the weekday.

The same model gives the true effect of the service's interventions, so an analytics
programme simulation can reuse `dna_probability`: a navigator call that reaches the patient
multiplies the risk by about 0.7 (Erasmus MC RCT: -26%), an SMS reminder by about 0.95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def _specialty_effects() -> dict[str, float]:
    # Log-odds relative to the average clinic; respiratory ~10% against ~7% overall.
    return {
        "340": 0.40,
        "120": 0.05,
        "144": 0.10,
        "140": 0.10,
        "330": 0.05,
        "300": 0.10,
        "110": -0.10,
        "320": -0.15,
        "502": 0.05,
        "100": -0.05,
    }


def _ethnic_group_effects() -> dict[str, float]:
    # Keys are the six reporting groups plus "Not stated" (Z) and "Not known" (99).
    return {
        "White": 0.0,
        "Mixed": 0.20,
        "Asian or Asian British": 0.12,
        "Black or Black British": 0.30,
        "Other ethnic group": 0.15,
        "Not stated": 0.20,
        "Not known": 0.25,
    }


def _deprivation_by_specialty() -> dict[str, float]:
    # Extra log-odds per decile more deprived (centred at decile 5.5), by specialty; the
    # additive gradient is about 0.049 per decile.
    return {"340": 0.10, "330": 0.08, "120": 0.04, "320": -0.05, "110": -0.03}


@dataclass(frozen=True)
class DnaModel:
    """Every coefficient of the generator. Log-odds unless the name says relative risk."""

    intercept: float = -3.72
    first_appointment: float = 0.45
    # Per decile more deprived than decile 10: 9 steps give an odds ratio of about 1.5.
    per_deprivation_decile: float = math.log(1.55) / 9
    unknown_deprivation: float = 0.1
    age_0_17: float = 0.10
    age_18_35: float = 0.40
    age_65_plus: float = -0.35
    male: float = 0.12
    # Per natural-log unit of (1 + lead days / 7): 1 week -> +0.10, 12 weeks -> +0.37.
    lead_time_per_log_week: float = 0.14
    # Earlier DNAs: the strongest single predictor (capped so one patient cannot run away).
    per_prior_dna: float = 0.55
    prior_dna_cap: int = 3
    latent_propensity_sd: float = 0.7
    interpreter_needed: float = 0.25
    communication_need: float = 0.20
    learning_disability: float = 0.30
    specialty: dict[str, float] = field(default_factory=_specialty_effects)
    ethnic_group: dict[str, float] = field(default_factory=_ethnic_group_effects)
    # Interactions (see the module docstring); zero in ADDITIVE_MODEL.
    first_lead_time_per_log_week: float = 0.75
    first_lead_time_centre_days: float = 30.0
    deprivation_by_specialty: dict[str, float] = field(default_factory=_deprivation_by_specialty)
    young_adult_weekday: tuple[float, ...] = (0.55, -0.25, -0.30, -0.25, 0.55, 0.0, 0.0)
    older_weekday: tuple[float, ...] = (-0.35, 0.15, 0.20, 0.15, -0.35, 0.0, 0.0)
    # True effects of the service's contacts, as multipliers of the probability.
    navigator_call_reached_relative_risk: float = 0.70
    sms_reminder_relative_risk: float = 0.95

    def specialty_effect(self, codes: npt.NDArray[np.str_]) -> FloatArray:
        lookup = np.vectorize(lambda code: self.specialty.get(str(code), 0.0), otypes=[float])
        return np.asarray(lookup(codes), dtype=np.float64)

    def ethnic_group_effect(self, groups: npt.NDArray[np.str_]) -> FloatArray:
        lookup = np.vectorize(lambda group: self.ethnic_group.get(str(group), 0.0), otypes=[float])
        return np.asarray(lookup(groups), dtype=np.float64)

    def deprivation_slope(self, codes: npt.NDArray[np.str_]) -> FloatArray:
        """Each appointment's extra per-decile deprivation slope from its specialty."""
        lookup = np.vectorize(
            lambda code: self.deprivation_by_specialty.get(str(code), 0.0), otypes=[float]
        )
        return np.asarray(lookup(codes), dtype=np.float64)


DEFAULT_MODEL = DnaModel()
# The same trust with every interaction switched off: DNAs additive on the log-odds.
ADDITIVE_MODEL = DnaModel(
    first_lead_time_per_log_week=0.0,
    deprivation_by_specialty={},
    young_adult_weekday=(0.0,) * 7,
    older_weekday=(0.0,) * 7,
)


def interaction_log_odds(
    model: DnaModel,
    *,
    first_appointment: BoolArray,
    lead_days: FloatArray,
    imd_decile: IntArray,
    age_years: FloatArray,
    deprivation_slope: FloatArray | None = None,
    weekday: IntArray | None = None,
) -> FloatArray:
    """The non-additive part of the log-odds (module docstring): lead time with first
    attendance always; deprivation with specialty when `deprivation_slope` is given (from
    `model.deprivation_slope(codes)`); age with weekday when `weekday` (0 = Monday) is given."""
    lead = np.log1p(np.maximum(np.asarray(lead_days, dtype=np.float64), 0.0) / 7.0)
    centre = math.log1p(model.first_lead_time_centre_days / 7.0)
    log_odds = (
        model.first_lead_time_per_log_week
        * np.asarray(first_appointment, dtype=bool)
        * (lead - centre)
    )
    decile = np.asarray(imd_decile)
    if deprivation_slope is not None:
        steps = np.where(decile > 0, 5.5 - np.clip(decile, 1, 10), 0.0)
        log_odds = log_odds + np.asarray(deprivation_slope, dtype=np.float64) * steps
    if weekday is not None:
        age = np.asarray(age_years, dtype=np.float64)
        day = np.clip(np.asarray(weekday, dtype=np.int64), 0, 6)
        young = np.asarray(model.young_adult_weekday, dtype=np.float64)[day]
        older = np.asarray(model.older_weekday, dtype=np.float64)[day]
        log_odds = log_odds + np.where((age >= 18) & (age <= 35), young, 0.0)
        log_odds = log_odds + np.where(age >= 65, older, 0.0)
    return np.asarray(log_odds, dtype=np.float64)


def dna_probability(
    model: DnaModel,
    *,
    first_appointment: BoolArray,
    specialty_effect: FloatArray,
    imd_decile: IntArray,
    age_years: FloatArray,
    male: BoolArray,
    lead_days: FloatArray,
    prior_dnas: IntArray,
    interpreter_needed: BoolArray,
    communication_need: BoolArray,
    learning_disability: BoolArray,
    ethnic_group_effect: FloatArray,
    latent_propensity: FloatArray,
    navigator_call_reached: BoolArray | None = None,
    sms_reminder: BoolArray | None = None,
    deprivation_slope: FloatArray | None = None,
    weekday: IntArray | None = None,
) -> FloatArray:
    """Probability of a DNA for each appointment (all arrays the same length).

    `imd_decile` 0 means unknown. `specialty_effect` and `ethnic_group_effect` come from
    `model.specialty_effect(codes)` and `model.ethnic_group_effect(groups)`, so a caller
    looking codes up once can reuse them; `latent_propensity` is the patient's draw from
    N(0, model.latent_propensity_sd). `deprivation_slope` and `weekday` switch on the
    deprivation-with-specialty and age-with-weekday interactions (`interaction_log_odds`).
    """
    decile = np.asarray(imd_decile)
    deprivation = np.where(
        decile > 0,
        (10 - np.clip(decile, 1, 10)) * model.per_deprivation_decile,
        model.unknown_deprivation,
    )
    age = np.asarray(age_years, dtype=np.float64)
    age_effect = np.select(
        [age < 18, age <= 35, age >= 65], [model.age_0_17, model.age_18_35, model.age_65_plus], 0.0
    )
    log_odds = (
        model.intercept
        + model.first_appointment * first_appointment
        + specialty_effect
        + deprivation
        + age_effect
        + model.male * male
        + model.lead_time_per_log_week * np.log1p(np.maximum(lead_days, 0.0) / 7.0)
        + model.per_prior_dna * np.minimum(prior_dnas, model.prior_dna_cap)
        + model.interpreter_needed * interpreter_needed
        + model.communication_need * communication_need
        + model.learning_disability * learning_disability
        + ethnic_group_effect
        + latent_propensity
        + interaction_log_odds(
            model,
            first_appointment=first_appointment,
            lead_days=lead_days,
            imd_decile=imd_decile,
            age_years=age_years,
            deprivation_slope=deprivation_slope,
            weekday=weekday,
        )
    )
    probability = 1.0 / (1.0 + np.exp(-log_odds))
    if navigator_call_reached is not None:
        probability = np.where(
            navigator_call_reached,
            probability * model.navigator_call_reached_relative_risk,
            probability,
        )
    if sms_reminder is not None:
        probability = np.where(
            sms_reminder, probability * model.sms_reminder_relative_risk, probability
        )
    return np.asarray(probability, dtype=np.float64)


# Heterogeneous effects of a navigator call (issue 16: benefit targeting).
#
# `DnaModel.navigator_call_reached_relative_risk` above is one average effect for everyone,
# which the analytics programme simulation uses. Trials report that a call helps some patients
# far more than others, so the targeting simulation draws each appointment's own effect from
# the model below instead. The effect is a *risk reduction share* r (the reached call
# multiplies the DNA probability by 1 - r):
#
# - none for patients who would attend anyway: below `attend_anyway_probability` of a DNA
#   without any contact, a call changes nothing (r = 0);
# - otherwise `base_reduction`, plus `long_lead_reduction` for lead times of at least
#   `long_lead_days` (people forget, or their circumstances change, over months), plus
#   `first_appointment_reduction` for a first appointment (no routine yet, most questions
#   about where and why), plus `interpreter_reduction` when an interpreter is needed (the
#   call books one; without it many do not come);
# - damped for the very highest risks: above `entrenched_probability` the reduction is
#   multiplied by `entrenched_factor` (chronic non-attenders are often not moved by a call:
#   the middle risk groups gain most);
# - capped at `max_reduction`.
#
# With the defaults the average reduction over reached call-arm appointments stays near the
# homogeneous 0.30, so the programme's overall effect matches the trials; only *who* gains
# changes. `HOMOGENEOUS_CALL_EFFECT` is the null case: every reached appointment gets the same
# 0.30, so the best targeting is by risk alone.


@dataclass(frozen=True)
class CallEffectModel:
    """Each appointment's true risk reduction from a reached navigator call."""

    attend_anyway_probability: float = 0.05
    base_reduction: float = 0.10
    long_lead_days: float = 42.0
    long_lead_reduction: float = 0.25
    first_appointment_reduction: float = 0.20
    interpreter_reduction: float = 0.30
    entrenched_probability: float = 0.35
    entrenched_factor: float = 0.3
    max_reduction: float = 0.80


HETEROGENEOUS_CALL_EFFECT = CallEffectModel()
HOMOGENEOUS_CALL_EFFECT = CallEffectModel(
    attend_anyway_probability=0.0,
    base_reduction=0.30,
    long_lead_reduction=0.0,
    first_appointment_reduction=0.0,
    interpreter_reduction=0.0,
    entrenched_probability=1.0,
    entrenched_factor=1.0,
)


def call_risk_reduction(
    effect: CallEffectModel,
    *,
    untreated_probability: FloatArray,
    lead_days: FloatArray,
    first_appointment: BoolArray,
    interpreter_needed: BoolArray,
) -> FloatArray:
    """The share r of each appointment's DNA risk a reached call removes (see above)."""
    p0 = np.asarray(untreated_probability, dtype=np.float64)
    reduction = (
        effect.base_reduction
        + effect.long_lead_reduction * (np.asarray(lead_days) >= effect.long_lead_days)
        + effect.first_appointment_reduction * np.asarray(first_appointment, dtype=bool)
        + effect.interpreter_reduction * np.asarray(interpreter_needed, dtype=bool)
    )
    reduction = np.where(
        p0 > effect.entrenched_probability, reduction * effect.entrenched_factor, reduction
    )
    reduction = np.where(p0 < effect.attend_anyway_probability, 0.0, reduction)
    return np.asarray(np.clip(reduction, 0.0, effect.max_reduction), dtype=np.float64)
