"""DNA rates by time and group: denominators, intervals, suppression and empty periods."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.analytics import service
from app.analytics.periods import Period
from app.errors import InvalidInputError, NotReadyError
from app.settings import Settings
from tests.analytics.helpers import (
    EMPTY_PERIOD,
    PERIOD,
    PERIOD_END,
    PERIOD_START,
    create_outcomes,
)
from tests.factories import create_clinic


def _table(report: service.DnaRatesReport, slug: str) -> dict[str, dict[str, Any]]:
    table = next(table for table in report.tables if table.slug == slug)
    return {str(row.get("group", row.get("starting"))): row for row in table.rows}


def _born_years_before(day: date, years: int) -> date:
    """A birthday `years` and a half before `day`: that age on every day of the period."""
    return date(day.year - years, 1, 1) - timedelta(days=183)


def test_rates_count_dnas_over_attended_and_dna_outcomes_only(
    session: Session, settings: Settings
) -> None:
    ent = create_clinic(session, code="ENT1", specialty_code="120")
    create_outcomes(session, attended=16, dnas=4, cancelled=5, clinic=ent, ethnic_category="A")
    create_outcomes(session, attended=4, dnas=1, clinic=ent, ethnic_category="N")
    session.flush()

    report = service.dna_rates(session, settings, PERIOD)

    # 5 DNAs over 25 attended-or-DNA appointments; the 5 cancellations are not in it.
    assert report.overall["appointments"] == 25
    assert report.overall["dnas"] == 5
    assert report.overall["dna_rate"] == pytest.approx(0.2)
    assert report.overall["ci_low"] < 0.2 < report.overall["ci_high"]
    assert "codes 5, 6, 3 and 7" in report.denominator
    groups = _table(report, "dna-rate-by-ethnic-group")
    assert groups["White"]["dna_rate"] == pytest.approx(0.2)
    assert groups["White"]["appointments"] == 20
    # Five appointments for Black or Black British patients: too few to publish.
    black = groups["Black or Black British"]
    assert black["dna_rate"] is None
    assert black["dnas"] is None
    assert "fewer than 10" in str(black["note"])
    codes = _table(report, "dna-rate-by-ethnic-category")
    assert codes["A White - British"]["appointments"] == 20
    specialty = _table(report, "dna-rate-by-specialty")
    assert specialty["120 Ear, nose and throat"]["dnas"] == 5


def test_rates_by_deprivation_age_and_need(session: Session, settings: Settings) -> None:
    create_outcomes(
        session,
        attended=9,
        dnas=3,
        imd_decile=1,
        core20=True,
        birth_date=_born_years_before(PERIOD_START, 26),
        communication_needs="bsl;large_print",
    )
    create_outcomes(
        session, attended=11, dnas=1, imd_decile=9, birth_date=_born_years_before(PERIOD_START, 76)
    )
    session.flush()

    report = service.dna_rates(session, settings, PERIOD)

    deciles = _table(report, "dna-rate-by-imd-decile")
    assert deciles["Decile 1"]["dna_rate"] == pytest.approx(0.25)
    assert deciles["Decile 9"]["dna_rate"] == pytest.approx(1 / 12)
    quintiles = _table(report, "dna-rate-by-imd-quintile")
    assert quintiles["Quintile 1"]["appointments"] == 12
    assert quintiles["Quintile 5"]["appointments"] == 12
    assert _table(report, "dna-rate-by-core20")["Core20 (IMD deciles 1-2)"]["dnas"] == 3
    ages = _table(report, "dna-rate-by-age-band")
    assert ages["18-35"]["dnas"] == 3
    assert ages["65-79"]["dnas"] == 1
    needs = _table(report, "dna-rate-by-communication-need")
    assert needs["British Sign Language interpreter"]["appointments"] == 12
    assert needs["Large print"]["appointments"] == 12
    assert needs["No recorded need"]["appointments"] == 12
    weekly = _table(report, "dna-rate-weekly")
    assert sum(int(row["appointments"] or 0) for row in weekly.values()) == 24


def test_a_period_without_outcomes_says_why_instead_of_reporting_zero(
    session: Session, settings: Settings
) -> None:
    create_outcomes(session, attended=12, dnas=2)
    session.flush()
    with pytest.raises(NotReadyError, match="No appointments start between"):
        service.dna_rates(session, settings, EMPTY_PERIOD)


def test_no_appointments_at_all_asks_for_an_import(session: Session, settings: Settings) -> None:
    with pytest.raises(NotReadyError, match="import a PAS extract"):
        service.dna_rates(session, settings, PERIOD)


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must end after it starts"):
        Period(PERIOD_END, PERIOD_START)
