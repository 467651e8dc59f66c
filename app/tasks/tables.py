"""The navigator task table shared by the SMS and calls features."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class TaskKind(StrEnum):
    CANCEL_REQUEST = "cancel_request"  # the patient asked to cancel an appointment
    REBOOK_REQUEST = "rebook_request"  # the patient asked for another date or time
    READ_REPLY = "read_reply"  # a reply nobody could parse: a person must read it
    CONFIRMED_NOTE = "confirmed_note"  # the patient confirmed by SMS (a note, born done)
    DATA_QUALITY = "data_quality"  # contact details found wrong (invalid number, wrong person)
    BOOKING_OVERDUE = "booking_overdue"  # a rebook/cancel request the PAS has not honoured
    SEND_LETTER = "send_letter"  # no usable phone: write to the patient about the appointment


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class NavigatorTask(Base):
    __tablename__ = "navigator_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(8), default=TaskStatus.OPEN)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    # Where the task came from ("sms", "call", "import") and that feature's own id for it (a
    # message SID, a call id), so a redelivered webhook never makes a second task.
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(64))
    # What the navigator needs to read (the reply text is patient data: database only).
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The user id of whoever completed it (accounts live in app.auth; no foreign key here so
    # the task table does not depend on the auth migration).
    completed_by: Mapped[int | None] = mapped_column(Integer)
    # The call the task came from, when one did (a wrong number, a letter instead of a call);
    # a plain id like the user ids, so this table does not depend on the calls migration.
    call_id: Mapped[int | None] = mapped_column(Integer)
    # What the navigator wrote when marking it done (patient data: database only, never logged).
    done_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("source", "source_ref", "kind", name="uq_navigator_tasks_source_ref"),
        Index("ix_navigator_tasks_status_created_at", "status", "created_at"),
        Index("ix_navigator_tasks_patient_id", "patient_id"),
    )
