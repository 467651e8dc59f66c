"""NHS code lists the service speaks (NHS Data Dictionary; see shared DOMAIN.md section 3)."""

from __future__ import annotations

from enum import StrEnum

# ATTENDED OR DID NOT ATTEND.
ATTENDANCE_CODES: dict[str, str] = {
    "0": "Not applicable (future appointment)",
    "2": "Cancelled by, or on behalf of, the patient",
    "3": "Did not attend without warning",
    "4": "Cancelled or postponed by the provider",
    "5": "Attended on time",
    "6": "Arrived late but was seen",
    "7": "Arrived late and could not be seen",
}
NOT_YET_KNOWN = "0"
DNA_CODES = frozenset({"3", "7"})
ATTENDED_CODES = frozenset({"5", "6"})
CANCELLED_CODES = frozenset({"2", "4"})


def is_dna(attendance_code: str) -> bool:
    return attendance_code in DNA_CODES


# ETHNIC CATEGORY (2001 census categories) and the six reporting groups.
ETHNIC_CATEGORIES: dict[str, str] = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other ethnic groups - Chinese",
    "S": "Other ethnic groups - Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}
ETHNIC_GROUPS: dict[str, str] = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian or Asian British"),
    **dict.fromkeys("MNP", "Black or Black British"),
    **dict.fromkeys("RS", "Other ethnic group"),
    "Z": "Not stated",
    "99": "Not known",
}
NOT_STATED_OR_KNOWN = frozenset({"Z", "99"})


def ethnic_group(code: str) -> str:
    return ETHNIC_GROUPS.get(code, "Not known")


SEXES: dict[str, str] = {"M": "Male", "F": "Female", "X": "Indeterminate", "U": "Not known"}

# Treatment function codes the service knows by name; others are accepted and shown by code.
SPECIALTIES: dict[str, str] = {
    "100": "General surgery",
    "110": "Trauma and orthopaedics",
    "120": "Ear, nose and throat",
    "140": "Oral surgery",
    "144": "Maxillofacial surgery",
    "300": "General medicine",
    "320": "Cardiology",
    "330": "Dermatology",
    "340": "Respiratory medicine",
    "502": "Gynaecology",
}


def specialty_name(code: str | None) -> str:
    if not code:
        return "Unknown specialty"
    return SPECIALTIES.get(code, f"Specialty {code}")


class CommunicationNeed(StrEnum):
    """Accessible Information Standard (DAPB1605) needs, as the PAS extract spells them."""

    BSL = "bsl"
    DEAFBLIND = "deafblind"
    LARGE_PRINT = "large_print"
    EASY_READ = "easy_read"
    BRAILLE = "braille"
    ADVOCATE = "advocate"


COMMUNICATION_NEED_LABELS: dict[str, str] = {
    CommunicationNeed.BSL: "British Sign Language interpreter",
    CommunicationNeed.DEAFBLIND: "Deafblind manual interpreter",
    CommunicationNeed.LARGE_PRINT: "Large print",
    CommunicationNeed.EASY_READ: "Easy read",
    CommunicationNeed.BRAILLE: "Braille",
    CommunicationNeed.ADVOCATE: "Needs a carer or advocate present",
}

AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 17, "0-17"),
    (18, 35, "18-35"),
    (36, 50, "36-50"),
    (51, 64, "51-64"),
    (65, 79, "65-79"),
    (80, 200, "80+"),
)


def age_band(age_years: int) -> str:
    for low, high, label in AGE_BANDS:
        if low <= age_years <= high:
            return label
    return "80+"


def imd_quintile(decile: int | None) -> int | None:
    """IMD quintile 1 (most deprived 20%) to 5 from a decile."""
    return None if decile is None else (decile + 1) // 2
