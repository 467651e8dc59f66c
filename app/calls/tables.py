"""The calls feature's tables: hold-out assignments, calls, attempts, outcomes, documents.

User ids (`*_by`) are plain integers without a foreign key, as in `navigator_tasks`: accounts
live in `app.auth` and this feature's tables must not depend on that migration.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class Arm(StrEnum):
    CALL = "call"
    HOLDOUT = "holdout"


class CallStatus(StrEnum):
    READY = "ready"  # queued, nobody has tried yet
    IN_PROGRESS = "in_progress"  # taken by a navigator (leased until lease_expires_at)
    RETRY = "retry"  # not answered; due again at next_attempt_at
    COMPLETED = "completed"  # the patient was reached and outcomes recorded
    UNREACHABLE = "unreachable"  # attempts exhausted or no usable number


OPEN_STATUSES = (CallStatus.READY, CallStatus.IN_PROGRESS, CallStatus.RETRY)
FINISHED_STATUSES = (CallStatus.COMPLETED, CallStatus.UNREACHABLE)


class AttemptResult(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    # Someone other than the patient answered: nothing was said about why; tried again later
    # (the number is not wrong).
    SOMEONE_ELSE = "someone_else"
    # The patient answered and asked to be called back at a time of their choosing.
    CALL_BACK = "call_back"
    # A text, email or letter was sent (a BSL user, a patient with no usable phone).
    SENT = "sent"


class Identity(StrEnum):
    """The identity check of an answered attempt (name and date of birth, as the SOP says)."""

    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class OutcomeKind(StrEnum):
    CONFIRMED = "confirmed"
    REBOOKED = "rebooked"
    CANCELLED = "cancelled"
    TRAVEL_COSTS = "travel_costs"
    PARKING = "parking"
    TRANSPORT = "transport"
    LONGER_APPOINTMENT = "longer_appointment"
    BSL_INTERPRETER = "bsl_interpreter"
    SPOKEN_INTERPRETER = "spoken_interpreter"
    OTHER_ADJUSTMENT = "other_adjustment"
    DECLINED_HELP = "declined_help"
    UNREACHABLE = "unreachable"


class CallAssignment(Base):
    """The trial record: one row per eligible appointment, its arm and why it was eligible.

    Written at eligibility regardless of capacity (intention to treat); `call_id` is set once
    a call covers the appointment.
    """

    __tablename__ = "call_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), unique=True
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    queue_date: Mapped[date] = mapped_column(Date)
    arm: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    risk: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(8))
    model_version: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[float] = mapped_column(Float)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_call_assignments_patient_id", "patient_id"),
        Index("ix_call_assignments_call_id", "call_id"),
        Index("ix_call_assignments_queue_date_arm", "queue_date", "arm"),
    )


class Call(Base):
    """One navigator call to one patient, covering all their eligible upcoming appointments."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    queue_date: Mapped[date] = mapped_column(Date)
    priority: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.READY)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_by: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The script and SOP versions (call_documents ids) shown to the navigator for this call.
    documents_shown: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_calls_status_queue_date", "status", "queue_date"),
        Index("ix_calls_patient_id_queue_date", "patient_id", "queue_date"),
    )


# Take-next walks one status in this order and stops at the first row it can lock.
Index("ix_calls_status_priority", Call.status, Call.priority.desc(), Call.id)


class CallAttempt(Base):
    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(16))
    # How the patient was tried, never the number itself: "mobile" or "landline" (voice), or
    # "video_relay", "sms" or "email" for a BSL user, who cannot take a voice call, or
    # "letter" for a patient without a usable phone.
    channel: Mapped[str] = mapped_column(String(16))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempted_by: Mapped[int] = mapped_column(Integer)
    # For an answered attempt: whether the identity check passed (None until checked).
    identity: Mapped[str | None] = mapped_column(String(16))
    # For "call me back at 3pm": the moment the patient asked for.
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("call_id", "number", name="uq_call_attempts_call_id"),)


class CallOutcome(Base):
    """A structured outcome of a call; several per call (rebooked + travel support)."""

    __tablename__ = "call_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(24))
    # Kind-specific fields: language, text, new_start_at, new_appointment_id, slot_freed.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_by: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_call_outcomes_call_id", "call_id"),
        Index("ix_call_outcomes_kind", "kind"),
    )


class CallNote(Base):
    """A navigator's free-text note on a call. Patient data: kept in the database only, never
    written to a log."""

    __tablename__ = "call_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    written_by: Mapped[int] = mapped_column(Integer)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_call_notes_call_id", "call_id"),)


class OutcomeChange(StrEnum):
    UNDONE = "undone"


class CallOutcomeChange(Base):
    """The old version of an outcome that was corrected after its call was completed.

    The live `call_outcomes` row is removed (so every report counts only what stands); what it
    said, who recorded it and who changed it stay here.
    """

    __tablename__ = "call_outcome_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    outcome_id: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    old_kind: Mapped[str] = mapped_column(String(24))
    old_appointment_id: Mapped[int | None] = mapped_column(Integer)
    old_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    old_recorded_by: Mapped[int] = mapped_column(Integer)
    old_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_call_outcome_changes_call_id", "call_id"),)


class CallDocument(Base):
    """One version of a call script section or SOP (Markdown). Old versions are kept."""

    __tablename__ = "call_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(48))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("slug", "version", name="uq_call_documents_slug"),)
