"""Leak-free features of appointments, built in bulk with numpy.

An appointment scored at moment T sees only what the service knew before T: its own booking
details, the patient's recorded attributes, and the patient's earlier appointments that started
before T with outcomes recorded before T (`outcome_recorded_at < T`). Its own outcome, and any
outcome recorded at or after T, can never change a feature (tests/risk/test_features.py).

History counts use one trick throughout: every event gets a sort key
`patient_index * 2**32 + seconds`, so "events of this patient strictly before T" is one
`searchsorted` on the sorted keys, and counts are differences of prefix sums. That keeps the
cost at a few sorts of the history however many appointments are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from app.reference.codes import AGE_BANDS, ETHNIC_GROUPS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Seconds since this epoch fit in 32 bits until 2136; times before it are clamped to it.
EPOCH0 = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
SHIFT = np.int64(2**32)
NEVER = np.iinfo(np.int64).max // 4  # "outcome not recorded": never known at any T
DAY = 86_400
LAST_N = 4  # "missed k of the last 4 appointments"

ETHNICITY_FEATURE = "ethnic_group"
ETHNIC_GROUP_NAMES: tuple[str, ...] = tuple(dict.fromkeys(ETHNIC_GROUPS.values()))

# Categorical features are small non-negative integer codes (NaN = missing/unknown) so the
# gradient-boosting model can use its native categorical splits.
BASE_FEATURES: tuple[str, ...] = (
    "lead_time_days",
    "weekday",
    "hour",
    "specialty",
    "clinic_dna_rate",
    "first_attendance",
    "age_band",
    "sex",
    "imd_decile",
    "interpreter_needed",
    "communication_need",
    "bsl_user",
    "learning_disability",
    "n_prior_appointments",
    "n_prior_attended",
    "n_prior_dna",
    "prior_dna_rate",
    "shrunk_prior_dna_rate",
    "dna_last_4",
    "known_last_4",
    "days_since_last_dna",
    "n_prior_patient_cancellations",
    "n_prior_provider_cancellations",
    "n_prior_reschedules",
    "n_same_day",
)
# Weekday and hour are ordered numbers rather than categories, and a clinic enters through its
# own DNA rate known before T: both generalise better than one split per category value.
CATEGORICAL_FEATURES = frozenset({"specialty", "age_band", "sex"})
# Pseudo-appointments at the trust-wide rate that shrink a small clinic's DNA rate.
CLINIC_RATE_PSEUDOCOUNT = 50.0
# The same for a patient's own rate: with few earlier appointments the trust's rate dominates,
# which ranks a patient with 1 DNA in 1 below one with 5 in 6 (trees cannot easily learn this
# ratio-with-prior from raw counts on small data).
PATIENT_RATE_PSEUDOCOUNT = 2.0
CATEGORICAL_FEATURES_WITH_ETHNICITY = CATEGORICAL_FEATURES | {ETHNICITY_FEATURE}
SEX_CODES = ("M", "F", "X", "U")
# Clinics beyond this many (by training frequency) are treated as "unknown clinic": native
# categorical splits need fewer categories than the model's bins.
MAX_CLINIC_CATEGORIES = 200


def feature_names(*, include_ethnicity: bool) -> list[str]:
    names = list(BASE_FEATURES)
    if include_ethnicity:
        names.append(ETHNICITY_FEATURE)
    return names


def categorical_mask(names: list[str]) -> list[bool]:
    return [name in CATEGORICAL_FEATURES_WITH_ETHNICITY for name in names]


@dataclass
class AppointmentHistory:
    """Appointments of a set of patients as columns (times in seconds since the Unix epoch).

    `patient` indexes the patient columns (`birth_day` ... `ethnic_category`); clinics are
    codes. Every appointment of the patients is here, scored ones and their histories alike.
    """

    appointment_id: IntArray
    patient: IntArray
    clinic_code: npt.NDArray[np.object_]
    specialty_code: npt.NDArray[np.object_]
    booked_s: IntArray
    start_s: IntArray
    first_attendance: FloatArray  # 1, 0 or NaN
    attendance_code: IntArray  # ATTENDED OR DID NOT ATTEND as an int, 0 = unknown
    recorded_s: IntArray  # NEVER when no outcome has been recorded
    replaces_other: BoolArray
    called: BoolArray  # had a navigator call (appointment_contacts channel "call")
    birth_day: IntArray  # days since the Unix epoch, per patient
    sex: npt.NDArray[np.object_]
    imd_decile: FloatArray
    core20: BoolArray
    interpreter_needed: BoolArray
    communication_needs: npt.NDArray[np.object_]
    learning_disability: BoolArray
    ethnic_category: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.appointment_id)


@dataclass
class Vocabulary:
    """Category codes learnt at training and stored with the model."""

    specialties: list[str] = field(default_factory=list)
    clinics: list[str] = field(default_factory=list)

    @classmethod
    def learn(cls, history: AppointmentHistory, rows: IntArray) -> Vocabulary:
        specialties = sorted({str(code) for code in history.specialty_code[rows] if code})
        clinics, counts = np.unique(history.clinic_code[rows].astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")[:MAX_CLINIC_CATEGORIES]
        return cls(specialties=specialties, clinics=sorted(str(c) for c in clinics[order]))

    def as_dict(self) -> dict[str, list[str]]:
        return {"specialties": self.specialties, "clinics": self.clinics}


def scoring_moments(history: AppointmentHistory, rows: IntArray, horizon_days: int) -> IntArray:
    """The backtest moment of each appointment: `max(booked_at, start_at - horizon)`.

    Capped at `start_at` so that a booking recorded after the start (bad data) can never
    let an appointment see its own outcome.
    """
    start = history.start_s[rows]
    moment = np.maximum(history.booked_s[rows], start - horizon_days * DAY)
    return np.minimum(moment, start)


def _encode(values: npt.NDArray[np.object_], vocabulary: list[str]) -> FloatArray:
    lookup = {code: float(index) for index, code in enumerate(vocabulary)}
    return np.array([lookup.get(str(v), np.nan) if v else np.nan for v in values], dtype=float)


def _local_seconds(start_s: IntArray, timezone: str) -> IntArray:
    """Seconds since the epoch on the trust's local clock; offsets looked up once per hour."""
    zone = ZoneInfo(timezone)
    hours, inverse = np.unique(start_s // 3600, return_inverse=True)
    offsets = np.array(
        [
            datetime.fromtimestamp(int(h) * 3600, UTC).astimezone(zone).utcoffset().total_seconds()  # type: ignore[union-attr]
            for h in hours
        ],
        dtype=np.int64,
    )
    return np.asarray(start_s + offsets[inverse], dtype=np.int64)


def _local_weekday_hour(start_s: IntArray, timezone: str) -> tuple[FloatArray, FloatArray]:
    """Weekday and hour in the trust's local time."""
    local = _local_seconds(start_s, timezone)
    days = local // DAY
    weekday = ((days + 3) % 7).astype(float)  # 1970-01-01 was a Thursday (Monday = 0)
    hour = ((local % DAY) // 3600).astype(float)
    return weekday, hour


def _age_band_codes(age_years: FloatArray) -> FloatArray:
    codes = np.full(age_years.shape, np.nan)
    for index, (low, high, _label) in enumerate(AGE_BANDS):
        codes[(age_years >= low) & (age_years <= high)] = index
    codes[age_years > AGE_BANDS[-1][1]] = len(AGE_BANDS) - 1
    return codes


class _PrefixCounter:
    """Counts and weighted sums of a patient's events strictly before a moment."""

    def __init__(self, group: IntArray, seconds: IntArray, weights: dict[str, FloatArray]):
        keys = group * SHIFT + np.clip(seconds - EPOCH0, 0, SHIFT - 1)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.order = order
        self.cumulative = {
            name: np.concatenate(([0.0], np.cumsum(values[order])))
            for name, values in weights.items()
        }
        self.count = np.arange(len(keys) + 1, dtype=float)

    def positions(self, group: IntArray, moment: IntArray) -> tuple[IntArray, IntArray]:
        """(first event of the group, first event at or after the moment) in sorted order."""
        base = group * SHIFT
        start = np.searchsorted(self.keys, base, side="left")
        end = np.searchsorted(self.keys, base + np.clip(moment - EPOCH0, 0, SHIFT - 1), "left")
        return start.astype(np.int64), end.astype(np.int64)

    def total(self, name: str, start: IntArray, end: IntArray) -> FloatArray:
        cumulative = self.cumulative[name]
        return cumulative[end] - cumulative[start]


def build_features(
    history: AppointmentHistory,
    rows: IntArray,
    moments: IntArray,
    vocabulary: Vocabulary,
    *,
    timezone: str,
    include_ethnicity: bool,
) -> FloatArray:
    """The feature matrix (rows x `feature_names(...)`) of `history[rows]` as known at `moments`.

    Missing values are NaN; the model handles them natively, so a trust that does not record
    IMD or first/follow-up still gets scores.
    """
    rows = np.asarray(rows, dtype=np.int64)
    moments = np.asarray(moments, dtype=np.int64)
    columns: dict[str, FloatArray] = {}
    start = history.start_s[rows]
    booked = history.booked_s[rows]
    patient = history.patient[rows]

    columns["lead_time_days"] = np.maximum(start - booked, 0) / DAY
    columns["weekday"], columns["hour"] = _local_weekday_hour(start, timezone)
    columns["specialty"] = _encode(history.specialty_code[rows], vocabulary.specialties)
    columns["first_attendance"] = history.first_attendance[rows]
    age_years = np.floor((start // DAY - history.birth_day[patient]) / 365.25)
    columns["age_band"] = _age_band_codes(age_years)
    columns["sex"] = _encode(history.sex[patient], list(SEX_CODES))
    columns["imd_decile"] = history.imd_decile[patient]
    columns["interpreter_needed"] = history.interpreter_needed[patient].astype(float)
    needs = history.communication_needs[patient]
    columns["communication_need"] = np.array([bool(n) for n in needs], dtype=float)
    columns["bsl_user"] = np.array(["bsl" in str(n).split(";") for n in needs], dtype=float)
    columns["learning_disability"] = history.learning_disability[patient].astype(float)

    columns.update(_history_features(history, patient, moments, rows, timezone))
    trust_rate = _trust_dna_rate(history, moments)
    columns["clinic_dna_rate"] = _clinic_dna_rate(history, rows, moments, trust_rate)
    seen = columns["n_prior_dna"] + columns["n_prior_attended"]
    columns["shrunk_prior_dna_rate"] = (
        columns["n_prior_dna"] + PATIENT_RATE_PSEUDOCOUNT * trust_rate
    ) / (seen + PATIENT_RATE_PSEUDOCOUNT)

    if include_ethnicity:
        groups = np.array([ETHNIC_GROUPS.get(str(c), "Not known") for c in history.ethnic_category])
        columns[ETHNICITY_FEATURE] = _encode(groups[patient], list(ETHNIC_GROUP_NAMES))

    names = feature_names(include_ethnicity=include_ethnicity)
    return np.column_stack([columns[name] for name in names]).astype(np.float64)


def _history_features(
    history: AppointmentHistory,
    patient: IntArray,
    moments: IntArray,
    rows: IntArray,
    timezone: str,
) -> dict[str, FloatArray]:
    code = history.attendance_code
    known = (code != 0) & (history.recorded_s < NEVER)
    # An outcome is known once the appointment has started and the outcome was recorded.
    known_at = np.maximum(history.start_s, history.recorded_s)
    dna = (code == 3) | (code == 7)
    attended = (code == 5) | (code == 6)

    outcomes = np.flatnonzero(known)
    counter = _PrefixCounter(
        history.patient[outcomes],
        known_at[outcomes],
        {
            "dna": dna[outcomes].astype(float),
            "attended": attended[outcomes].astype(float),
            "patient_cancel": (code[outcomes] == 2).astype(float),
            "provider_cancel": (code[outcomes] == 4).astype(float),
        },
    )
    first, end = counter.positions(patient, moments)
    n_dna = counter.total("dna", first, end)
    n_attended = counter.total("attended", first, end)
    seen = n_dna + n_attended
    with np.errstate(invalid="ignore", divide="ignore"):
        prior_rate = np.where(seen > 0, n_dna / np.maximum(seen, 1), np.nan)

    # The last four attended-or-missed outcomes known before T.
    decided = np.flatnonzero(known & (dna | attended))
    last = _PrefixCounter(
        history.patient[decided], known_at[decided], {"dna": dna[decided].astype(float)}
    )
    first4, end4 = last.positions(patient, moments)
    from4 = np.maximum(end4 - LAST_N, first4)
    dna_last = last.total("dna", from4, end4)
    known_last = (end4 - from4).astype(float)

    # Days from the latest missed appointment (known before T) to T.
    missed = np.flatnonzero(known & dna)
    missed_counter = _PrefixCounter(history.patient[missed], known_at[missed], {})
    firstd, endd = missed_counter.positions(patient, moments)
    has_missed = endd > firstd
    latest = missed[missed_counter.order[np.maximum(endd - 1, 0)]] if len(missed) else None
    days_since = np.full(len(patient), np.nan)
    if latest is not None:
        gap = (moments - history.start_s[latest]) / DAY
        days_since = np.where(has_missed, gap, np.nan)

    # Appointments that started before T, whatever their outcome.
    started = _PrefixCounter(history.patient, history.start_s, {})
    firsts, ends = started.positions(patient, moments)

    # Rebookings the patient had made before T.
    rebooked = np.flatnonzero(history.replaces_other)
    rebook_counter = _PrefixCounter(history.patient[rebooked], history.booked_s[rebooked], {})
    firstr, endr = rebook_counter.positions(patient, moments)

    # Other appointments on the same local day, booked before T.
    day_group = _same_day_groups(history.patient, _local_seconds(history.start_s, timezone))
    same_day = _PrefixCounter(day_group, history.booked_s, {})
    firsts_d, ends_d = same_day.positions(day_group[rows], moments)
    self_booked_before = (history.booked_s[rows] < moments).astype(float)

    return {
        "n_prior_appointments": (ends - firsts).astype(float),
        "n_prior_attended": n_attended,
        "n_prior_dna": n_dna,
        "prior_dna_rate": prior_rate,
        "dna_last_4": dna_last,
        "known_last_4": known_last,
        "days_since_last_dna": days_since,
        "n_prior_patient_cancellations": counter.total("patient_cancel", first, end),
        "n_prior_provider_cancellations": counter.total("provider_cancel", first, end),
        "n_prior_reschedules": (endr - firstr).astype(float),
        "n_same_day": np.maximum((ends_d - firsts_d) - self_booked_before, 0.0),
    }


def _decided_outcomes(history: AppointmentHistory) -> tuple[IntArray, IntArray, FloatArray]:
    """Rows with a recorded DNA or attendance, when each became known, and whether a DNA."""
    code = history.attendance_code
    dna = (code == 3) | (code == 7)
    decided = np.flatnonzero((dna | (code == 5) | (code == 6)) & (history.recorded_s < NEVER))
    known_at = np.maximum(history.start_s, history.recorded_s)[decided]
    return decided, known_at, dna[decided].astype(float)


def _trust_dna_rate(history: AppointmentHistory, moments: IntArray) -> FloatArray:
    """The trust-wide DNA rate over outcomes known before each moment."""
    decided, known_at, dna = _decided_outcomes(history)
    trust = _PrefixCounter(np.zeros(len(decided), dtype=np.int64), known_at, {"dna": dna})
    first, end = trust.positions(np.zeros(len(moments), dtype=np.int64), moments)
    seen = (end - first).astype(float)
    return np.where(seen > 0, trust.total("dna", first, end) / np.maximum(seen, 1), np.nan)


def _clinic_dna_rate(
    history: AppointmentHistory, rows: IntArray, moments: IntArray, trust_rate: FloatArray
) -> FloatArray:
    """Each clinic's DNA rate over outcomes known before T, shrunk towards the trust's rate."""
    decided, known_at, dna = _decided_outcomes(history)
    _codes, clinic = np.unique(history.clinic_code.astype(str), return_inverse=True)
    clinic = clinic.astype(np.int64)
    by_clinic = _PrefixCounter(clinic[decided], known_at, {"dna": dna})
    first, end = by_clinic.positions(clinic[rows], moments)
    seen = (end - first).astype(float)
    return (by_clinic.total("dna", first, end) + CLINIC_RATE_PSEUDOCOUNT * trust_rate) / (
        seen + CLINIC_RATE_PSEUDOCOUNT
    )


def _same_day_groups(patient: IntArray, local_start_s: IntArray) -> IntArray:
    """A dense id per (patient, local calendar day of the start).

    Local, not UTC: in British Summer Time a 00:30 appointment belongs to the same day as the
    afternoon clinic, while its UTC time falls on the day before.
    """
    keys = patient * np.int64(100_000) + local_start_s // DAY
    _unique, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int64)
