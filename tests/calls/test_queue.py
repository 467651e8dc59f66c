"""The daily queue: eligibility, hold-out, priority, capacity, one call a week, rebuilds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.calls.queue import Reason, build_queue, is_held_out, priority_of
from app.calls.service import take_next_call
from app.calls.tables import Arm, Call, CallAssignment, CallStatus
from app.clock import FixedClock
from app.settings import Settings
from tests.calls.helpers import (
    MORNING,
    QUEUE_DAY,
    calls_settings,
    create_eligible_appointment,
    create_risk_score,
    in_window,
)
from tests.clock import TODAY
from tests.factories import create_appointment, create_patient


def _assignments(session: Session) -> dict[int, CallAssignment]:
    return {row.appointment_id: row for row in session.scalars(select(CallAssignment))}


def test_eligibility_follows_risk_band_and_priority_groups(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    high = create_eligible_appointment(session, risk=0.6)
    core20 = create_appointment(
        session, patient=create_patient(session, core20=True), start_at=in_window()
    )
    interpreter = create_appointment(
        session,
        patient=create_patient(session, interpreter_needed=True, preferred_language="pl"),
        start_at=in_window(),
    )
    bsl = create_appointment(
        session, patient=create_patient(session, communication_needs="bsl"), start_at=in_window()
    )
    learning = create_appointment(
        session, patient=create_patient(session, learning_disability=True), start_at=in_window()
    )
    no_mobile = create_appointment(
        session,
        # A landline to ring: a patient with no usable phone at all gets a letter, not a call.
        patient=create_patient(session, mobile_phone=None, landline_phone="+441134960001"),
        start_at=in_window(),
    )
    opted_out = create_appointment(
        session, patient=create_patient(session, sms_opt_out=True), start_at=in_window()
    )
    invalid = create_appointment(
        session,
        patient=create_patient(session, mobile_phone_invalid=True, landline_phone="+441134960002"),
        start_at=in_window(),
    )
    low_risk = create_appointment(session, start_at=in_window())
    create_risk_score(session, low_risk, risk=0.05)
    cancelled = create_eligible_appointment(session, risk=0.9)
    cancelled.attendance_code = "2"
    too_late = create_eligible_appointment(session, risk=0.9, start_at=in_window(days_ahead=8))
    session.flush()

    result = build_queue(session, settings, QUEUE_DAY, now=MORNING)

    assignments = _assignments(session)
    assert set(assignments) == {
        high.id,
        core20.id,
        interpreter.id,
        bsl.id,
        learning.id,
        no_mobile.id,
        opted_out.id,
        invalid.id,
    }
    assert low_risk.id not in assignments
    assert cancelled.id not in assignments
    assert too_late.id not in assignments
    assert assignments[high.id].reasons == [Reason.HIGH_RISK]
    assert assignments[high.id].band == "high"
    assert assignments[high.id].model_version == "test-model-1"
    assert assignments[core20.id].reasons == [Reason.CORE20]
    assert assignments[interpreter.id].reasons == [Reason.INTERPRETER]
    assert assignments[bsl.id].reasons == [Reason.COMMUNICATION_NEED]
    assert assignments[learning.id].reasons == [Reason.LEARNING_DISABILITY]
    for appointment in (no_mobile, opted_out, invalid):
        assert assignments[appointment.id].reasons == [Reason.NO_SMS_CHANNEL]
    assert result.newly_eligible == 8
    assert result.calls_created == 8


def test_each_rule_can_be_switched_off(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings, calls_rule_core20=False, calls_rule_no_sms_channel=False)
    create_appointment(session, patient=create_patient(session, core20=True), start_at=in_window())
    create_appointment(
        session, patient=create_patient(session, mobile_phone=None), start_at=in_window()
    )
    high = create_eligible_appointment(session, risk=0.4)

    build_queue(session, settings, QUEUE_DAY, now=MORNING)

    assert set(_assignments(session)) == {high.id}


def test_the_window_is_a_configurable_range_of_days(session: Session, settings: Settings) -> None:
    settings = calls_settings(settings, calls_window_start_days=6, calls_window_end_days=8)
    inside = [create_eligible_appointment(session, start_at=in_window(days)) for days in (6, 7, 8)]
    create_eligible_appointment(session, start_at=in_window(5))
    create_eligible_appointment(session, start_at=in_window(9, hour=0))

    build_queue(session, settings, QUEUE_DAY, now=MORNING)

    assert set(_assignments(session)) == {appointment.id for appointment in inside}


def test_priority_blends_risk_and_need() -> None:
    assert priority_of(0.45, [Reason.HIGH_RISK]) == 45.0
    assert priority_of(0.10, [Reason.CORE20, Reason.NO_SMS_CHANNEL]) == 40.0
    # Interpreter and communication need are one group.
    assert priority_of(None, [Reason.INTERPRETER, Reason.COMMUNICATION_NEED]) == 15.0


@pytest.mark.slow
def test_holdout_share_is_close_to_the_setting_and_reproducible(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_holdout_share=0.25, calls_navigators_on_duty=100)
    patients = [create_patient(session, core20=True) for _ in range(400)]
    for patient in patients:
        create_appointment(session, patient=patient, start_at=in_window())
    # Patient-level randomisation: a second appointment follows its patient's arm.
    create_appointment(session, patient=patients[0], start_at=in_window(hour=15))

    build_queue(session, settings, QUEUE_DAY, now=MORNING)

    arms = {(row.patient_id, row.arm) for row in session.scalars(select(CallAssignment))}
    assert len(arms) == 400
    held_out = {patient_id for patient_id, arm in arms if arm == Arm.HOLDOUT}
    assert 0.18 < len(held_out) / 400 < 0.32
    expected = {p.id for p in patients if is_held_out(settings, p.pas_patient_id)}
    assert held_out == expected
    other_seed = settings.model_copy(update={"calls_programme_seed": "another-programme"})
    assert expected != {p.id for p in patients if is_held_out(other_seed, p.pas_patient_id)}
    called = set(session.scalars(select(Call.patient_id)))
    assert called.isdisjoint(held_out)
    assert len(called) == 400 - len(held_out)


def test_capacity_limits_calls_but_every_eligible_appointment_is_assigned(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_navigators_on_duty=1, calls_per_navigator_per_day=3)
    appointments = [create_eligible_appointment(session, risk=r) for r in (0.3, 0.9, 0.5, 0.7, 0.4)]

    result = build_queue(session, settings, QUEUE_DAY, now=MORNING)

    assert result.capacity == 3
    assert result.calls_created == 3
    assert result.patients_waiting_beyond_capacity == 2
    assert len(_assignments(session)) == 5
    called = {row.appointment_id: row.call_id for row in session.scalars(select(CallAssignment))}
    by_risk = dict(zip((0.3, 0.9, 0.5, 0.7, 0.4), appointments, strict=True))
    assert {a.id for r, a in by_risk.items() if r >= 0.5} == {
        appointment_id for appointment_id, call_id in called.items() if call_id is not None
    }
    again = build_queue(session, settings, QUEUE_DAY, now=MORNING)
    assert again.calls_created == 0
    assert session.scalar(select(func.count(Call.id))) == 3


def test_call_arm_beyond_capacity_is_offered_in_a_later_build_while_in_the_window(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(
        settings,
        calls_navigators_on_duty=1,
        calls_per_navigator_per_day=1,
        calls_window_start_days=6,
        calls_window_end_days=8,
    )
    first = create_eligible_appointment(session, risk=0.9)
    second = create_eligible_appointment(session, risk=0.5)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    first_call = session.scalars(select(Call)).one()
    first_call.status = CallStatus.COMPLETED

    next_day = build_queue(session, settings, QUEUE_DAY + timedelta(days=1), now=MORNING)

    assert next_day.calls_created == 1
    assignments = _assignments(session)
    assert assignments[second.id].call_id is not None
    assert assignments[second.id].queue_date == QUEUE_DAY  # assigned when first eligible
    assert assignments[first.id].call_id == first_call.id


def test_one_call_covers_all_of_a_patients_appointments_in_the_week(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings, calls_window_start_days=6, calls_window_end_days=8)
    patient = create_patient(session, core20=True)
    morning = create_appointment(session, patient=patient, start_at=in_window(7, hour=9))
    afternoon = create_appointment(session, patient=patient, start_at=in_window(7, hour=14))
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = session.scalars(select(Call)).one()
    later = create_appointment(session, patient=patient, start_at=in_window(8, hour=11))

    result = build_queue(session, settings, QUEUE_DAY + timedelta(days=1), now=MORNING)

    assert result.calls_created == 0
    assert result.appointments_added_to_existing_calls == 1
    assignments = _assignments(session)
    assert {assignments[a.id].call_id for a in (morning, afternoon, later)} == {call.id}
    assert session.scalar(select(func.count(Call.id))) == 1


def test_rebuilding_adds_new_work_without_duplicating_or_reordering_started_calls(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    for risk in (0.4, 0.6, 0.8):
        create_eligible_appointment(session, risk=risk)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    started = take_next_call(session, settings, user_id=1, now=MORNING)
    assert started is not None
    before = {
        call.id: (call.priority, call.status, call.taken_by)
        for call in session.scalars(select(Call))
    }
    newcomer = create_eligible_appointment(session, risk=0.99)

    result = build_queue(session, settings, QUEUE_DAY, now=MORNING)

    assert result.newly_eligible == 1
    assert result.calls_created == 1
    calls = {call.id: call for call in session.scalars(select(Call))}
    assert len(calls) == 4
    for call_id, state in before.items():
        assert (calls[call_id].priority, calls[call_id].status, calls[call_id].taken_by) == state
    assert calls[started.id].status == CallStatus.IN_PROGRESS
    assert len(_assignments(session)) == 4
    assert _assignments(session)[newcomer.id].call_id not in before
    assert build_queue(session, settings, QUEUE_DAY, now=MORNING).newly_eligible == 0


def test_the_queue_build_command_prints_one_json_object(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    import json

    from typer.testing import CliRunner

    from app.cli import app
    from app.settings import get_settings

    create_eligible_appointment(session, risk=0.8)
    session.commit()
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAVIGATOR_CALLS_HOLDOUT_SHARE", "0")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["queue", "build", "--date", QUEUE_DAY.isoformat(), "--json"], obj=clock
        )
        default_day = CliRunner().invoke(app, ["queue", "build", "--json"], obj=clock)
        bad = CliRunner().invoke(app, ["queue", "build", "--date", "1 Dec"], obj=clock)
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["queue_date"] == QUEUE_DAY.isoformat()
    assert summary["calls_created"] == 1
    assert summary["capacity"] == 80
    # Without --date the queue is the clock's local day, not the computer's.
    assert json.loads(default_day.stdout)["queue_date"] == TODAY.isoformat()
    assert bad.exit_code != 0


def test_a_window_that_ends_before_it_starts_is_refused(
    session: Session, settings: Settings
) -> None:
    from app.errors import InvalidInputError

    settings = calls_settings(settings, calls_window_start_days=8, calls_window_end_days=6)
    with pytest.raises(InvalidInputError, match="WINDOW_END_DAYS"):
        build_queue(session, settings, QUEUE_DAY, now=MORNING)
