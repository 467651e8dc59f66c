"""Choosing whom to call within a day's capacity: the score, the equity floor, exploration.

One pure function, `select_calls`, used by the real queue build (through `app.targeting.queue`)
and by the targeting simulation alike, so the simulation proves the code that runs.

Given every call-arm candidate still waiting (the hold-out was drawn before this, exactly as
always: the policy never sees held-out patients), the day's free capacity `room`, each
candidate's score and the priority groups they are in:

1. **Exploration.** `round(exploration_share x room)` calls go to candidates drawn at random
   (by a uniform key per candidate, a keyed hash in the queue so it is reproducible) across
   the whole eligible range, so the benefit model keeps seeing calls where it is uncertain.
2. **Equity floor.** Each priority group is owed at least `floor_scale x` its share of the
   window's DNA burden (the expected DNAs, the sum of the risks, of the window's eligible
   appointments) in call capacity, rounded down. Groups short of their floor get their
   highest-scored waiting members until the floor is met or the group has nobody left.
3. **Score.** What is left of the room goes to the highest scores (ties by candidate order).

A patient in several groups counts towards each of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The priority groups of the equity floor (codes as in app.calls.queue.Reason, with the two
# communication reasons counted as one group).
PRIORITY_GROUPS: tuple[str, ...] = ("core20", "communication", "learning_disability", "no_sms")
GROUP_LABELS = {
    "core20": "Core20 (most deprived 20% of areas)",
    "communication": "Interpreter or communication need",
    "learning_disability": "Learning disability",
    "no_sms": "No SMS channel",
}
GROUP_OF_REASON = {
    "core20": "core20",
    "interpreter": "communication",
    "communication_need": "communication",
    "learning_disability": "learning_disability",
    "no_sms_channel": "no_sms",
}


def groups_of_reasons(reasons: list[str]) -> set[str]:
    return {GROUP_OF_REASON[reason] for reason in reasons if reason in GROUP_OF_REASON}


@dataclass(frozen=True)
class Floors:
    """Each group's floor as a share of capacity, and the minimum number of calls it means."""

    shares: dict[str, float]
    minimum_calls: dict[str, int]


def equity_floors(
    burden: FloatArray, membership: BoolArray, room: int, floor_scale: float
) -> Floors:
    """Floors from the window's DNA burden: `burden` (expected DNAs of each eligible
    appointment) and `membership` (appointments x PRIORITY_GROUPS)."""
    total = float(np.sum(burden))
    shares: dict[str, float] = {}
    minimum: dict[str, int] = {}
    for column, group in enumerate(PRIORITY_GROUPS):
        share = float(np.sum(burden[membership[:, column]])) / total if total > 0 else 0.0
        shares[group] = min(1.0, floor_scale * share)
        minimum[group] = math.floor(shares[group] * room + 1e-9)
    return Floors(shares=shares, minimum_calls=minimum)


def select_calls(
    score: FloatArray,
    membership: BoolArray,
    room: int,
    *,
    floors: Floors,
    exploration_share: float,
    exploration_keys: FloatArray,
) -> IntArray:
    """Indices of the candidates to call, at most `room`, by the module's three steps.

    `membership` is candidates x PRIORITY_GROUPS; `exploration_keys` are uniform numbers in
    [0, 1), one per candidate (the lowest keys are explored).
    """
    count = len(score)
    room = max(0, min(room, count))
    if room == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.zeros(count, dtype=bool)
    explore = min(room, round(exploration_share * room))
    if explore:
        chosen[np.argsort(exploration_keys, kind="stable")[:explore]] = True
    # Highest score first; ties keep the candidates' order.
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    for column, group in enumerate(PRIORITY_GROUPS):
        short = floors.minimum_calls[group] - int(np.sum(chosen & membership[:, column]))
        if short <= 0:
            continue
        free = int(room - chosen.sum())
        waiting = order[membership[order, column] & ~chosen[order]]
        chosen[waiting[: min(short, free)]] = True
    free = int(room - chosen.sum())
    if free > 0:
        chosen[order[~chosen[order]][:free]] = True
    picked = np.flatnonzero(chosen)
    return np.asarray(picked[np.argsort(-score[picked], kind="stable")], dtype=np.int64)


@dataclass(frozen=True)
class SwitchDecision:
    """Which policy the queue runs, and why, in words for the page and the CLI."""

    requested: str
    effective: str
    message: str

    @property
    def switched(self) -> bool:
        return self.effective == "benefit"


def switching_rule(
    *,
    requested: str,
    holdout_share: float,
    holdout_outcomes: int | None,
    min_holdout_outcomes: int,
    qini_ci_low: float | None,
    model_version: str | None,
) -> SwitchDecision:
    """The benefit policy runs only when asked for, the trial is running and has enough
    hold-out outcomes, and the active benefit model's out-of-time Qini interval is above 0.
    Anything else keeps the queue on the risk policy, with the reason."""
    if requested != "benefit":
        return SwitchDecision(requested, "risk", "The queue ranks calls by risk (the default).")

    def stay(reason: str) -> SwitchDecision:
        return SwitchDecision(requested, "risk", f"The queue stays on the risk policy: {reason}.")

    if holdout_share <= 0:
        return stay(
            "the hold-out share is 0, so there is no randomised comparison to learn from "
            "or to check the benefit model against"
        )
    if model_version is None or holdout_outcomes is None:
        return stay("no benefit model is active; train one with `navigator targeting train`")
    if holdout_outcomes < min_holdout_outcomes:
        return stay(
            f"the active benefit model learnt from {holdout_outcomes} hold-out outcomes; "
            f"at least {min_holdout_outcomes} are needed"
        )
    if qini_ci_low is None or not qini_ci_low > 0:
        low = "unknown" if qini_ci_low is None else f"{qini_ci_low:.4f}"
        return stay(
            f"the benefit model {model_version} is not yet shown to beat random calling out of "
            f"time (the lower end of its Qini interval is {low}, not above 0)"
        )
    return SwitchDecision(
        requested,
        "benefit",
        f"The queue ranks calls by expected DNAs avoided (benefit model {model_version}), "
        "with the equity floor and exploration.",
    )
