"""Programme history for the demo: the last weeks of the navigator programme, simulated on the
synthetic trust through the real services, so the dashboard's figures come from records.

For each past day, in order:

1. the calls feature builds that day's queue (`app.calls.queue.build_queue`): eligible
   appointments a week ahead are randomised to the call arm or the hold-out, and calls are
   queued up to capacity;
2. simulated navigators work the queue through the calls service (take the next call, record
   each attempt, record outcomes, complete the call), exactly as the pages do;
3. appointments starting that day get their attendance drawn from the synthetic trust's
   generative DNA model (`app.synth.dna_model`), with the model's true effect of a call that
   reached the patient (by default a relative risk of 0.70) and of a delivered SMS reminder.

The attendance of appointments in the simulated weeks is re-drawn (the imported outcomes
were drawn as if there had been no programme); provider and patient cancellations from the
extract are kept. The true number of DNAs the programme avoided among call-arm appointments
is known exactly (the sum of each appointment's drop in DNA probability, counting a
cancellation by a call as removing its whole risk) and returned, so a test can check that the
reported 95% interval covers it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.calls import service as calls_service
from app.calls.queue import build_queue
from app.calls.schemas import OutcomeIn
from app.calls.tables import AttemptResult, CallAssignment, OutcomeKind
from app.console import NULL_PROGRESS, ProgressReporter
from app.db.session import Database
from app.localtime import TrustCalendar
from app.patients.tables import Patient
from app.reference.codes import DNA_CODES, NOT_YET_KNOWN, ethnic_group
from app.settings import Settings
from app.synth.dna_model import DEFAULT_MODEL, DnaModel, dna_probability

logger = logging.getLogger("navigator.analytics.simulation")

DNA_CODE = "3"
ATTENDED_CODE = "5"
QUEUE_BUILD_TIME = time(8, 0)  # local time: the morning queue is built before navigators start


@dataclass(frozen=True)
class NavigatorBehaviour:
    """How simulated calls go. Probabilities are per call (answer, wrong number) or per
    reached call (each outcome); set the decision shares to 0 for a programme with no effect."""

    answer: float = 0.65
    wrong_number: float = 0.03
    cancelled: float = 0.04
    rebooked: float = 0.04
    travel_costs: float = 0.06
    parking: float = 0.05
    transport: float = 0.02
    longer_appointment_given_need: float = 0.4


NO_EFFECT_BEHAVIOUR = NavigatorBehaviour(cancelled=0.0, rebooked=0.0)


@dataclass
class SimulationSummary:
    first_day: date
    last_day: date
    days: int = 0
    assigned_call: int = 0
    assigned_holdout: int = 0
    calls_taken: int = 0
    calls_reached: int = 0
    appointments_drawn: int = 0
    dnas_drawn: int = 0
    call_arm_with_outcome: int = 0
    call_reached_relative_risk: float = 1.0
    # The truth: DNAs the programme avoided among call-arm appointments (expected value).
    true_avoided_dnas: float = 0.0
    skipped: str | None = None
    per_arm: dict[str, int] = field(default_factory=dict)
    # Expected DNAs without any call, per arm (a check that randomisation balanced the arms).
    untreated_expected_dnas: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["first_day"] = self.first_day.isoformat()
        values["last_day"] = self.last_day.isoformat()
        return values

    def human(self) -> str:
        if self.skipped:
            return f"Programme history: {self.skipped}"
        return (
            f"Programme history {self.first_day} to {self.last_day}: "
            f"{self.assigned_call} appointments in the call arm, {self.assigned_holdout} held "
            f"out; {self.calls_taken} calls, {self.calls_reached} reached; "
            f"{self.dnas_drawn} DNAs in {self.appointments_drawn} appointments."
        )


def simulate_programme(
    database: Database,
    settings: Settings,
    weeks: int = 8,
    *,
    today: date,
    seed: int = 2026,
    model: DnaModel = DEFAULT_MODEL,
    call_reached_relative_risk: float | None = None,
    behaviour: NavigatorBehaviour | None = None,
    navigator_user_ids: tuple[int, ...] = (0,),
    progress: ProgressReporter = NULL_PROGRESS,
) -> SimulationSummary:
    """Simulate the `weeks` weeks before the local day `today` (from the caller's clock), day
    by day, one transaction per day.

    Safe to call again: when the database already holds programme history (assignments
    before today) nothing is changed and the summary says so.
    """
    calendar = settings.calendar
    first_day = today - timedelta(weeks=weeks)
    rr_call = (
        model.navigator_call_reached_relative_risk
        if call_reached_relative_risk is None
        else call_reached_relative_risk
    )
    behaviour = behaviour or NavigatorBehaviour()
    summary = SimulationSummary(
        first_day=first_day,
        last_day=today - timedelta(days=1),
        call_reached_relative_risk=rr_call,
    )
    rng = np.random.default_rng(seed)
    with database.unit_of_work() as session:
        existing = session.scalar(
            select(func.count())
            .select_from(CallAssignment)
            .where(CallAssignment.queue_date < today)
        )
        if existing:
            summary.skipped = "the database already holds programme history; nothing changed"
            return summary
        first_start, today_start = calendar.days_bounds(first_day, today)
        # Re-draw attended and DNA outcomes of the simulated weeks under the programme.
        session.execute(
            update(Appointment)
            .where(
                Appointment.start_at >= first_start,
                Appointment.start_at < today_start,
                Appointment.attendance_code.in_(["0", "3", "5", "6", "7"]),
            )
            .values(attendance_code=NOT_YET_KNOWN, outcome_recorded_at=None)
        )
        patient_ids = list(session.scalars(select(Patient.id).order_by(Patient.id)))
    propensity = dict(
        zip(
            patient_ids,
            rng.normal(0.0, model.latent_propensity_sd, size=len(patient_ids)),
            strict=True,
        )
    )
    progress.update(total=(today - first_day).days, description="Simulating programme history")
    day = first_day
    while day < today:
        with database.unit_of_work() as session:
            _simulate_day(
                session,
                settings,
                day,
                calendar=calendar,
                rng=rng,
                model=model,
                rr_call=rr_call,
                behaviour=behaviour,
                navigators=navigator_user_ids,
                propensity=propensity,
                summary=summary,
            )
        summary.days += 1
        progress.advance()
        day += timedelta(days=1)
    logger.info(
        "programme simulated: %s days, %s calls, %s appointments drawn",
        summary.days,
        summary.calls_taken,
        summary.appointments_drawn,
    )
    return summary


def _simulate_day(
    session: Session,
    settings: Settings,
    day: date,
    *,
    calendar: TrustCalendar,
    rng: np.random.Generator,
    model: DnaModel,
    rr_call: float,
    behaviour: NavigatorBehaviour,
    navigators: tuple[int, ...],
    propensity: dict[int, float],
    summary: SimulationSummary,
) -> None:
    morning = calendar.at(day, QUEUE_BUILD_TIME)
    built = build_queue(session, settings, day, now=morning)
    summary.assigned_call += built.assigned_call
    summary.assigned_holdout += built.assigned_holdout
    _work_queue(
        session,
        settings,
        day,
        calendar=calendar,
        rng=rng,
        behaviour=behaviour,
        navigators=navigators,
        summary=summary,
    )
    _draw_attendance(
        session,
        settings,
        day,
        calendar=calendar,
        rng=rng,
        model=model,
        rr_call=rr_call,
        propensity=propensity,
        summary=summary,
    )


def _work_queue(
    session: Session,
    settings: Settings,
    day: date,
    *,
    calendar: TrustCalendar,
    rng: np.random.Generator,
    behaviour: NavigatorBehaviour,
    navigators: tuple[int, ...],
    summary: SimulationSummary,
) -> None:
    """Navigators take calls one after another through the working day."""
    now = calendar.working_day_start(day)
    end = calendar.working_day_end(day)
    step = timedelta(minutes=settings.analytics_minutes_per_call / max(len(navigators), 1))
    turn = 0
    while now < end:
        user_id = navigators[turn % len(navigators)]
        turn += 1
        call = calls_service.take_next_call(session, settings, user_id=user_id, now=now)
        if call is None:
            break
        summary.calls_taken += 1
        draw = rng.random()
        if draw < behaviour.wrong_number:
            calls_service.record_attempt(
                session,
                settings,
                call_id=call.id,
                user_id=user_id,
                result=AttemptResult.WRONG_NUMBER,
                now=now,
            )
        elif draw < behaviour.wrong_number + behaviour.answer:
            calls_service.record_attempt(
                session,
                settings,
                call_id=call.id,
                user_id=user_id,
                result=AttemptResult.ANSWERED,
                now=now,
            )
            outcomes = _outcomes_for(
                session, settings.calendar, call.id, call.patient_id, now, rng, behaviour
            )
            calls_service.record_outcomes(
                session, settings, call_id=call.id, user_id=user_id, outcomes=outcomes, now=now
            )
            calls_service.complete_call(session, call_id=call.id, user_id=user_id, now=now)
            summary.calls_reached += 1
        else:
            calls_service.record_attempt(
                session,
                settings,
                call_id=call.id,
                user_id=user_id,
                result=AttemptResult.NO_ANSWER,
                now=now,
            )
        now += step


def _same_local_time(calendar: TrustCalendar, moment: datetime, *, days: int) -> datetime:
    local = calendar.local(moment)
    return calendar.at(local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None))


def _outcomes_for(
    session: Session,
    calendar: TrustCalendar,
    call_id: int,
    patient_id: int,
    now: datetime,
    rng: np.random.Generator,
    behaviour: NavigatorBehaviour,
) -> list[OutcomeIn]:
    patient = session.get_one(Patient, patient_id)
    booked = session.scalars(
        select(Appointment).where(
            Appointment.id.in_(calls_service.covered_appointment_ids(session, call_id)),
            Appointment.attendance_code == NOT_YET_KNOWN,
            Appointment.start_at > now,
        )
    ).all()
    outcomes: list[OutcomeIn] = []
    for appointment in booked:
        draw = rng.random()
        if draw < behaviour.cancelled:
            outcomes.append(OutcomeIn(kind=OutcomeKind.CANCELLED, appointment_id=appointment.id))
        elif draw < behaviour.cancelled + behaviour.rebooked:
            outcomes.append(
                OutcomeIn(
                    kind=OutcomeKind.REBOOKED,
                    appointment_id=appointment.id,
                    # Two weeks later at the same local time (not the same UTC time: across
                    # a clock change that would move an 08:30 clinic to 07:30).
                    new_start_at=_same_local_time(calendar, appointment.start_at, days=14),
                )
            )
        else:
            outcomes.append(OutcomeIn(kind=OutcomeKind.CONFIRMED, appointment_id=appointment.id))
    for kind, share in (
        (OutcomeKind.TRAVEL_COSTS, behaviour.travel_costs),
        (OutcomeKind.PARKING, behaviour.parking),
        (OutcomeKind.TRANSPORT, behaviour.transport),
    ):
        if rng.random() < share:
            outcomes.append(OutcomeIn(kind=kind))
    if patient.interpreter_needed and patient.preferred_language != "en":
        outcomes.append(
            OutcomeIn(kind=OutcomeKind.SPOKEN_INTERPRETER, language=patient.preferred_language)
        )
    if "bsl" in patient.communication_need_list:
        outcomes.append(OutcomeIn(kind=OutcomeKind.BSL_INTERPRETER))
    needs = patient.learning_disability or bool(patient.communication_needs)
    if needs and rng.random() < behaviour.longer_appointment_given_need:
        outcomes.append(OutcomeIn(kind=OutcomeKind.LONGER_APPOINTMENT))
    if not outcomes:
        # Every appointment already decided (e.g. earlier call): a note that the call happened.
        outcomes.append(OutcomeIn(kind=OutcomeKind.DECLINED_HELP))
    return outcomes


def _reached_before_start(channel: str) -> Any:
    """The appointment's patient was reached on this channel before it started."""
    return (
        select(AppointmentContact.appointment_id)
        .where(
            AppointmentContact.channel == channel,
            AppointmentContact.reached.is_(True),
            AppointmentContact.contacted_at < Appointment.start_at,
            AppointmentContact.appointment_id == Appointment.id,
        )
        .exists()
    )


def _draw_attendance(
    session: Session,
    settings: Settings,
    day: date,
    *,
    calendar: TrustCalendar,
    rng: np.random.Generator,
    model: DnaModel,
    rr_call: float,
    propensity: dict[int, float],
    summary: SimulationSummary,
) -> None:
    """Attend or DNA for every still-booked appointment starting on `day`."""
    start, end = calendar.day_bounds(day)
    reached_call = _reached_before_start("call")
    sms_delivered = _reached_before_start("sms")
    rows = session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.start_at,
            Appointment.booked_at,
            Appointment.first_attendance,
            Appointment.attendance_code,
            Clinic.specialty_code,
            Patient.birth_date,
            Patient.sex,
            Patient.imd_decile,
            Patient.ethnic_category,
            Patient.interpreter_needed,
            Patient.communication_needs,
            Patient.learning_disability,
            reached_call.label("reached_call"),
            sms_delivered.label("sms_delivered"),
            CallAssignment.arm,
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .outerjoin(CallAssignment, CallAssignment.appointment_id == Appointment.id)
        .where(
            Appointment.start_at >= start,
            Appointment.start_at < end,
            Appointment.attendance_code.in_([NOT_YET_KNOWN, "2"]),
        )
        .order_by(Appointment.id)
    ).all()
    # Call-arm appointments a call cancelled or rebooked today or earlier lose their whole
    # risk: part of the true effect, though they get no attendance.
    cancelled_by_call = [row for row in rows if row.attendance_code == "2" and row.arm == "call"]
    booked = [row for row in rows if row.attendance_code == NOT_YET_KNOWN]
    if not rows:
        return
    prior = _prior_dnas(session, [row.patient_id for row in rows], start)
    everything = booked + cancelled_by_call
    base = _base_probability(model, everything, prior, propensity)
    probabilities = base[: len(booked)]
    treated = probabilities.copy()
    reached = np.array([bool(row.reached_call) for row in booked], dtype=bool)
    sms = np.array([bool(row.sms_delivered) for row in booked], dtype=bool)
    treated = np.where(reached, treated * rr_call, treated)
    treated = np.where(sms, treated * model.sms_reminder_relative_risk, treated)
    draws = rng.random(len(booked))
    dna = draws < treated
    for row, missed in zip(booked, dna, strict=True):
        session.execute(
            update(Appointment)
            .where(Appointment.id == row.id)
            .values(
                attendance_code=DNA_CODE if missed else ATTENDED_CODE,
                outcome_recorded_at=row.start_at,
            )
        )
    summary.appointments_drawn += len(booked)
    summary.dnas_drawn += int(dna.sum())
    untreated_sms = np.where(sms, probabilities * model.sms_reminder_relative_risk, probabilities)
    for index, row in enumerate(booked):
        if row.arm == "call":
            summary.true_avoided_dnas += float(untreated_sms[index] - treated[index])
            summary.call_arm_with_outcome += 1
    for index, row in enumerate(cancelled_by_call):
        if _was_cancelled_by_call(session, row.id):
            summary.true_avoided_dnas += float(base[len(booked) + index])
    arms: dict[str, int] = defaultdict(int, summary.per_arm)
    expected: dict[str, float] = defaultdict(float, summary.untreated_expected_dnas)
    for index, row in enumerate(booked):
        arms[str(row.arm or "not eligible")] += 1
        expected[str(row.arm or "not eligible")] += float(untreated_sms[index])
    summary.per_arm = dict(arms)
    summary.untreated_expected_dnas = dict(expected)


