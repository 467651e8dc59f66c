"""Choosing whom to call within the day's capacity: the equity floor, exploration and the rule
that decides whether the queue may leave the risk ranking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from app.settings import Settings
from app.targeting.policy import (
    PRIORITY_GROUPS,
    Floors,
    equity_floors,
    select_calls,
    switching_rule,
)
from app.targeting.queue import exploration_key
from tests.clock import TODAY

CORE20 = PRIORITY_GROUPS.index("core20")
COMMUNICATION = PRIORITY_GROUPS.index("communication")
NO_FLOORS = Floors(
    shares=dict.fromkeys(PRIORITY_GROUPS, 0.0), minimum_calls=dict.fromkeys(PRIORITY_GROUPS, 0)
)


def _membership(count: int, **groups: list[int]) -> np.ndarray:
    membership = np.zeros((count, len(PRIORITY_GROUPS)), dtype=bool)
    for group, rows in groups.items():
        membership[rows, PRIORITY_GROUPS.index(group)] = True
    return membership


def test_each_group_is_owed_its_share_of_the_windows_dna_burden_in_calls() -> None:
    # The window: 10 eligible appointments, expected DNAs 0.3 each except two Core20
    # patients at 0.6 (a third of the burden: 1.2 of 3.6) and one interpreter patient.
    risk = np.array([0.6, 0.6, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    membership = _membership(10, core20=[0, 1], communication=[2])

    floors = equity_floors(risk, membership, room=12, floor_scale=1.0)
    halved = equity_floors(risk, membership, room=12, floor_scale=0.5)

    assert floors.shares["core20"] == pytest.approx(1.2 / 3.6)
    assert floors.minimum_calls["core20"] == 4  # a third of 12 calls
    assert floors.shares["communication"] == pytest.approx(0.3 / 3.6)
    assert floors.minimum_calls["communication"] == 1
    assert floors.minimum_calls["learning_disability"] == 0
    assert halved.minimum_calls["core20"] == 2
    assert equity_floors(np.zeros(3), _membership(3), room=5, floor_scale=1.0).minimum_calls == (
        dict.fromkeys(PRIORITY_GROUPS, 0)
    )


def test_the_floor_calls_a_group_the_score_alone_would_pass_over() -> None:
    # 30 waiting patients; the six Core20 patients have the lowest scores of all.
    score = np.linspace(1.0, 0.0, 30)
    membership = _membership(30, core20=list(range(24, 30)))
    burden = np.full(30, 0.2)
    floors = equity_floors(burden, membership, room=10, floor_scale=1.0)  # 6/30 of 10 -> 2

    by_score = select_calls(
        score, membership, 10, floors=NO_FLOORS, exploration_share=0.0, exploration_keys=score
    )
    with_floor = select_calls(
        score, membership, 10, floors=floors, exploration_share=0.0, exploration_keys=score
    )

    assert membership[by_score, CORE20].sum() == 0
    assert len(with_floor) == 10
    assert membership[with_floor, CORE20].sum() == floors.minimum_calls["core20"] == 2
    # The floor takes the group's best-scored members, and the rest of the room still goes
    # to the highest scores.
    assert set(with_floor.tolist()) == set(range(8)) | {24, 25}
    # Called highest score first.
    assert list(with_floor) == sorted(with_floor.tolist(), key=lambda index: -score[index])


def test_a_group_with_fewer_waiting_than_its_floor_gets_all_of_them() -> None:
    score = np.linspace(1.0, 0.0, 20)
    membership = _membership(20, communication=[19])
    floors = Floors(
        shares={**dict.fromkeys(PRIORITY_GROUPS, 0.0), "communication": 0.5},
        minimum_calls={**dict.fromkeys(PRIORITY_GROUPS, 0), "communication": 5},
    )

    picked = select_calls(
        score, membership, 10, floors=floors, exploration_share=0.0, exploration_keys=score
    )

    assert len(picked) == 10
    assert 19 in picked
    assert set(picked.tolist()) == set(range(9)) | {19}


def test_exploration_calls_across_the_whole_eligible_range(settings: Settings) -> None:
    # 100 waiting patients ranked by score, room for 20 calls, a quarter of them exploring.
    # Over 60 queue days every tenth of the ranking gets exploration calls, the top 15 are
    # called every day, and every day has exactly 5 calls beyond the score's choice.
    score = np.linspace(1.0, 0.01, 100)
    membership = _membership(100)
    reached_by_decile = np.zeros(10, dtype=int)
    for offset in range(60):
        day = TODAY + timedelta(days=offset)
        keys = np.array([exploration_key(settings, day, patient) for patient in range(100)])
        picked = select_calls(
            score, membership, 20, floors=NO_FLOORS, exploration_share=0.25, exploration_keys=keys
        )
        explored = np.argsort(keys, kind="stable")[:5]
        assert set(explored.tolist()) <= set(picked.tolist())
        assert set(range(15)) <= set(picked.tolist())
        assert len(picked) == 20
        reached_by_decile += np.bincount(explored // 10, minlength=10)
    assert (reached_by_decile > 0).all(), reached_by_decile


def test_exploration_is_reproducible_for_a_day_and_differs_between_days(
    settings: Settings,
) -> None:
    first = [exploration_key(settings, TODAY, patient) for patient in range(50)]
    again = [exploration_key(settings, TODAY, patient) for patient in range(50)]
    next_day = [
        exploration_key(settings, TODAY + timedelta(days=1), patient) for patient in range(50)
    ]
    other_programme = settings.model_copy(update={"calls_programme_seed": "another-programme"})

    assert first == again
    assert first != next_day
    assert first != [exploration_key(other_programme, TODAY, p) for p in range(50)]
    assert all(0.0 <= key < 1.0 for key in first)


def test_no_room_or_nobody_waiting_calls_nobody() -> None:
    score = np.array([0.5, 0.4])
    assert (
        len(
            select_calls(
                score,
                _membership(2),
                0,
                floors=NO_FLOORS,
                exploration_share=0.5,
                exploration_keys=score,
            )
        )
        == 0
    )
    assert (
        len(
            select_calls(
                np.zeros(0),
                _membership(0),
                10,
                floors=NO_FLOORS,
                exploration_share=0.5,
                exploration_keys=np.zeros(0),
            )
        )
        == 0
    )
    # More room than patients: everyone is called once.
    assert sorted(
        select_calls(
            score,
            _membership(2),
            10,
            floors=NO_FLOORS,
            exploration_share=0.5,
            exploration_keys=score,
        ).tolist()
    ) == [0, 1]


ENOUGH: dict[str, Any] = {
    "requested": "benefit",
    "holdout_share": 0.1,
    "holdout_outcomes": 400,
    "min_holdout_outcomes": 300,
    "qini_ci_low": 0.004,
    "model_version": "benefit-1",
}


def test_the_queue_switches_to_benefit_only_when_both_conditions_hold() -> None:
    decision = switching_rule(**ENOUGH)

    assert decision.switched
    assert decision.effective == "benefit"
    assert "benefit-1" in decision.message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"requested": "risk"}, "ranks calls by risk (the default)"),
        ({"holdout_outcomes": 299}, "299 hold-out outcomes; at least 300 are needed"),
        ({"qini_ci_low": -0.002}, "lower end of its Qini interval is -0.0020, not above 0"),
        ({"qini_ci_low": 0.0}, "not above 0"),
        ({"qini_ci_low": None}, "Qini interval is unknown"),
        ({"holdout_share": 0.0}, "hold-out share is 0"),
        ({"model_version": None, "holdout_outcomes": None}, "no benefit model is active"),
    ],
)
def test_the_queue_stays_on_risk_and_says_why(change: dict[str, Any], reason: str) -> None:
    decision = switching_rule(**{**ENOUGH, **change})

    assert not decision.switched
    assert decision.effective == "risk"
    assert reason in decision.message
