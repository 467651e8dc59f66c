"""The queue under each policy, as the navigators' morning build runs it: the hold-out is drawn
before any policy, the benefit policy calls whom a call helps above each group's floor, and
the queue stays on the risk ranking whenever the trial cannot support the switch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.calls.queue import build_queue, call_window
from app.calls.tables import Arm, Call, CallAssignment
from app.clock import FixedClock
from app.errors import NotReadyError
from app.patients.tables import Patient
from app.settings import Settings
from app.targeting import service
from tests.calls.helpers import MORNING, QUEUE_DAY
from tests.targeting.helpers import (
    create_candidate,
    create_trial,
    targeting_settings,
    train_working_model,
)

ROOM = 15


def queue_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "calls_navigators_on_duty": 1,
        "calls_per_navigator_per_day": ROOM,
        "targeting_exploration_share": 0.0,
    }
    values.update(overrides)
    return targeting_settings(settings, **values)


def _candidates(session: Session, *, core20_follow_ups: int = 0) -> dict[str, set[int]]:
    """30 first appointments at 30% risk (a call helps them) and 30 follow-ups at 45% (a call
    does not move them), plus Core20 follow-ups at 45%."""
    firsts = {create_candidate(session, first=True, risk=0.3).id for _ in range(30)}
    follow_ups = {create_candidate(session, first=False, risk=0.45).id for _ in range(30)}
    core20 = {
        create_candidate(session, first=False, risk=0.45, core20=True).id
        for _ in range(core20_follow_ups)
    }
    return {"first": firsts, "follow_up": follow_ups, "core20": core20}


def _build(session: Session, settings: Settings) -> tuple[dict[int, str], set[int]]:
    """Today's build from scratch: every appointment's arm and the appointments called."""
    session.execute(delete(CallAssignment).where(CallAssignment.queue_date == QUEUE_DAY))
    session.execute(delete(Call).where(Call.queue_date == QUEUE_DAY))
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    rows = session.execute(
        select(CallAssignment.appointment_id, CallAssignment.arm, CallAssignment.call_id).where(
            CallAssignment.queue_date == QUEUE_DAY
        )
    ).all()
    arms = {row.appointment_id: str(row.arm) for row in rows}
    called = {row.appointment_id for row in rows if row.call_id is not None}
    return arms, called


def test_the_hold_out_is_the_same_whichever_policy_ranks_the_calls(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    risk_settings = queue_settings(settings)
    benefit_settings = queue_settings(settings, calls_queue_policy="benefit")
    train_working_model(session, benefit_settings, clock.now())
    groups = _candidates(session)
    assert service.queue_decision(session, benefit_settings).switched

    risk_arms, risk_called = _build(session, risk_settings)
    benefit_arms, benefit_called = _build(session, benefit_settings)

    held_out = {appointment for appointment, arm in risk_arms.items() if arm == Arm.HOLDOUT}
    assert benefit_arms == risk_arms
    assert len(risk_arms) == 60
    assert 0 < len(held_out) < 60
    assert not held_out & (risk_called | benefit_called)
    # Same capacity; the risk ranking calls the follow-ups (higher risk), the benefit policy
    # the first appointments (whom a call helps).
    assert len(risk_called) == len(benefit_called) == ROOM
    assert risk_called <= groups["follow_up"]
    assert benefit_called <= groups["first"]


def test_the_equity_floor_gives_core20_its_share_of_the_windows_dna_burden(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    with_floor = queue_settings(settings, calls_queue_policy="benefit")
    without_floor = queue_settings(
        settings, calls_queue_policy="benefit", targeting_floor_scale=0.0
    )
    train_working_model(session, with_floor, clock.now())
    groups = _candidates(session, core20_follow_ups=10)

    _arms, unfloored = _build(session, without_floor)
    arms, floored = _build(session, with_floor)

    # The window's DNA burden: the expected DNAs (risks) of every eligible appointment in it,
    # both arms; Core20 carries 4.5 of 9 + 13.5 + 4.5 = 27 expected DNAs.
    start, end = call_window(with_floor, QUEUE_DAY)
    window = session.execute(
        select(CallAssignment.risk, Patient.core20)
        .join(Appointment, Appointment.id == CallAssignment.appointment_id)
        .join(Patient, Patient.id == Appointment.patient_id)
        .where(Appointment.start_at >= start, Appointment.start_at < end)
    ).all()
    share = sum(r.risk for r in window if r.core20) / sum(r.risk for r in window)
    assert share == pytest.approx(4.5 / 27)
    floor = math.floor(share * ROOM)
    assert floor == 2
    waiting_core20 = {a for a in groups["core20"] if arms[a] == Arm.CALL}
    assert len(waiting_core20) >= floor
    assert len(floored & groups["core20"]) >= floor
    assert len(unfloored & groups["core20"]) < floor
    assert len(floored) == ROOM


def test_rebuilding_under_the_benefit_policy_keeps_the_arms_and_adds_nothing(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    benefit_settings = queue_settings(settings, calls_queue_policy="benefit")
    train_working_model(session, benefit_settings, clock.now())
    _candidates(session)
    arms, called = _build(session, benefit_settings)

    again = build_queue(session, benefit_settings, QUEUE_DAY, now=MORNING)

    assert again.newly_eligible == 0
    assert again.calls_created == 0
    rows = session.execute(
        select(CallAssignment.appointment_id, CallAssignment.arm, CallAssignment.call_id).where(
            CallAssignment.queue_date == QUEUE_DAY
        )
    ).all()
    assert {row.appointment_id: str(row.arm) for row in rows} == arms
    assert {row.appointment_id for row in rows if row.call_id is not None} == called


def _no_model(
    session: Session, settings: Settings, clock: FixedClock, trial: dict[str, Any]
) -> str:
    create_trial(session, clock.now(), **trial)
    with pytest.raises(NotReadyError) as refused:
        service.train_benefit_model(session, settings, now=clock.now())
    return refused.value.message


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("too_little_trial_data", "no benefit model is active"),
        ("one_arm_empty", "no benefit model is active"),
        ("holdout_share_zero", "hold-out share is 0"),
        ("uplift_interval_covers_zero", "not yet shown to beat random calling"),
        ("too_few_holdout_outcomes", "at least 5000 are needed"),
    ],
)
def test_the_queue_stays_on_the_risk_ranking_when_the_trial_cannot_support_benefit(
    session: Session, settings: Settings, clock: FixedClock, case: str, message: str
) -> None:
    benefit_settings = queue_settings(settings, calls_queue_policy="benefit")
    if case == "too_little_trial_data":
        refused = _no_model(session, benefit_settings, clock, {"appointments": 60})
        assert "Too little trial data" in refused
    elif case == "one_arm_empty":
        refused = _no_model(session, benefit_settings, clock, {"holdout_every": 10_000})
        assert "hold-out has no appointments" in refused
    elif case == "uplift_interval_covers_zero":
        # Calls help nobody in this trial: the model trains, but its Qini interval covers 0.
        create_trial(session, clock.now(), base_dna=0.3, called_first_dna=0.3)
        model = service.train_benefit_model(session, benefit_settings, now=clock.now()).model
        assert model.card["metrics"]["qini_area_ci"][0] <= 0
    else:
        train_working_model(session, benefit_settings, clock.now())
        if case == "holdout_share_zero":
            benefit_settings = benefit_settings.model_copy(update={"calls_holdout_share": 0.0})
        else:
            benefit_settings = benefit_settings.model_copy(
                update={"targeting_min_holdout_outcomes": 5000}
            )
    groups = _candidates(session)

    decision = service.queue_decision(session, benefit_settings)
    _arms, called = _build(session, benefit_settings)

    assert decision.effective == "risk"
    assert decision.message.startswith("The queue stays on the risk policy")
    assert message in decision.message
    assert len(called) == ROOM
    assert called <= groups["follow_up"]  # today's ranking: highest risk first


def test_a_tampered_benefit_model_keeps_the_queue_on_risk_and_the_page_says_so(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    benefit_settings = queue_settings(settings, calls_queue_policy="benefit")
    model = train_working_model(session, benefit_settings, clock.now())
    groups = _candidates(session)
    artefact = Path(model.artefact_path)
    artefact.write_bytes(artefact.read_bytes() + b"\0")

    decision = service.queue_decision(session, benefit_settings)
    _arms, called = _build(session, benefit_settings)

    assert decision.effective == "risk"
    assert "does not match the SHA-256" in decision.message
    assert called <= groups["follow_up"]