def _was_cancelled_by_call(session: Session, appointment_id: int) -> bool:
    from app.calls.tables import CallOutcome

    return (
        session.scalar(
            select(func.count())
            .select_from(CallOutcome)
            .where(
                CallOutcome.appointment_id == appointment_id,
                CallOutcome.kind.in_([OutcomeKind.CANCELLED, OutcomeKind.REBOOKED]),
            )
        )
        or 0
    ) > 0


def _prior_dnas(session: Session, patient_ids: list[int], before: datetime) -> dict[int, int]:
    rows = session.execute(
        select(Appointment.patient_id, func.count())
        .where(
            Appointment.patient_id.in_(set(patient_ids)),
            Appointment.start_at < before,
            Appointment.attendance_code.in_(DNA_CODES),
        )
        .group_by(Appointment.patient_id)
    ).all()
    return {int(patient_id): int(count) for patient_id, count in rows}


def _base_probability(
    model: DnaModel, rows: list[Any], prior: dict[int, int], propensity: dict[int, float]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each appointment's DNA probability without any contact, from the generative model."""
    if not rows:
        return np.zeros(0)
    age = np.array(
        [(row.start_at.date() - row.birth_date).days / 365.25 for row in rows],
        dtype=np.float64,
    )
    lead = np.array(
        [max((row.start_at - row.booked_at).total_seconds() / 86400, 0.0) for row in rows],
        dtype=np.float64,
    )
    return dna_probability(
        model,
        first_appointment=np.array([bool(row.first_attendance) for row in rows], dtype=bool),
        specialty_effect=model.specialty_effect(
            np.array([row.specialty_code or "" for row in rows], dtype=str)
        ),
        imd_decile=np.array([row.imd_decile or 0 for row in rows], dtype=np.int64),
        age_years=age,
        male=np.array([row.sex == "M" for row in rows], dtype=bool),
        lead_days=lead,
        prior_dnas=np.array([prior.get(row.patient_id, 0) for row in rows], dtype=np.int64),
        interpreter_needed=np.array([bool(row.interpreter_needed) for row in rows], dtype=bool),
        communication_need=np.array([bool(row.communication_needs) for row in rows], dtype=bool),
        learning_disability=np.array([bool(row.learning_disability) for row in rows], dtype=bool),
        ethnic_group_effect=model.ethnic_group_effect(
            np.array([ethnic_group(row.ethnic_category) for row in rows], dtype=str)
        ),
        latent_propensity=np.array(
            [propensity.get(row.patient_id, 0.0) for row in rows], dtype=np.float64
        ),
    )


__all__ = ["NO_EFFECT_BEHAVIOUR", "NavigatorBehaviour", "SimulationSummary", "simulate_programme"]
