"""Effects by subgroup from the randomised hold-out: figures, suppression and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.errors import NotReadyError
from app.settings import Settings
from app.targeting import service
from tests.targeting.helpers import create_trial, period_bounds, targeting_settings


def test_the_call_effect_is_reported_overall_and_where_it_works(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = targeting_settings(settings)
    create_trial(session, clock.now(), appointments=1000)
    start, end = period_bounds(clock.now())

    report = service.subgroup_effects(session, settings, start=start, end=end)

    overall = report["overall"]
    assert overall["n_call"] == 800
    assert overall["n_holdout"] == 200
    assert overall["difference"] == pytest.approx(
        overall["dna_rate_call"] - overall["dna_rate_holdout"]
    )
    assert overall["ci_high"] < 0  # calls lower the DNA rate overall
    first = {row["level"]: row for row in report["subgroups"]["first_or_follow_up"]["levels"]}
    assert first["First"]["ci_high"] < 0
    assert first["Follow-up"]["ci_low"] < 0 < first["Follow-up"]["ci_high"]
    assert first["Not recorded"]["suppressed"]
    assert first["Not recorded"]["difference"] is None
    assert set(report["subgroups"]) == {
        "risk_band",
        "priority_group",
        "first_or_follow_up",
        "lead_time_band",
        "imd_quintile",
        "specialty",
    }


def test_a_subgroup_below_the_minimum_is_suppressed_with_its_reason(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = targeting_settings(settings, targeting_min_subgroup=15)
    create_trial(session, clock.now(), appointments=1000)
    start, end = period_bounds(clock.now())

    report = service.subgroup_effects(session, settings, start=start, end=end)

    quintiles = {row["level"]: row for row in report["subgroups"]["imd_quintile"]["levels"]}
    assert not quintiles["Q3"]["suppressed"]  # 200 appointments, 20 held out
    assert quintiles["Q1"]["suppressed"]  # nobody in Q1 was held out
    groups = {row["level"]: row for row in report["subgroups"]["priority_group"]["levels"]}
    small = groups["Learning disability"]
    assert small["suppressed"]
    assert small["n_holdout"] < 15
    assert "fewer than 15" in small["reason"]


@pytest.mark.parametrize(
    ("overrides", "trial", "message"),
    [
        ({"calls_holdout_share": 0.0}, {}, "hold-out share"),
        ({}, {"holdout_every": 10_000}, "hold-out has no appointments"),
        ({}, {"appointments": 60}, "Too little trial data"),
    ],
)
def test_no_trial_to_learn_from_is_a_plain_message(
    session: Session,
    settings: Settings,
    clock: FixedClock,
    overrides: dict[str, object],
    trial: dict[str, Any],
    message: str,
) -> None:
    settings = targeting_settings(settings, **overrides)
    create_trial(session, clock.now(), **trial)
    start, end = period_bounds(clock.now())

    with pytest.raises(NotReadyError, match=message):
        service.subgroup_effects(session, settings, start=start, end=end)
    with pytest.raises(NotReadyError, match=message):
        service.train_benefit_model(session, settings, now=clock.now())
