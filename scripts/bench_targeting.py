"""Benchmark fitting the benefit model on a year of programme history (JSON output).

The history is synthesised by the targeting simulation's own generator
(`app.targeting.simulation`: a synthetic trust's eligible appointments day by day with true
untreated DNA probabilities from `app.synth.dna_model`, heterogeneous true call effects, the
queue's keyed hold-out, today's risk ranking at the default capacity of 80 calls a day, and
the outcome each appointment then had). Those rows are written as patients, appointments,
call assignments and calls into a throwaway SQLite database migrated by Alembic, and
`app.targeting.service.train_benefit_model` (what `navigator targeting train` runs) is timed
end to end: reading the trial rows from the database, fitting the call-effect model, the out-of-time
Qini validation with its bootstrap interval, saving the artefact and the card. Reading and
fitting are also timed on their own. The database is deleted at the end. Synthetic data only.

    .venv/bin/python scripts/bench_targeting.py [--assignments N] [--weeks W]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.appointments.tables import Appointment, Clinic
from app.calls.queue import Reason, daily_capacity
from app.calls.tables import Arm, Call, CallAssignment, CallStatus
from app.clock import SYSTEM_CLOCK
from app.db import migrate
from app.db.session import Database
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN
from app.settings import Settings
from app.synth.dna_model import DEFAULT_MODEL, HETEROGENEOUS_CALL_EFFECT
from app.targeting import repository, service
from app.targeting.simulation import (
    TrustShape,
    _draw_day,
    _population,
    _run_day,
    risk_priority,
)
from app.targeting.uplift import fit_out_of_time, would_be_called

CHUNK = 5_000


def _working_days(last: date, count: int) -> list[date]:
    days: list[date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def synthesise(settings: Settings, *, assignments: int, weeks: int, seed: int) -> dict[str, Any]:
    """Rows of a programme run under the risk policy: one dict list per table."""
    rng = np.random.default_rng(seed)
    model, effect = DEFAULT_MODEL, HETEROGENEOUS_CALL_EFFECT
    today = settings.calendar.today(SYSTEM_CLOCK.now())
    days = _working_days(today - timedelta(days=14), weeks * 5)
    probe_shape = TrustShape()
    people = _population(rng, probe_shape, model, settings, 0)
    specialty_effects = np.array(list(model.specialty.values()) + [0.0] * 4, dtype=float)
    probe = _draw_day(rng, people, probe_shape, model, effect, settings, specialty_effects)
    eligible_share = len(probe.p0) / probe_shape.appointments_per_day
    per_day = math.ceil(assignments / len(days) / eligible_share * 1.05)
    shape = TrustShape(appointments_per_day=per_day)
    room = daily_capacity(settings)
    rows: list[dict[str, Any]] = []
    for queue_date in days:
        day = _draw_day(rng, people, shape, model, effect, settings, specialty_effects)
        chosen, _floors, dna = _run_day(day, settings, room, "risk", None, shape.answer_rate)
        called = np.zeros(len(day.p0), dtype=bool)
        called[chosen] = True
        priority = risk_priority(day.risk, day.membership)
        for index in range(len(day.p0)):
            rows.append(
                {
                    "queue_date": queue_date,
                    "patient": int(day.patient[index]),
                    "lead": float(day.columns.lead_time_days[index]),
                    "first": bool(day.columns.first_attendance[index]),
                    "risk": float(day.risk[index]),
                    "priority": float(priority[index]),
                    "membership": day.membership[index].tolist(),
                    "held_out": bool(day.held_out[index]),
                    "called": bool(called[index]),
                    "dna": bool(dna[index]),
                }
            )
    keep = np.sort(rng.choice(len(rows), size=min(assignments, len(rows)), replace=False))
    return {
        "rows": [rows[index] for index in keep.tolist()],
        "people": people,
        "appointments_per_day": per_day,
        "days": len(days),
    }


def _reasons(row: dict[str, Any], settings: Settings) -> list[str]:
    core20, communication, learning, no_sms = row["membership"]
    reasons = [Reason.HIGH_RISK] if row["risk"] >= settings.risk_band_high else []
    if core20:
        reasons.append(Reason.CORE20)
    if communication:
        reasons.append(Reason.INTERPRETER)
    if learning:
        reasons.append(Reason.LEARNING_DISABILITY)
    if no_sms:
        reasons.append(Reason.NO_SMS_CHANNEL)
    return reasons


def populate(database: Database, settings: Settings, history: dict[str, Any]) -> None:
    """Write the synthesised programme with bulk inserts (one clinic, 10:00 appointments)."""
    people, rows = history["people"], history["rows"]
    used = sorted({row["patient"] for row in rows})
    with database.unit_of_work() as session:
        clinic_id = session.scalar(
            insert(Clinic)
            .values(code="BENCH1", site="Bench site", specialty_code="120")
            .returning(Clinic.id)
        )
        patient_ids: dict[int, int] = {}
        for start in range(0, len(used), CHUNK):
            chunk = used[start : start + CHUNK]
            ids = session.scalars(
                insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                [
                    {
                        "pas_patient_id": f"BENCH{index:07d}",
                        "birth_date": date(2026, 1, 1)
                        - timedelta(days=int(people.age[index] * 365.25)),
                        "sex": "M" if people.male[index] else "F",
                        "imd_decile": int(people.imd[index]) or None,
                        "core20": bool(people.core20[index]),
                        "interpreter_needed": bool(people.interpreter[index]),
                        "communication_needs": "bsl" if people.communication[index] else "",
                        "learning_disability": bool(people.learning_disability[index]),
                        "sms_opt_out": bool(people.no_sms[index]),
                        "mobile_phone": "+447700900123",
                    }
                    for index in chunk
                ],
            ).all()
            patient_ids.update(zip(chunk, ids, strict=True))
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            starts = [
                datetime.combine(row["queue_date"] + timedelta(days=7), clock_time(10), tzinfo=UTC)
                for row in chunk
            ]
            appointment_ids = session.scalars(
                insert(Appointment).returning(Appointment.id, sort_by_parameter_order=True),
                [
                    {
                        "pas_appointment_id": f"BA{start + offset:08d}",
                        "patient_id": patient_ids[row["patient"]],
                        "clinic_id": clinic_id,
                        "booked_at": begins - timedelta(days=row["lead"]),
                        "start_at": begins,
                        "first_attendance": row["first"],
                        "attendance_code": "3" if row["dna"] else "5",
                        "outcome_recorded_at": begins + timedelta(hours=2),
                    }
                    for offset, (row, begins) in enumerate(zip(chunk, starts, strict=True))
                ],
            ).all()
            # One call per patient and queue day covers all their appointments that day.
            call_keys = sorted(
                {(patient_ids[row["patient"]], row["queue_date"]) for row in chunk if row["called"]}
            )
            call_ids = session.scalars(
                insert(Call).returning(Call.id, sort_by_parameter_order=True),
                [
                    {
                        "patient_id": patient,
                        "queue_date": queue_date,
                        "priority": 0.0,
                        "status": CallStatus.COMPLETED,
                        "attempts": 1,
                        "documents_shown": [],
                    }
                    for patient, queue_date in call_keys
                ],
            ).all()
            call_of = dict(zip(call_keys, call_ids, strict=True))
            session.execute(
                insert(CallAssignment),
                [
                    {
                        "appointment_id": appointment_id,
                        "patient_id": patient_ids[row["patient"]],
                        "queue_date": row["queue_date"],
                        "arm": Arm.HOLDOUT if row["held_out"] else Arm.CALL,
                        "reasons": _reasons(row, settings),
                        "risk": row["risk"],
                        "band": "high" if row["risk"] >= settings.risk_band_high else "medium",
                        "model_version": "bench-risk",
                        "priority": row["priority"],
                        "assigned_at": datetime.combine(
                            row["queue_date"], clock_time(7), tzinfo=UTC
                        ),
                        "call_id": call_of.get((patient_ids[row["patient"]], row["queue_date"]))
                        if row["called"]
                        else None,
                    }
                    for row, appointment_id in zip(chunk, appointment_ids, strict=True)
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, default=50_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=2026)
    arguments = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-targeting-") as directory:
        url = f"sqlite:///{directory}/bench.db"
        settings = Settings(_env_file=None, database_url=url, models_dir=Path(directory) / "models")
        migrate.upgrade(url)
        database = Database(settings)
        started = time.perf_counter()
        history = synthesise(
            settings, assignments=arguments.assignments, weeks=arguments.weeks, seed=arguments.seed
        )
        synthesised = time.perf_counter() - started
        started = time.perf_counter()
        populate(database, settings, history)
        populated = time.perf_counter() - started
        last_start = max(row["queue_date"] for row in history["rows"]) + timedelta(days=7)
        now = datetime.combine(last_start + timedelta(days=1), clock_time(12), tzinfo=UTC)

        # End to end first, from a database no query has read yet (as `navigator targeting
        # train` runs), then its two largest steps on their own.
        with database.unit_of_work() as session:
            result = service.train_benefit_model(session, settings, now=now)
            card = result.card
            decision = service.queue_decision(
                session, settings.model_copy(update={"calls_queue_policy": "benefit"})
            )
        with database.unit_of_work() as session:
            started = time.perf_counter()
            rows = repository.load_trial_rows(
                session,
                Appointment.start_at < now,
                Appointment.attendance_code != NOT_YET_KNOWN,
            )
            read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        # The fitting alone: every rolling-origin fold, as training runs it.
        fit_out_of_time(
            rows.columns.matrix(),
            rows.called,
            rows.dna,
            rows.queue_day,
            would_be_called(rows.priority, rows.queue_day, rows.call_arm, rows.called),
            share=settings.targeting_validation_share,
            folds=settings.targeting_validation_folds,
            version="bench-fit-only",
        )
        fit_seconds = time.perf_counter() - started

        database.dispose()
    metrics = card["metrics"]
    print(
        json.dumps(
            {
                "assignments": card["rows"]["with_outcome"],
                "rows": card["rows"],
                "data_window": card["data_window"],
                "weeks": arguments.weeks,
                "working_days": history["days"],
                "synthetic_appointments_per_day": history["appointments_per_day"],
                "calls_per_day": daily_capacity(settings),
                "database": "SQLite (throwaway file)",
                "seconds": {
                    "train_end_to_end": round(result.seconds, 2),
                    "read_trial_rows": round(read_seconds, 2),
                    "fit_benefit_model": round(fit_seconds, 2),
                    "synthesise": round(synthesised, 2),
                    "write_database": round(populated, 2),
                },
                "target_seconds": 60,
                "bootstrap_replicates": metrics["bootstrap_replicates"],
                "qini_area": metrics["qini_area"],
                "qini_area_ci": metrics["qini_area_ci"],
                "risk_qini_area": metrics["risk_qini_area"],
                "queue_policy_if_benefit_requested": decision.effective,
                "load_average_before": [round(value, 2) for value in load_before],
                "load_average_after": [round(value, 2) for value in os.getloadavg()],
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
