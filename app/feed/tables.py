"""The feed inbox: every HL7 message received, stored raw before it is applied.

One row per message. A message with a readable MSH-10 (control id) is stored once under it: a
repeat is answered with the stored acknowledgement and applied no second time. A message that
could not be applied (AE) or parsed (AR) stays here as a dead letter until a manager replays
or dismisses it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class FeedStatus(StrEnum):
    APPLIED = "applied"  # AA: the change is in the database
    ERROR = "error"  # AE: understood but could not be applied (dead letter)
    REJECTED = "rejected"  # AR: could not be parsed (dead letter)
    DISMISSED = "dismissed"  # a manager looked at a dead letter and set it aside


DEAD_LETTER_STATUSES = (FeedStatus.ERROR, FeedStatus.REJECTED)


class FeedMessage(Base):
    __tablename__ = "feed_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # MSH-10; NULL when the message could not be parsed far enough to read it (NULLs are
    # distinct, so unreadable messages never collide).
    control_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    message_type: Mapped[str | None] = mapped_column(String(16))  # "SIU^S12"
    status: Mapped[str] = mapped_column(String(12))
    ack_code: Mapped[str] = mapped_column(String(2))
    # Our own words (never a copy of message content beyond the PAS identifiers).
    error: Mapped[str | None] = mapped_column(Text)
    # The PAS patient id the message is about, for the dead-letter list and ordering.
    patient_key: Mapped[str | None] = mapped_column(String(64))
    appointment_key: Mapped[str | None] = mapped_column(String(64))
    # The message as received (patient data: database only, never logged). A message over
    # the size limit keeps only its first bytes.
    raw: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The user id of the manager who last replayed or dismissed it (no foreign key, as in
    # tasks: this table does not depend on the auth migration).
    handled_by: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_feed_messages_status_id", "status", "id"),)
