"""Helpers for the targeting tests: a past trial (assignments with arms, calls and outcomes)
built relative to the test clock, and settings small enough for test-sized trials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.calls.tables import Arm, Call, CallAssignment, CallStatus
from app.patients.tables import Patient
from app.settings import Settings
from app.targeting import service
from app.targeting.tables import BenefitModel
from tests.calls.helpers import create_risk_score, in_window
from tests.clock import CALENDAR
from tests.factories import create_appointment, create_clinic, create_patient


def targeting_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "calls_holdout_share": 0.2,
        "targeting_min_subgroup": 20,
        "targeting_min_training_rows": 200,
        "targeting_min_holdout_outcomes": 50,
        "targeting_bootstrap_replicates": 100,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@dataclass(frozen=True)
class Trial:
    appointments: int
    call_arm: int
    holdout: int


def create_trial(
    session: Session,
    now: datetime,
    *,
    appointments: int = 1200,
    weeks: int = 20,
    holdout_every: int = 5,
    base_dna: float = 0.30,
    called_first_dna: float = 0.02,
    called_follow_up_dna: float | None = None,
    seed: int = 7,
    specialty_code: str = "120",
) -> Trial:
    """A finished trial over the `weeks` before `now`: every `holdout_every`-th appointment is
    held out, every call-arm appointment got a call. The call works only for first
    appointments (DNA `base_dna` -> `called_first_dna`); follow-ups are not moved by it
    unless `called_follow_up_dna` is given."""
    rng = np.random.default_rng(seed)
    clinic = create_clinic(session, specialty_code=specialty_code)
    today = CALENDAR.today(now)
    patients = (
        session.execute(
            insert(Patient).returning(Patient.id),
            [
                {
                    "pas_patient_id": f"TRIAL{seed:02d}{index:06d}",
                    "birth_date": date(1960 + index % 40, 1, 1),
                    "sex": "F" if index % 2 else "M",
                    "ethnic_category": "A",
                    "imd_decile": 1 + index % 10,
                    "core20": index % 10 < 2,
                    "preferred_language": "en",
                    "communication_needs": "",
                    "interpreter_needed": index % 17 == 0,
                    "mobile_phone": "+447700900123",
                }
                for index in range(appointments)
            ],
        )
        .scalars()
        .all()
    )
    appointment_rows = []
    assignment_rows: list[dict[str, Any]] = []
    call_rows = []
    for index, patient_id in enumerate(patients):
        queue_date = today - timedelta(days=7 + int(index * weeks * 7 / appointments) + 1)
        start = CALENDAR.at(queue_date + timedelta(days=7), time(10))
        first = index % 2 == 0
        held_out = index % holdout_every == holdout_every - 1
        if held_out:
            p = base_dna
        elif first:
            p = called_first_dna
        else:
            p = base_dna if called_follow_up_dna is None else called_follow_up_dna
        dna = rng.random() < p
        appointment_rows.append(
            {
                "pas_appointment_id": f"TA{seed:02d}{index:07d}",
                "patient_id": patient_id,
                "clinic_id": clinic.id,
                "booked_at": start - timedelta(days=40 if first else 20),
                "start_at": start,
                "first_attendance": first,
                "attendance_code": "3" if dna else "5",
                "outcome_recorded_at": start + timedelta(hours=2),
            }
        )
        risk = 0.2 + 0.1 * (index % 3)
        reasons = ["high_risk"] + (["core20"] if index % 10 < 2 else [])
        assignment_rows.append(
            {
                "patient_id": patient_id,
                "queue_date": queue_date,
                "arm": Arm.HOLDOUT if held_out else Arm.CALL,
                "reasons": reasons,
                "risk": risk,
                "band": "high",
                "model_version": "test-model-1",
                "priority": round(100 * risk + 15 * (len(reasons) - 1), 4),
                "assigned_at": CALENDAR.at(queue_date, time(7)),
            }
        )
        if not held_out:
            call_rows.append(
                {
                    "patient_id": patient_id,
                    "queue_date": queue_date,
                    "priority": assignment_rows[-1]["priority"],
                    "status": CallStatus.COMPLETED,
                    "attempts": 1,
                    "documents_shown": [],
                    "created_at": CALENDAR.at(queue_date, time(7)),
                }
            )
    appointment_ids = (
        session.execute(
            insert(Appointment).returning(Appointment.id, sort_by_parameter_order=True),
            appointment_rows,
        )
        .scalars()
        .all()
    )
    call_ids = iter(
        session.execute(insert(Call).returning(Call.id, sort_by_parameter_order=True), call_rows)
        .scalars()
        .all()
        if call_rows
        else []
    )
    for row, appointment_id in zip(assignment_rows, appointment_ids, strict=True):
        row["appointment_id"] = appointment_id
        row["call_id"] = next(call_ids) if row["arm"] == Arm.CALL else None
    session.execute(insert(CallAssignment), assignment_rows)
    session.flush()
    holdout = sum(1 for row in assignment_rows if row["arm"] == Arm.HOLDOUT)
    return Trial(appointments=appointments, call_arm=appointments - holdout, holdout=holdout)


def period_bounds(now: datetime, weeks: int = 30) -> tuple[datetime, datetime]:
    today = CALENDAR.today(now)
    return CALENDAR.day_start(today - timedelta(weeks=weeks)), CALENDAR.day_start(
        today + timedelta(days=1)
    )


def create_candidate(
    session: Session, *, first: bool, risk: float, **patient_overrides: Any
) -> Appointment:
    """An eligible (high-risk) appointment in the queue day's window, booked like the trial's:
    first appointments 40 days ahead, follow-ups 20."""
    start = in_window()
    appointment = create_appointment(
        session,
        patient=create_patient(session, **patient_overrides),
        start_at=start,
        booked_at=start - timedelta(days=40 if first else 20),
        first_attendance=first,
    )
    create_risk_score(session, appointment, risk=risk)
    return appointment


def train_working_model(session: Session, settings: Settings, now: datetime) -> BenefitModel:
    """A trial in which calls clearly help first appointments and not follow-ups, and the
    benefit model trained on it (its out-of-time Qini interval is above 0)."""
    create_trial(session, now, base_dna=0.4)
    return service.train_benefit_model(session, settings, now=now).model
