"""A synthetic NHS trust written as PAS extracts (`patients.csv`, `appointments.csv`).

Everything is drawn with numpy from one seeded generator, so a seed and a `today` give the
same files byte for byte. Patients live in real LSOAs of the catchment drawn by population;
outcomes come from the generative model in `app.synth.dna_model`. Synthetic values only:
fictional names, NHS numbers from the 999 test range, phone numbers from Ofcom's drama
ranges. The summary reports realised DNA rates by IMD decile and ethnic group.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.errors import InvalidInputError
from app.reference.codes import ETHNIC_GROUPS
from app.reference.imd import lsoa_table
from app.synth.dna_model import DEFAULT_MODEL, DnaModel, dna_probability

CATCHMENTS: dict[str, tuple[str, ...]] = {
    "leicester": (
        "Leicester",
        "Blaby",
        "Charnwood",
        "Harborough",
        "Hinckley and Bosworth",
        "Melton",
        "North West Leicestershire",
        "Oadby and Wigston",
        "Rutland",
    ),
    "royal-free": ("Barnet", "Camden", "Enfield", "Haringey"),
}
SITES: dict[str, tuple[tuple[str, str], ...]] = {
    "leicester": (
        ("LRI", "Leicester Royal Infirmary"),
        ("LGH", "Leicester General Hospital"),
        ("GH", "Glenfield Hospital"),
    ),
    "royal-free": (
        ("RFH", "Royal Free Hospital"),
        ("BH", "Barnet Hospital"),
        ("CFH", "Chase Farm Hospital"),
    ),
}
POSTCODE_AREAS = {"leicester": ("LE", 19), "royal-free": ("N", 22)}
# Ethnic mix of minority residents (codes D-S), by catchment; White residents are A/B/C.
MINORITY_MIX: dict[str, dict[str, float]] = {
    "leicester": {
        "H": 0.42, "J": 0.06, "K": 0.03, "L": 0.07, "D": 0.03, "E": 0.02, "F": 0.03, "G": 0.02,
        "M": 0.03, "N": 0.09, "P": 0.02, "R": 0.03, "S": 0.15,
    },
    "royal-free": {
        "H": 0.10, "J": 0.03, "K": 0.06, "L": 0.10, "D": 0.04, "E": 0.03, "F": 0.04, "G": 0.05,
        "M": 0.08, "N": 0.16, "P": 0.04, "R": 0.06, "S": 0.21,
    },
}  # fmt: skip
WHITE_MIX = {"A": 0.84, "B": 0.03, "C": 0.13}
NOT_STATED_RATE = 0.03  # Z: asked and declined
NOT_KNOWN_RATE = 0.04  # 99: never asked (a data-quality signal the service reports)
# Non-English preferred language by ethnic code: (language, probability).
LANGUAGES: dict[str, dict[str, list[tuple[str, float]]]] = {
    "leicester": {
        "H": [("gu", 0.30), ("pa", 0.10)],
        "J": [("ur", 0.25), ("pa", 0.10)],
        "K": [("bn", 0.30)],
        "N": [("so", 0.30)],
        "C": [("pl", 0.35), ("ro", 0.10)],
        "S": [("ar", 0.15)],
    },
    "royal-free": {
        "C": [("pl", 0.15), ("ro", 0.15), ("tr", 0.10)],
        "N": [("so", 0.25)],
        "K": [("bn", 0.30)],
        "S": [("tr", 0.20), ("ar", 0.10)],
        "L": [("ta", 0.20)],
    },
}
INTERPRETER_GIVEN_LANGUAGE = 0.5
COMMUNICATION_NEED_RATES = {
    "bsl": 0.002,
    "deafblind": 0.0002,
    "large_print": 0.008,
    "easy_read": 0.004,
    "braille": 0.0005,
    "advocate": 0.004,
}
LEARNING_DISABILITY_RATE = 0.008
SMS_OPT_OUT_RATE = 0.03
NO_MOBILE_RATE = 0.07
INVALID_MOBILE_RATE = 0.015
LANDLINE_RATE = 0.35
NO_NHS_NUMBER_RATE = 0.01
# Outpatient ages skew older: (low, high, share).
AGE_BANDS = ((0, 17, 0.11), (18, 35, 0.19), (36, 50, 0.18), (51, 64, 0.21), (65, 79, 0.21),
             (80, 99, 0.10))  # fmt: skip
SEX_MIX = {"F": 0.54, "M": 0.455, "X": 0.001, "U": 0.004}
# Clinics per specialty and the share of appointments they see.
SPECIALTY_MIX = {"120": 0.14, "144": 0.08, "140": 0.07, "330": 0.14, "340": 0.12, "300": 0.10,
                 "110": 0.14, "320": 0.10, "502": 0.07, "100": 0.04}  # fmt: skip
APPOINTMENTS_PER_PATIENT_YEAR = 4.4
PATIENT_CANCELLED_RATE = 0.05  # code 2
PROVIDER_CANCELLED_RATE = 0.06  # code 4
LATE_NOT_SEEN_SHARE = 0.08  # of DNAs, code 7 rather than 3
LATE_SEEN_SHARE = 0.06  # of attendances, code 6 rather than 5
NEW_REFERRAL_RATE = 0.12  # a later appointment that is a first attendance elsewhere

GIVEN_NAMES = ("Alex", "Sam", "Jordan", "Priya", "Amir", "Zofia", "Ayaan", "Leah", "Omar",
               "Grace", "Hamza", "Isla", "Ravi", "Nadia", "Tomasz", "Ife", "Mei", "Callum",
               "Anjali", "Kofi", "Ruth", "Yusuf", "Hana", "Owen", "Sara", "Deepa", "Liam",
               "Fatima", "Noah", "Elif")  # fmt: skip
FAMILY_NAMES = ("Ashdown", "Brightwell", "Carrow", "Dunmore", "Ellery", "Fairhurst", "Glenholm",
                "Hartwell", "Ivesley", "Jessop", "Kilbride", "Larchfield", "Merriweather",
                "Northam", "Oakridge", "Pendlebury", "Quarrie", "Rushmere", "Stanwick", "Thorne",
                "Underhill", "Vallance", "Westerby", "Yardley", "Patelworth", "Khanmore",
                "Mistrywood", "Nowakfield", "Ahmedley", "Osmanby")  # fmt: skip

PATIENT_HEADER = ("patient_id", "nhs_number", "family_name", "given_name", "birth_date", "sex",
                  "ethnic_category", "postcode", "lsoa_code", "mobile_phone", "landline_phone",
                  "preferred_language", "interpreter_needed", "communication_needs",
                  "learning_disability", "sms_opt_out")  # fmt: skip
APPOINTMENT_HEADER = ("appointment_id", "patient_id", "clinic_code", "specialty_code", "site",
                      "booked_at", "start_at", "first_attendance", "attendance_code")  # fmt: skip


@dataclass
class SynthSummary:
    out_dir: str
    patients: int
    appointments: int
    past_appointments: int
    future_appointments: int
    clinics: int
    dna_rate: float
    dna_rate_first: float
    dna_rate_follow_up: float
    dna_rate_respiratory: float
    by_imd_decile: dict[str, dict[str, float]] = field(default_factory=dict)
    by_ethnic_group: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def human(self) -> str:
        lines = [
            f"Wrote {self.patients:,} patients and {self.appointments:,} appointments "
            f"({self.past_appointments:,} past, {self.future_appointments:,} future, "
            f"{self.clinics} clinics) to {self.out_dir} in {self.seconds:.1f} s",
            f"DNA rate (past appointments that were not cancelled): {self.dna_rate:.1%}; "
            f"first {self.dna_rate_first:.1%}, follow-up {self.dna_rate_follow_up:.1%}, "
            f"respiratory {self.dna_rate_respiratory:.1%}",
            "By IMD decile (1 = most deprived):",
        ]
        for decile, row in self.by_imd_decile.items():
            lines.append(f"  {decile:>8}  {row['dna_rate']:6.1%}  of {int(row['appointments']):,}")
        lines.append("By ethnic group:")
        for group, row in self.by_ethnic_group.items():
            lines.append(f"  {group:<24}  {row['dna_rate']:6.1%}  of {int(row['appointments']):,}")
        return "\n".join(lines)


def _choice(rng: np.random.Generator, mix: dict[str, float], size: int) -> npt.NDArray[np.str_]:
    keys = np.array(list(mix))
    weights = np.array(list(mix.values()), dtype=np.float64)
    return keys[rng.choice(len(keys), size=size, p=weights / weights.sum())]


def _nhs_numbers(rng: np.random.Generator, size: int) -> npt.NDArray[np.str_]:
    """Unique NHS numbers in the 999 test range with a valid modulus 11 check digit."""
    # 999 + six digits + check digit: about 909,000 valid numbers in the test range.
    if size > 850_000:
        raise InvalidInputError("at most 850,000 synthetic patients fit the NHS number test range")
    candidates = rng.choice(1_000_000, size=min(int(size * 1.15) + 100, 1_000_000), replace=False)
    digits = np.stack([(candidates // 10**p) % 10 for p in range(5, -1, -1)], axis=1)
    stem = np.concatenate([np.full((len(candidates), 3), 9), digits], axis=1)
    total = (stem * np.arange(10, 1, -1)).sum(axis=1)
    check = 11 - total % 11
    check[check == 11] = 0
    keep = check != 10
    numbers = 9_990_000_000 + candidates[keep] * 10 + check[keep]
    return numbers[:size].astype(str)


def _format_mobiles(rng: np.random.Generator, size: int) -> npt.NDArray[np.str_]:
    local = rng.integers(0, 1000, size=size)
    style = rng.integers(0, 3, size=size)
    formatted = np.where(
        style == 0,
        np.char.add("07700 900", np.char.zfill(local.astype(str), 3)),
        np.where(
            style == 1,
            np.char.add("+447700900", np.char.zfill(local.astype(str), 3)),
            np.char.add("07700900", np.char.zfill(local.astype(str), 3)),
        ),
    )
    return np.asarray(formatted, dtype=object)


def write_trust(
    out_dir: Path,
    *,
    patients: int = 5_000,
    weeks_history: int = 52,
    weeks_ahead: int = 3,
    catchment: str = "leicester",
    seed: int = 1,
    today: date,
    model: DnaModel = DEFAULT_MODEL,
) -> SynthSummary:
    """Write patients.csv and appointments.csv for a synthetic trust into `out_dir`."""
    if catchment not in CATCHMENTS:
        raise InvalidInputError(
            f"unknown catchment '{catchment}'; choose one of {', '.join(CATCHMENTS)}"
        )
    if patients < 1 or weeks_history < 0 or weeks_ahead < 0:
        raise InvalidInputError("patients must be positive and weeks must not be negative")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = patients

    # --- patients -------------------------------------------------------------------------
    authorities = set(CATCHMENTS[catchment])
    lsoas = [lsoa for lsoa in lsoa_table().values() if lsoa.local_authority in authorities]
    lsoas.sort(key=lambda lsoa: lsoa.code)
    lsoa_codes = np.array([lsoa.code for lsoa in lsoas])
    population = np.array([max(lsoa.population, 1) for lsoa in lsoas], dtype=np.float64)
    minority_share = np.array([lsoa.ethnic_minority_share for lsoa in lsoas])
    deciles = np.array([lsoa.imd_decile for lsoa in lsoas], dtype=np.int64)
    home = rng.choice(len(lsoas), size=n, p=population / population.sum())
    imd_decile = deciles[home]

    minority = rng.random(n) < minority_share[home]
    ethnic = np.where(
        minority, _choice(rng, MINORITY_MIX[catchment], n), _choice(rng, WHITE_MIX, n)
    ).astype(object)
    recording = rng.random(n)
    ethnic[recording < NOT_STATED_RATE] = "Z"
    ethnic[(recording >= NOT_STATED_RATE) & (recording < NOT_STATED_RATE + NOT_KNOWN_RATE)] = "99"
    group = np.array([ETHNIC_GROUPS[code] for code in ethnic])

    band = rng.choice(len(AGE_BANDS), size=n, p=[b[2] for b in AGE_BANDS])
    low = np.array([b[0] for b in AGE_BANDS])[band]
    high = np.array([b[1] for b in AGE_BANDS])[band]
    age_days = ((low + rng.random(n) * (high - low + 1)) * 365.25).astype(np.int64)
    today64 = np.datetime64(today.isoformat(), "D")
    birth = today64 - age_days.astype("timedelta64[D]")
    age_years = age_days / 365.25
    sex = _choice(rng, SEX_MIX, n)

    language = np.full(n, "en", dtype=object)
    draw = rng.random(n)
    for ethnic_code, options in LANGUAGES[catchment].items():
        cumulative = 0.0
        for lang, share in options:
            chosen = (ethnic == ethnic_code) & (draw >= cumulative) & (draw < cumulative + share)
            language[chosen] = lang
            cumulative += share
    interpreter = (language != "en") & (rng.random(n) < INTERPRETER_GIVEN_LANGUAGE)
    learning_disability = rng.random(n) < LEARNING_DISABILITY_RATE
    need_lists: list[list[str]] = [[] for _ in range(n)]
    for need, need_rate in COMMUNICATION_NEED_RATES.items():
        boost = np.ones(n)
        if need == "large_print":
            boost = np.where(age_years >= 80, 3.0, 1.0)
        elif need == "easy_read":
            boost = np.where(learning_disability, 20.0, 1.0)
        for index in np.flatnonzero(rng.random(n) < need_rate * boost):
            need_lists[index].append(need)
    communication = np.array([";".join(needs) for needs in need_lists], dtype=object)
    has_need = communication != ""

    mobile = _format_mobiles(rng, n)
    phone_draw = rng.random(n)
    no_mobile_rate = np.where(age_years >= 80, NO_MOBILE_RATE * 3, NO_MOBILE_RATE)
    mobile[phone_draw < no_mobile_rate] = ""
    invalid = (phone_draw >= no_mobile_rate) & (phone_draw < no_mobile_rate + INVALID_MOBILE_RATE)
    mobile[invalid] = np.char.add(
        "07700 9", rng.integers(0, 100, size=int(invalid.sum())).astype(str)
    )
    landline = np.where(
        rng.random(n) < LANDLINE_RATE,
        np.char.add("0113 496 0", np.char.zfill(rng.integers(0, 1000, size=n).astype(str), 3)),
        "",
    )
    sms_opt_out = rng.random(n) < SMS_OPT_OUT_RATE
    nhs = _nhs_numbers(rng, n).astype(object)
    nhs[rng.random(n) < NO_NHS_NUMBER_RATE] = ""
    area, districts = POSTCODE_AREAS[catchment]
    letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
    postcode = [
        f"{area}{d} {s}{a}{b}"
        for d, s, a, b in zip(
            rng.integers(1, districts + 1, n),
            rng.integers(1, 10, n),
            letters[rng.integers(0, len(letters), n)],
            letters[rng.integers(0, len(letters), n)],
            strict=True,
        )
    ]
    given = np.array(GIVEN_NAMES)[rng.integers(0, len(GIVEN_NAMES), n)]
    family = np.array(FAMILY_NAMES)[rng.integers(0, len(FAMILY_NAMES), n)]
    patient_ids = np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 8))
    latent = rng.normal(0.0, model.latent_propensity_sd, n)

    # --- clinics ----------------------------------------------------------------------------
    sites = SITES[catchment]
    clinic_codes: list[str] = []
    clinic_specialty: list[str] = []
    clinic_site: list[str] = []
    clinic_weight: list[float] = []
    for specialty, share in SPECIALTY_MIX.items():
        count = 3 if share >= 0.12 else 2
        for slot in range(count):
            site_code, site_name = sites[slot % len(sites)]
            clinic_codes.append(f"{specialty}-{site_code}-{slot + 1}")
            clinic_specialty.append(specialty)
            clinic_site.append(site_name)
            clinic_weight.append(share / count)
    weights = np.array(clinic_weight) / sum(clinic_weight)

    # --- appointments -----------------------------------------------------------------------
    total_days = (weeks_history + weeks_ahead) * 7
    intensity = rng.gamma(2.0, 0.5, n) * np.where(age_years >= 65, 1.3, 1.0)
    counts = rng.poisson(APPOINTMENTS_PER_PATIENT_YEAR * intensity * total_days / 365.25)
    patient_of = np.repeat(np.arange(n), counts)
    m = len(patient_of)
    offset_day = (
        rng.integers(-weeks_history * 7, weeks_ahead * 7, m)
        if total_days
        else np.zeros(m, np.int64)
    )
    start_day = today64 + offset_day.astype("timedelta64[D]")
    weekday = (start_day.astype(np.int64) + 3) % 7  # 0 = Monday
    start_day = start_day - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0)).astype(
        "timedelta64[D]"
    )
    order = np.lexsort((start_day, patient_of))
    patient_of = patient_of[order]
    start_day = start_day[order]
    start_minutes = (8 * 60 + 30 + rng.integers(0, 33, m) * 15).astype("timedelta64[m]")
    start_at = start_day.astype("datetime64[m]") + start_minutes
    first_index = np.r_[0, np.flatnonzero(np.diff(patient_of)) + 1] if m else np.array([], int)
    rank = np.arange(m) - np.repeat(first_index, np.diff(np.r_[first_index, m]))
    first = (rank == 0) | (rng.random(m) < NEW_REFERRAL_RATE)
    home_clinic = rng.choice(len(clinic_codes), size=n, p=weights)
    clinic = np.where(
        first & (rank > 0),
        rng.choice(len(clinic_codes), size=m, p=weights),
        home_clinic[patient_of],
    )
    # Lead time: first appointments wait longer (referral to first outpatient slot).
    lead_days = np.clip(np.round(rng.lognormal(np.where(first, 3.4, 3.1), 0.8, m)), 1, 300).astype(
        np.int64
    )
    booked_at = (start_at.astype("datetime64[D]") - lead_days.astype("timedelta64[D]")).astype(
        "datetime64[m]"
    ) + (9 * 60 + rng.integers(0, 32, m) * 15).astype("timedelta64[m]")
    booked_at = np.minimum(booked_at, start_at - np.timedelta64(60, "m"))

    specialty_codes = np.array(clinic_specialty)[clinic]
    past = start_day < today64
    cancel_draw = rng.random(m)
    cancelled_by_patient = past & (cancel_draw < PATIENT_CANCELLED_RATE)
    cancelled_by_provider = (
        past
        & (cancel_draw >= PATIENT_CANCELLED_RATE)
        & (cancel_draw < PATIENT_CANCELLED_RATE + PROVIDER_CANCELLED_RATE)
    )
    held = past & ~cancelled_by_patient & ~cancelled_by_provider

    specialty_effect = model.specialty_effect(specialty_codes)
    deprivation_slope = model.deprivation_slope(specialty_codes)
    start_weekday = (start_day.astype(np.int64) + 3) % 7  # 0 = Monday
    group_effect = model.ethnic_group_effect(group)[patient_of]
    dna = np.zeros(m, dtype=bool)
    prior_dnas = np.zeros(n, dtype=np.int64)
    max_rank = int(rank.max()) + 1 if m else 0
    for k in range(max_rank):
        at = np.flatnonzero((rank == k) & held)
        who = patient_of[at]
        probability = dna_probability(
            model,
            first_appointment=first[at],
            specialty_effect=specialty_effect[at],
            imd_decile=imd_decile[who],
            age_years=age_years[who],
            male=sex[who] == "M",
            lead_days=lead_days[at].astype(np.float64),
            prior_dnas=prior_dnas[who],
            interpreter_needed=interpreter[who],
            communication_need=has_need[who],
            learning_disability=learning_disability[who],
            ethnic_group_effect=group_effect[at],
            latent_propensity=latent[who],
            deprivation_slope=deprivation_slope[at],
            weekday=start_weekday[at],
        )
        outcome = rng.random(len(at)) < probability
        dna[at] = outcome
        prior_dnas[who] += outcome

    late = rng.random(m)
    attendance = np.full(m, "0", dtype=object)
    attendance[held & ~dna] = np.where(late[held & ~dna] < LATE_SEEN_SHARE, "6", "5")
    attendance[held & dna] = np.where(late[held & dna] < LATE_NOT_SEEN_SHARE, "7", "3")
    attendance[cancelled_by_patient] = "2"
    attendance[cancelled_by_provider] = "4"

    # --- files --------------------------------------------------------------------------------
    _write_csv(
        out_dir / "patients.csv",
        PATIENT_HEADER,
        zip(
            patient_ids.tolist(), nhs.tolist(), family.tolist(), given.tolist(),
            birth.astype(str).tolist(), sex.tolist(), ethnic.tolist(), postcode,
            lsoa_codes[home].tolist(), mobile.tolist(), landline.tolist(), language.tolist(),
            _bools(interpreter), communication.tolist(), _bools(learning_disability),
            _bools(sms_opt_out), strict=True,
        ),
    )  # fmt: skip
    by_start = np.argsort(start_at, kind="stable")
    appointment_ids = np.char.add("A", np.char.zfill(np.arange(1, m + 1).astype(str), 9))
    _write_csv(
        out_dir / "appointments.csv",
        APPOINTMENT_HEADER,
        zip(
            appointment_ids.tolist(), patient_ids[patient_of[by_start]].tolist(),
            np.array(clinic_codes)[clinic[by_start]].tolist(), specialty_codes[by_start].tolist(),
            np.array(clinic_site)[clinic[by_start]].tolist(),
            np.datetime_as_string(booked_at[by_start], unit="m").tolist(),
            np.datetime_as_string(start_at[by_start], unit="m").tolist(),
            _bools(first[by_start]), attendance[by_start].tolist(), strict=True,
        ),
    )  # fmt: skip

    def rate(mask: npt.NDArray[np.bool_]) -> float:
        denominator = int((held & mask).sum())
        return round(float((dna & held & mask).sum()) / denominator, 4) if denominator else 0.0

    every = np.ones(m, dtype=bool)
    appointment_decile = imd_decile[patient_of]
    appointment_group = np.array(
        [code if code in {"Z", "99"} else ETHNIC_GROUPS[code] for code in ethnic], dtype=object
    )[patient_of]
    by_decile = {
        str(d): {"appointments": int((held & (appointment_decile == d)).sum()),
                 "dna_rate": rate(appointment_decile == d)}
        for d in range(1, 11)
    }  # fmt: skip
    groups = [*dict.fromkeys(ETHNIC_GROUPS[c] for c in "ADHMR"), "Z", "99"]
    by_group = {
        name: {"appointments": int((held & (appointment_group == name)).sum()),
               "dna_rate": rate(appointment_group == name)}
        for name in groups
    }  # fmt: skip
    return SynthSummary(
        out_dir=str(out_dir),
        patients=n,
        appointments=m,
        past_appointments=int(past.sum()),
        future_appointments=int((~past).sum()),
        clinics=len(clinic_codes),
        dna_rate=rate(every),
        dna_rate_first=rate(first),
        dna_rate_follow_up=rate(~first),
        dna_rate_respiratory=rate(specialty_codes == "340"),
        by_imd_decile=by_decile,
        by_ethnic_group=by_group,
        seconds=round(time.perf_counter() - started, 2),
    )


def _bools(values: npt.NDArray[np.bool_]) -> list[str]:
    return np.where(values, "true", "false").tolist()


def _write_csv(path: Path, header: tuple[str, ...], rows: Any) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
