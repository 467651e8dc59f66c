"""Building the day's call queue: eligibility, the randomised hold-out, priority and capacity.

The build is set-based: one query finds the window's eligible appointments that have no
assignment yet, one bulk insert records their arm, one query finds the call-arm appointments
not yet covered by a call, and one bulk insert creates the new calls. Work already queued is
never changed, so rebuilding the same day only adds.

Priority (higher is called first), per appointment:

    priority = 100 x risk + 15 x (number of priority groups the patient is in)

`risk` is the stored DNA-risk probability (0 when the appointment is not scored) and the
priority groups are Core20, interpreter or communication need, learning disability and no SMS
channel. A need therefore weighs like 15 percentage points of risk: a Core20 patient with no
SMS channel at 10% risk (priority 40) comes before an unscored patient with one need (15) and
after a 45% high-risk patient with no need (45). A call's priority is the highest of the
appointments it covers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, insert, or_, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.calls.tables import Arm, Call, CallAssignment, CallStatus
from app.db.dialect import refresh_statistics
from app.errors import InvalidInputError
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN
from app.risk.tables import RiskScore
from app.settings import Settings
from app.targeting.queue import choose_calls
from app.tasks import service as tasks_service
from app.tasks.tables import TaskKind

RISK_WEIGHT = 100.0
NEED_WEIGHT = 15.0
# One call covers a patient for a week: no second call within this many days.
ONE_CALL_PER_DAYS = 7


class Reason:
    """Eligibility reasons as stored on assignments (codes; the UI labels them)."""

    HIGH_RISK = "high_risk"
    CORE20 = "core20"
    INTERPRETER = "interpreter"
    COMMUNICATION_NEED = "communication_need"
    LEARNING_DISABILITY = "learning_disability"
    NO_SMS_CHANNEL = "no_sms_channel"


REASON_LABELS = {
    Reason.HIGH_RISK: "High risk of a missed appointment",
    Reason.CORE20: "Lives in one of the most deprived 20% of areas (Core20)",
    Reason.INTERPRETER: "Needs an interpreter",
    Reason.COMMUNICATION_NEED: "Has a recorded communication need",
    Reason.LEARNING_DISABILITY: "Has a learning disability",
    Reason.NO_SMS_CHANNEL: "Cannot get SMS reminders (no usable mobile or opted out)",
}


@dataclass(frozen=True)
class BuildResult:
    queue_date: date
    window_start: datetime
    window_end: datetime
    newly_eligible: int
    assigned_call: int
    assigned_holdout: int
    calls_created: int
    appointments_added_to_existing_calls: int
    patients_waiting_beyond_capacity: int
    letters_instead_of_calls: int
    capacity: int
    calls_in_queue: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def daily_capacity(settings: Settings) -> int:
    return settings.calls_navigators_on_duty * settings.calls_per_navigator_per_day


def call_window(settings: Settings, queue_date: date) -> tuple[datetime, datetime]:
    """UTC bounds of the appointments a queue date calls about: local days start..end ahead."""
    if settings.calls_window_end_days < settings.calls_window_start_days:
        raise InvalidInputError(
            "NAVIGATOR_CALLS_WINDOW_END_DAYS must not be before NAVIGATOR_CALLS_WINDOW_START_DAYS."
        )
    first = queue_date + timedelta(days=settings.calls_window_start_days)
    last = queue_date + timedelta(days=settings.calls_window_end_days)
    return settings.calendar.days_bounds(first, last + timedelta(days=1))


def is_held_out(settings: Settings, pas_patient_id: str) -> bool:
    """Patient-level randomisation: a keyed hash of the patient id, stable across builds.

    HMAC-SHA256 keyed by the programme seed, read as a uniform number in [0, 1): the same
    patient always lands in the same arm for one programme, and nobody can steer the arm
    without the seed. The trust's patient id (not the database row id) keeps the arm stable
    if the database is ever rebuilt from the same extracts.
    """
    digest = hmac.new(
        settings.calls_programme_seed.encode(), pas_patient_id.encode(), hashlib.sha256
    ).digest()
    uniform = int.from_bytes(digest[:8], "big") / 2**64
    return uniform < settings.calls_holdout_share


def _no_sms_channel() -> ColumnElement[bool]:
    return or_(
        Patient.sms_opt_out,
        Patient.mobile_phone.is_(None),
        Patient.mobile_phone == "",
        Patient.mobile_phone_invalid,
    )


def _eligibility_filter(settings: Settings) -> ColumnElement[bool]:
    rules: list[ColumnElement[bool]] = []
    if settings.calls_rule_high_risk:
        rules.append(RiskScore.band == "high")
    if settings.calls_rule_core20:
        rules.append(Patient.core20.is_(True))
    if settings.calls_rule_communication_need:
        rules.append(or_(Patient.interpreter_needed, Patient.communication_needs != ""))
    if settings.calls_rule_learning_disability:
        rules.append(Patient.learning_disability.is_(True))
    if settings.calls_rule_no_sms_channel:
        rules.append(_no_sms_channel())
    return or_(*rules) if rules else false()


def _reasons(settings: Settings, row: Any) -> list[str]:
    reasons = []
    if settings.calls_rule_high_risk and row.band == "high":
        reasons.append(Reason.HIGH_RISK)
    if settings.calls_rule_core20 and row.core20:
        reasons.append(Reason.CORE20)
    if settings.calls_rule_communication_need:
        if row.interpreter_needed:
            reasons.append(Reason.INTERPRETER)
        if row.communication_needs:
            reasons.append(Reason.COMMUNICATION_NEED)
    if settings.calls_rule_learning_disability and row.learning_disability:
        reasons.append(Reason.LEARNING_DISABILITY)
    if settings.calls_rule_no_sms_channel and (
        row.sms_opt_out or not row.mobile_phone or row.mobile_phone_invalid
    ):
        reasons.append(Reason.NO_SMS_CHANNEL)
    return reasons


def priority_of(risk: float | None, reasons: list[str]) -> float:
    """The documented blend of risk and need (module docstring)."""
    groups = (
        (Reason.CORE20 in reasons)
        + (Reason.INTERPRETER in reasons or Reason.COMMUNICATION_NEED in reasons)
        + (Reason.LEARNING_DISABILITY in reasons)
        + (Reason.NO_SMS_CHANNEL in reasons)
    )
    return round(RISK_WEIGHT * (risk or 0.0) + NEED_WEIGHT * groups, 4)


def no_usable_phone() -> ColumnElement[bool]:
    return and_(
        or_(
            Patient.mobile_phone.is_(None), Patient.mobile_phone == "", Patient.mobile_phone_invalid
        ),
        or_(
            Patient.landline_phone.is_(None),
            Patient.landline_phone == "",
            Patient.landline_phone_invalid,
        ),
    )


def _letters_instead_of_calls(
    session: Session, by_patient: dict[int, list[Any]], *, now: datetime
) -> int:
    """Take the patients without a usable phone out of `by_patient` and open a "send a letter"
    task for each (through the tasks feature's service); how many there were."""
    if not by_patient:
        return 0
    unphoneable = set(
        session.scalars(
            select(Patient.id).where(Patient.id.in_(list(by_patient)), no_usable_phone())
        )
    )
    for patient_id in sorted(unphoneable):
        rows = by_patient.pop(patient_id)
        appointment_ids = sorted(
            session.scalars(
                select(CallAssignment.appointment_id).where(
                    CallAssignment.id.in_([row.id for row in rows])
                )
            )
        )
        first = appointment_ids[0]
        tasks_service.open_task(
            session,
            kind=TaskKind.SEND_LETTER,
            patient_id=patient_id,
            appointment_id=first,
            source="call_queue",
            source_ref=f"{patient_id}:{first}",
            detail="No usable phone number: send a letter about the upcoming appointment "
            "and the help on offer, instead of a call.",
            now=now,
        )
    return len(unphoneable)


def build_queue(
    session: Session, settings: Settings, queue_date: date, *, now: datetime
) -> BuildResult:
    """Assign newly eligible appointments to an arm and queue calls up to the day's capacity."""
    session.flush()  # the build reads with set-based queries: pending changes must be visible
    window_start, window_end = call_window(settings, queue_date)
    in_window = and_(
        Appointment.start_at >= window_start,
        Appointment.start_at < window_end,
        Appointment.attendance_code == NOT_YET_KNOWN,
    )

    # 1. Newly eligible appointments get their arm, reasons and the risk as it is now.
    candidates = session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Patient.pas_patient_id,
            Patient.core20,
            Patient.interpreter_needed,
            Patient.communication_needs,
            Patient.learning_disability,
            Patient.sms_opt_out,
            Patient.mobile_phone,
            Patient.mobile_phone_invalid,
            RiskScore.risk,
            RiskScore.band,
            RiskScore.model_version,
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .outerjoin(RiskScore, RiskScore.appointment_id == Appointment.id)
        .where(
            in_window,
            _eligibility_filter(settings),
            ~exists().where(CallAssignment.appointment_id == Appointment.id),
        )
    ).all()
    arms: dict[str, bool] = {}
    assignment_rows = []
    for row in candidates:
        if row.pas_patient_id not in arms:
            arms[row.pas_patient_id] = is_held_out(settings, row.pas_patient_id)
        reasons = _reasons(settings, row)
        assignment_rows.append(
            {
                "appointment_id": row.id,
                "patient_id": row.patient_id,
                "queue_date": queue_date,
                "arm": Arm.HOLDOUT if arms[row.pas_patient_id] else Arm.CALL,
                "reasons": reasons,
                "risk": row.risk,
                "band": row.band,
                "model_version": row.model_version,
                "priority": priority_of(row.risk, reasons),
                "assigned_at": now,
            }
        )
    if assignment_rows:
        session.execute(insert(CallAssignment), assignment_rows)
    held_out = sum(1 for row in assignment_rows if row["arm"] == Arm.HOLDOUT)

    # 2. Call-arm appointments still booked in the window and not yet covered by a call.
    pending = session.execute(
        select(CallAssignment.id, CallAssignment.patient_id, CallAssignment.priority)
        .join(Appointment, Appointment.id == CallAssignment.appointment_id)
        .where(CallAssignment.arm == Arm.CALL, CallAssignment.call_id.is_(None), in_window)
    ).all()
    by_patient: dict[int, list[Any]] = defaultdict(list)
    for pending_row in pending:
        by_patient[pending_row.patient_id].append(pending_row)

    # One call per patient per week: a call queued in the last week (open or finished) covers
    # the patient's new appointments too; the call lists all their upcoming appointments.
    pending_patients = (
        select(CallAssignment.patient_id)
        .join(Appointment, Appointment.id == CallAssignment.appointment_id)
        .where(CallAssignment.arm == Arm.CALL, CallAssignment.call_id.is_(None), in_window)
    )
    recent_calls = session.execute(
        select(Call.patient_id, func.max(Call.id))
        .where(
            Call.queue_date > queue_date - timedelta(days=ONE_CALL_PER_DAYS),
            Call.queue_date <= queue_date,
            Call.patient_id.in_(pending_patients),
        )
        .group_by(Call.patient_id)
    ).all()
    links: list[dict[str, int]] = []
    added_to_existing = 0
    for patient_id, call_id in recent_calls:
        for row in by_patient.pop(patient_id, []):
            links.append({"id": row.id, "call_id": call_id})
            added_to_existing += 1

    # A patient with no usable phone at all is not queued for a voice call: the team writes
    # to them instead (one "send a letter" task per patient and appointment, whichever day's
    # build finds them first), and they use none of the day's call capacity.
    letters = _letters_instead_of_calls(session, by_patient, now=now)

    # 3. New calls, highest priority first, up to what is left of today's capacity. Open
    # calls carried from earlier days (retries) are today's work too.
    capacity = daily_capacity(settings)
    load = (
        session.scalar(
            select(func.count(Call.id)).where(
                or_(
                    Call.queue_date == queue_date,
                    and_(
                        Call.queue_date < queue_date,
                        Call.status.in_([CallStatus.READY, CallStatus.RETRY]),
                    ),
                )
            )
        )
        or 0
    )
    room = max(0, capacity - load)
    ranked = sorted(
        by_patient.items(), key=lambda item: (-max(r.priority for r in item[1]), item[0])
    )
    # The queue policy (app/targeting/queue.py): today's ranking unless the benefit policy is
    # switched on, then expected benefit with the equity floor and exploration.
    chosen = choose_calls(
        session, settings, ranked, room, queue_date=queue_date, window=(window_start, window_end)
    )
    if chosen:
        created = session.execute(
            insert(Call).returning(Call.id, Call.patient_id),
            [
                {
                    "patient_id": patient_id,
                    "queue_date": queue_date,
                    "priority": max(r.priority for r in rows),
                    "status": CallStatus.READY,
                    "attempts": 0,
                    "documents_shown": [],
                    "created_at": now,
                }
                for patient_id, rows in chosen
            ],
        ).all()
        call_of = {patient_id: call_id for call_id, patient_id in created}
        for patient_id, rows in chosen:
            links.extend({"id": row.id, "call_id": call_of[patient_id]} for row in rows)
    if links:
        session.execute(update(CallAssignment), links)
    session.flush()
    if chosen:
        # The morning build adds the day's queue in one go; fresh statistics keep take-next on
        # its index walk instead of sorting the queue (autovacuum may not have run yet).
        refresh_statistics(session, "calls", "call_assignments")
    calls_in_queue = (
        session.scalar(select(func.count(Call.id)).where(Call.queue_date == queue_date)) or 0
    )
    return BuildResult(
        queue_date=queue_date,
        window_start=window_start,
        window_end=window_end,
        newly_eligible=len(assignment_rows),
        assigned_call=len(assignment_rows) - held_out,
        assigned_holdout=held_out,
        calls_created=len(chosen),
        appointments_added_to_existing_calls=added_to_existing,
        patients_waiting_beyond_capacity=len(ranked) - len(chosen),
        letters_instead_of_calls=letters,
        capacity=capacity,
        calls_in_queue=calls_in_queue,
    )
