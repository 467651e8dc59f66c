"""The groups analytics reports break figures down by, and how raw database values map to them.

Each dimension is grouped in SQL on the rawest column that determines it (an ethnic category
code, an IMD decile, an age in years); the mapping to a reporting group (six ethnic groups,
quintiles, age bands) is done here on the few aggregated rows, so one SQL pass serves several
reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.reference.codes import (
    AGE_BANDS,
    COMMUNICATION_NEED_LABELS,
    ETHNIC_CATEGORIES,
    SEXES,
    age_band,
    ethnic_group,
    imd_quintile,
    specialty_name,
)
from app.reference.imd import is_core20

RawKey = object


@dataclass(frozen=True, slots=True)
class Dimension:
    """A way of grouping appointments: its slug, heading, the SQL column it reads (by name in
    `repository.dimension_columns`), and how a raw value becomes one or more group labels."""

    slug: str
    title: str
    source: str
    groups: Callable[[RawKey], list[str]]
    order: Callable[[str], tuple[int, str]]


def _single(function: Callable[[RawKey], str]) -> Callable[[RawKey], list[str]]:
    return lambda raw: [function(raw)]


ETHNIC_GROUP_ORDER = [
    "White",
    "Mixed",
    "Asian or Asian British",
    "Black or Black British",
    "Other ethnic group",
    "Not stated",
    "Not known",
]
ETHNIC_CODE_ORDER = list(ETHNIC_CATEGORIES)
SEX_ORDER = list(SEXES.values())
AGE_BAND_ORDER = [label for _, _, label in AGE_BANDS]
NEED_ORDER = [
    "No recorded need",
    *COMMUNICATION_NEED_LABELS.values(),
    "Spoken-language interpreter",
]


def _ordered(order: list[str]) -> Callable[[str], tuple[int, str]]:
    positions = {label: index for index, label in enumerate(order)}
    return lambda label: (positions.get(label, len(order)), label)


def _alphabetical(label: str) -> tuple[int, str]:
    return (0, label)


def _ethnic_code_label(raw: RawKey) -> str:
    code = str(raw or "99")
    return f"{code} {ETHNIC_CATEGORIES.get(code, 'Not known')}"


def _ethnic_code_order(label: str) -> tuple[int, str]:
    code = label.split(" ", 1)[0]
    return (ETHNIC_CODE_ORDER.index(code) if code in ETHNIC_CODE_ORDER else 99, label)


def _decile_label(raw: RawKey) -> str:
    return "Unknown (no LSOA)" if raw is None else f"Decile {raw}"


def _quintile_label(raw: RawKey) -> str:
    quintile = imd_quintile(None if raw is None else int(str(raw)))
    return "Unknown (no LSOA)" if quintile is None else f"Quintile {quintile}"


def _number_order(label: str) -> tuple[int, str]:
    digits = "".join(character for character in label if character.isdigit())
    return (int(digits) if digits else 99, label)


def _core20_label(raw: RawKey) -> str:
    """From the IMD decile (Core20 is deciles 1-2, exactly as stored at import)."""
    return (
        "Core20 (IMD deciles 1-2)"
        if is_core20(None if raw is None else int(str(raw)))
        else ("Not Core20")
    )


def _age_label(raw: RawKey) -> str:
    return "Unknown" if raw is None else age_band(int(str(raw)))


def _sex_label(raw: RawKey) -> str:
    return SEXES.get(str(raw), "Not known")


def _needs(raw: RawKey) -> list[str]:
    """`communication_needs` joined with `interpreter_needed`: an appointment counts once in
    every need its patient has, so these rows do not add up to the total."""
    needs_text, interpreter = raw if isinstance(raw, tuple) else (raw, False)
    labels = [
        COMMUNICATION_NEED_LABELS.get(need, need)
        for need in str(needs_text or "").split(";")
        if need
    ]
    if interpreter:
        labels.append("Spoken-language interpreter")
    return labels or ["No recorded need"]


def _learning_disability_label(raw: RawKey) -> str:
    return "Learning disability recorded" if raw else "No learning disability recorded"


def _specialty_label(raw: RawKey) -> str:
    # Grouped with the clinic (a clinic has one specialty): the raw key is (clinic, specialty).
    if isinstance(raw, tuple):
        raw = raw[1]
    code = None if raw is None else str(raw)
    return f"{code} {specialty_name(code)}" if code else specialty_name(code)


def _clinic_label(raw: RawKey) -> str:
    return str(raw[0] if isinstance(raw, tuple) else raw)


DIMENSIONS: dict[str, Dimension] = {
    dimension.slug: dimension
    for dimension in (
        Dimension("specialty", "Specialty", "clinic", _single(_specialty_label), _alphabetical),
        Dimension("clinic", "Clinic", "clinic", _single(_clinic_label), _alphabetical),
        Dimension(
            "ethnic-group",
            "Ethnic group (six groups)",
            "ethnic_category",
            _single(lambda raw: ethnic_group(str(raw or "99"))),
            _ordered(ETHNIC_GROUP_ORDER),
        ),
        Dimension(
            "ethnic-category",
            "Ethnic category (detailed code)",
            "ethnic_category",
            _single(_ethnic_code_label),
            _ethnic_code_order,
        ),
        Dimension(
            "imd-decile",
            "IMD 2019 decile (1 = most deprived)",
            "imd_decile",
            _single(_decile_label),
            _number_order,
        ),
        Dimension(
            "imd-quintile",
            "IMD 2019 quintile (1 = most deprived)",
            "imd_decile",
            _single(_quintile_label),
            _number_order,
        ),
        Dimension("core20", "Core20", "imd_decile", _single(_core20_label), _alphabetical),
        Dimension(
            "age-band", "Age band", "age_years", _single(_age_label), _ordered(AGE_BAND_ORDER)
        ),
        Dimension("sex", "Sex", "sex", _single(_sex_label), _ordered(SEX_ORDER)),
        Dimension(
            "communication-need",
            "Communication need (Accessible Information Standard)",
            "needs",
            _needs,
            _ordered(NEED_ORDER),
        ),
        Dimension(
            "learning-disability",
            "Learning disability",
            "learning_disability",
            _single(_learning_disability_label),
            _alphabetical,
        ),
    )
}

EQUITY_DIMENSIONS = ("ethnic-group", "imd-quintile", "age-band")


def sources_of(slugs: Iterable[str]) -> list[str]:
    """The distinct SQL sources the given dimensions need, in first-use order."""
    seen: dict[str, None] = {}
    for slug in slugs:
        seen.setdefault(DIMENSIONS[slug].source, None)
    return list(seen)
