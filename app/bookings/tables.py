"""Booking requests: a navigator's rebooking or cancellation, waiting for the PAS.

Navigator never books an appointment itself. A request records what was agreed with the
patient; the booking team makes the change in the PAS; the next import or feed message brings
the PAS's appointment, and reconciliation links it to the request and closes it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class RequestKind(StrEnum):
    REBOOK = "rebook"
    CANCEL = "cancel"


class RequestStatus(StrEnum):
    OPEN = "open"  # waiting for the booking team and the PAS
    CONFIRMED = "confirmed"  # the PAS made the change (matched appointment or cancellation)
    ESCALATED = "escalated"  # unmatched after the configured working days: a booking-team task
    WITHDRAWN = "withdrawn"  # closed by the booking team without a change (reason recorded)


OPEN_STATUSES = (RequestStatus.OPEN, RequestStatus.ESCALATED)


class BookingRequest(Base):
    __tablename__ = "booking_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.OPEN)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    # The appointment the patient wants moved or cancelled; it stays as the PAS says.
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    # Where the request came from: the call (no foreign key, so bookings does not depend on
    # the calls migration order) and the user who recorded it.
    call_id: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What was agreed: a date and time, or the first available slot (None).
    preferred_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_available: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"))
    specialty_code: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text, default="")
    # Reconciliation.
    matched_appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_note: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_booking_requests_status_requested_at", "status", "requested_at"),
        Index("ix_booking_requests_patient_id", "patient_id"),
        Index("ix_booking_requests_appointment_id", "appointment_id"),
    )
