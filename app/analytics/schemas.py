"""What analytics returns: generic report tables (rendered as HTML, CSV and JSON alike) and the
impact estimate with every figure it rests on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

CellFormat = Literal["text", "count", "percent", "money", "number", "ratio", "date"]


class Column(BaseModel):
    key: str
    label: str
    format: CellFormat = "text"
    # What an empty cell means when it is not a suppressed figure ("not tracked").
    missing: str | None = None


class Table(BaseModel):
    """A table every chart and figure on the dashboard sits on, downloadable as CSV.

    Rates are fractions (0.071 is 7.1%); a suppressed cell is null and its row's `note` says
    why.
    """

    slug: str
    title: str
    note: str | None = None
    columns: list[Column]
    rows: list[dict[str, Any]] = Field(default_factory=list)


class PeriodOut(BaseModel):
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    last_day: str
    label: str

    model_config = {"populate_by_name": True}


class Section(BaseModel):
    """A dashboard section: its tables, or a message saying why there are none."""

    available: bool
    message: str | None = None
    tables: list[Table] = Field(default_factory=list)


class ArmFigures(BaseModel):
    appointments: int
    dnas: int
    dna_rate: float
    ci_low: float
    ci_high: float


class ImpactEstimate(BaseModel):
    """Avoided DNAs against the randomised hold-out (intention to treat)."""

    call_arm: ArmFigures
    holdout: ArmFigures
    difference: float = Field(description="hold-out DNA rate minus call-arm DNA rate")
    difference_ci_low: float
    difference_ci_high: float
    avoided_dnas: float
    avoided_ci_low: float
    avoided_ci_high: float
    cost_per_dna_low: float
    cost_per_dna_high: float
    savings_low: float
    savings_high: float
    savings_ci_low: float
    savings_ci_high: float
    calls_made: int
    attempts: int
    navigator_cost: float | None
    net_savings_low: float | None
    net_savings_high: float | None
    method: str


class PerProtocol(BaseModel):
    """Those the call actually reached against the hold-out: not randomised."""

    label: str
    reached: int
    reached_dnas: int
    reached_dna_rate: float | None
    holdout_dna_rate: float
    difference: float | None
    difference_ci_low: float | None
    difference_ci_high: float | None


class ModelExpected(BaseModel):
    """Sum of the model's calibrated risks at assignment minus the DNAs observed: model-based."""

    label: str
    appointments: int
    expected_dnas: float
    observed_dnas: int
    avoided_dnas: float


class ImpactReport(BaseModel):
    period: PeriodOut
    programme_start: str | None
    denominator: str
    estimate: ImpactEstimate
    per_protocol: PerProtocol
    model_expected: ModelExpected | None
    model_expected_message: str | None
    tables: list[Table]


class DnaRatesReport(BaseModel):
    period: PeriodOut
    denominator: str
    overall: dict[str, Any]
    tables: list[Table]


class Dashboard(BaseModel):
    period: PeriodOut
    dna_rates: Section
    impact: ImpactReport | None
    impact_message: str | None
    outcomes: Section
    reach: Section
    data_quality: Section
    # Fairness beside impact: the model's calibration and ranking by group, the targeting's
    # reach by group; `message` holds the plain-words findings, one per line.
    fairness: Section | None = None
    # The period's DNA rate over every appointment with an outcome (as in DnaRatesReport).
    overall: dict[str, Any] | None = None
