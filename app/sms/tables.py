"""The SMS tables: templates, the outbox of messages, status callbacks and inbound replies.

`sms_messages` is both the outbox (the `state` the dispatcher owns) and the delivery record
(the `delivery_status` Twilio's callbacks move forward). Reminders are unique per appointment
and offset in the database itself, so no code path can send the same reminder twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class MessageKind(StrEnum):
    REMINDER = "reminder"
    CONFIRM_REBOOKED = "confirm_rebooked"  # a navigator moved the appointment
    CONFIRM_SUPPORT = "confirm_support"  # a navigator arranged support (interpreter, travel...)
    CONFIRM_CANCELLED = "confirm_cancelled"  # a navigator cancelled at the patient's request
    REPLY_ACK = "reply_ack"  # the TwiML answer to a parsed reply (never queued in the outbox)
    HELP = "help"


CONFIRMATION_KINDS = frozenset(
    {MessageKind.CONFIRM_REBOOKED, MessageKind.CONFIRM_SUPPORT, MessageKind.CONFIRM_CANCELLED}
)


class OutboxState(StrEnum):
    PENDING = "pending"  # waiting for a dispatcher (possibly until next_attempt_at)
    CLAIMED = "claimed"  # a dispatcher holds it until lease_until and may be sending it
    SUBMITTED = "submitted"  # the provider accepted it and gave a message SID
    FAILED = "failed"  # a permanent error or too many attempts: never sent
    CANCELLED = "cancelled"  # withdrawn before sending (appointment cancelled, moved, past)


class SmsTemplate(Base):
    """One version of the text for a message kind in one language; the highest version wins."""

    __tablename__ = "sms_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The user id of the editor (None for seeded defaults); no foreign key so this table does
    # not depend on the auth migration.
    created_by: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("kind", "language", "version", name="uq_sms_templates_kind_version"),
    )


class SmsMessage(Base):
    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Sent to the provider in the status-callback URL, so a late callback re-attaches the SID
    # to a message whose dispatcher died before recording it.
    idempotency_key: Mapped[str] = mapped_column(String(32), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    # Days before the appointment for reminders; None for confirmations.
    offset_days: Mapped[int | None] = mapped_column(SmallInteger)
    language: Mapped[str] = mapped_column(String(8))
    template_version: Mapped[int | None] = mapped_column(Integer)
    to_number: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    state: Mapped[str] = mapped_column(String(12), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    # Twilio's message status, moved only forward by the dispatcher and the callbacks.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # At most one reminder per appointment per offset, ever (NULL offsets, i.e.
        # confirmations, are not constrained: NULLs are distinct in a unique constraint).
        UniqueConstraint(
            "appointment_id", "kind", "offset_days", name="uq_sms_messages_appointment_offset"
        ),
        Index("ix_sms_messages_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_sms_messages_patient_id", "patient_id"),
        Index("ix_sms_messages_created_at", "created_at"),
    )


class SmsStatusEvent(Base):
    """One status callback, stored once per (message SID, status) however often it arrives."""

    __tablename__ = "sms_status_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("sms_messages.id", ondelete="CASCADE")
    )
    provider_sid: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider_sid", "status", name="uq_sms_status_events_sid_status"),
        Index("ix_sms_status_events_message_id", "message_id"),
    )


class SmsInbound(Base):
    """A message a patient (or anyone) sent us, stored once by its MessageSid."""

    __tablename__ = "sms_inbound"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(34), unique=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    # None when the sender's number matches no patient.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    intent: Mapped[str] = mapped_column(String(16))
    opted_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_sms_inbound_patient_id", "patient_id"),)
