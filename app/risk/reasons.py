"""Plain-words reasons for a score, derived from what actually raised it.

For each group of related features we ask the model what the appointment's score would be if
that group took a typical appointment's values (the reference stored with the model). The
groups whose own values raised the score most become the reasons, worded from the values
themselves: "missed 2 of last 4 appointments", "booked 60 days ahead".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from app.reference.codes import AGE_BANDS, SEXES, specialty_name
from app.risk.artefacts import RiskArtefact
from app.risk.features import ETHNIC_GROUP_NAMES, ETHNICITY_FEATURE, SEX_CODES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MAX_REASONS = 3
# A group must raise the log-odds by at least this much to be named (about +5% relative odds).
MIN_CONTRIBUTION = 0.05
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "history": (
        "n_prior_appointments",
        "n_prior_attended",
        "n_prior_dna",
        "prior_dna_rate",
        "shrunk_prior_dna_rate",
        "dna_last_4",
        "known_last_4",
        "days_since_last_dna",
    ),
    "lead_time": ("lead_time_days",),
    "first_attendance": ("first_attendance",),
    "cancellations": (
        "n_prior_patient_cancellations",
        "n_prior_provider_cancellations",
        "n_prior_reschedules",
    ),
    "age": ("age_band",),
    "deprivation": ("imd_decile",),
    "timing": ("weekday", "hour"),
    "clinic": ("specialty", "clinic_dna_rate"),
    "same_day": ("n_same_day",),
    "needs": ("interpreter_needed", "communication_need", "bsl_user", "learning_disability"),
    "sex": ("sex",),
    "ethnicity": (ETHNICITY_FEATURE,),
}


def _count(value: float) -> int:
    return 0 if np.isnan(value) else int(value)


def _history(v: dict[str, float], _a: RiskArtefact) -> str:
    missed, known = _count(v["dna_last_4"]), _count(v["known_last_4"])
    if missed:
        return f"missed {missed} of last {known} appointments"
    if _count(v["n_prior_dna"]):
        return f"missed {_count(v['n_prior_dna'])} earlier appointments"
    if not _count(v["n_prior_attended"]):
        return "no attended appointments on record"
    return f"attended {_count(v['n_prior_attended'])} earlier appointments"


def _lead_time(v: dict[str, float], _a: RiskArtefact) -> str:
    return f"booked {round(v['lead_time_days'])} days ahead"


def _first(v: dict[str, float], _a: RiskArtefact) -> str:
    if np.isnan(v["first_attendance"]):
        return "first or follow-up not recorded"
    return "first appointment" if v["first_attendance"] == 1 else "follow-up appointment"


def _cancellations(v: dict[str, float], _a: RiskArtefact) -> str:
    total = sum(
        _count(v[name])
        for name in (
            "n_prior_patient_cancellations",
            "n_prior_provider_cancellations",
            "n_prior_reschedules",
        )
    )
    if not total:
        return "no earlier cancellations or rebookings"
    return f"{total} earlier cancellations or rebookings"


def _age(v: dict[str, float], _a: RiskArtefact) -> str:
    band = v["age_band"]
    return "age not known" if np.isnan(band) else f"aged {AGE_BANDS[int(band)][2]}"


def _deprivation(v: dict[str, float], _a: RiskArtefact) -> str:
    decile = v["imd_decile"]
    if np.isnan(decile):
        return "area deprivation not recorded"
    return f"lives in an area of IMD decile {int(decile)} (1 = most deprived)"


def _timing(v: dict[str, float], _a: RiskArtefact) -> str:
    weekday = "" if np.isnan(v["weekday"]) else WEEKDAYS[int(v["weekday"])] + " "
    hour = "" if np.isnan(v["hour"]) else f"{int(v['hour']):02d}:00 "
    return f"{weekday}{hour}appointment".strip()


def _clinic(v: dict[str, float], artefact: RiskArtefact) -> str:
    specialty = v["specialty"]
    name = (
        "this clinic"
        if np.isnan(specialty)
        else f"{specialty_name(artefact.vocabulary.specialties[int(specialty)])} clinic"
    )
    rate = v["clinic_dna_rate"]
    if np.isnan(rate):
        return name
    return f"{name}: {round(rate * 100)}% of its appointments are missed"


def _same_day(v: dict[str, float], _a: RiskArtefact) -> str:
    other = _count(v["n_same_day"])
    return f"{other} other appointments the same day" if other else "only appointment that day"


def _needs(v: dict[str, float], _a: RiskArtefact) -> str:
    if v["bsl_user"] == 1:
        return "needs a British Sign Language interpreter"
    if v["interpreter_needed"] == 1:
        return "needs an interpreter"
    if v["learning_disability"] == 1:
        return "has a learning disability: may need support"
    if v["communication_need"] == 1:
        return "has communication needs"
    return "no recorded communication needs"


def _sex(v: dict[str, float], _a: RiskArtefact) -> str:
    code = v["sex"]
    return "sex not known" if np.isnan(code) else f"{SEXES[SEX_CODES[int(code)]].lower()}"


def _ethnicity(v: dict[str, float], _a: RiskArtefact) -> str:
    code = v[ETHNICITY_FEATURE]
    return "ethnicity not known" if np.isnan(code) else ETHNIC_GROUP_NAMES[int(code)]


WORDING: dict[str, Callable[[dict[str, float], RiskArtefact], str]] = {
    "history": _history,
    "lead_time": _lead_time,
    "first_attendance": _first,
    "cancellations": _cancellations,
    "age": _age,
    "deprivation": _deprivation,
    "timing": _timing,
    "clinic": _clinic,
    "same_day": _same_day,
    "needs": _needs,
    "sex": _sex,
    "ethnicity": _ethnicity,
}


def contributions(
    artefact: RiskArtefact, features: FloatArray, logit: FloatArray
) -> tuple[list[str], FloatArray]:
    """Log-odds each feature group adds over the reference appointment (rows x groups).

    Counterfactual rows only where a row's values in the group differ from the reference: a
    row that already has the typical values (no interpreter, no earlier cancellations, the
    commonest sex...) gains nothing from the group, so most groups need few extra rows.
    """
    index = {name: i for i, name in enumerate(artefact.feature_names)}
    groups = [
        group for group, names in REASON_GROUPS.items() if all(name in index for name in names)
    ]
    result = np.zeros((len(features), len(groups)))
    batches: list[tuple[int, IntArray, FloatArray]] = []
    for column, group in enumerate(groups):
        columns = [index[name] for name in REASON_GROUPS[group]]
        reference = artefact.reference[columns]
        values = features[:, columns]
        same = (values == reference) | (np.isnan(values) & np.isnan(reference))
        differs = np.flatnonzero(~same.all(axis=1))
        if len(differs) == 0:
            continue
        modified = features[differs]
        modified[:, columns] = reference
        batches.append((column, differs, modified))
    if not batches:
        return groups, result
    # One predict over every counterfactual row: each call to the model pays a fixed cost
    # (thread start-up), which dominates on a busy machine when paid once per group.
    counterfactual = artefact.raw_logit(np.vstack([modified for _, _, modified in batches]))
    offset = 0
    for column, differs, _modified in batches:
        result[differs, column] = logit[differs] - counterfactual[offset : offset + len(differs)]
        offset += len(differs)
    return groups, result


def explain(artefact: RiskArtefact, features: FloatArray, logit: FloatArray) -> list[list[str]]:
    """Up to three reasons per row, strongest first; none when nothing raised the risk.

    The wording of a group depends only on that group's values, so each distinct wording is
    produced once and reused (a 100,000-row scoring run has a few thousand distinct reasons).
    """
    if len(features) == 0:
        return []
    groups, raised = contributions(artefact, features, logit)
    order = np.argsort(-raised, axis=1)[:, :MAX_REASONS]
    strength = np.take_along_axis(raised, order, axis=1)
    names = artefact.feature_names
    index = {name: i for i, name in enumerate(names)}
    group_columns = [[index[name] for name in REASON_GROUPS[group]] for group in groups]
    cache: dict[tuple[int, tuple[float, ...]], str] = {}
    # NaN != NaN, so the cache key maps NaN to a sentinel that no feature takes.
    keyed = np.where(np.isnan(features), -1e300, features).tolist()
    reasons: list[list[str]] = []
    for row, (row_order, row_strength) in enumerate(
        zip(order.tolist(), strength.tolist(), strict=True)
    ):
        row_reasons = []
        for column, contribution in zip(row_order, row_strength, strict=True):
            if contribution < MIN_CONTRIBUTION:
                break
            columns = group_columns[column]
            key = (column, tuple(keyed[row][c] for c in columns))
            text = cache.get(key)
            if text is None:
                values = {names[c]: float(features[row, c]) for c in columns}
                text = WORDING[groups[column]](values, artefact)
                cache[key] = text
            row_reasons.append(text)
        reasons.append(row_reasons)
    return reasons
