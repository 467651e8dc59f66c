"""IMD 2019 deprivation by LSOA (2011 boundaries), shipped as package data.

Each patient's decile is looked up here at import time and stored with the release it came
from, because IMD 2025 uses different LSOA boundaries and must never be mixed in silently.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

IMD_RELEASE = "IMD2019"
CORE20_MAX_DECILE = 2


@dataclass(frozen=True, slots=True)
class Lsoa:
    code: str
    name: str
    local_authority: str
    imd_score: float
    imd_rank: int
    imd_decile: int
    ethnic_minority_share: float
    population: int

    @property
    def core20(self) -> bool:
        return self.imd_decile <= CORE20_MAX_DECILE


@functools.cache
def lsoa_table() -> dict[str, Lsoa]:
    """Every English LSOA keyed by its 2011 code (32,844 rows, loaded once per process)."""
    source = resources.files("app.reference").joinpath("data/imd2019_lsoa.csv")
    with source.open("r", encoding="utf-8") as handle:
        return {
            row["lsoa11cd"]: Lsoa(
                code=row["lsoa11cd"],
                name=row["lsoa11nm"],
                local_authority=row["local_authority"],
                imd_score=float(row["imd_score"]),
                imd_rank=int(row["imd_rank"]),
                imd_decile=int(row["imd_decile"]),
                ethnic_minority_share=float(row["ethnic_minority_share"] or 0.0),
                population=int(float(row["population"] or 0)),
            )
            for row in csv.DictReader(handle)
        }


def lookup_lsoa(code: str) -> Lsoa | None:
    return lsoa_table().get(code.strip().upper())


def is_core20(decile: int | None) -> bool:
    return decile is not None and decile <= CORE20_MAX_DECILE
