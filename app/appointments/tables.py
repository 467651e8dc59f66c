"""Clinics, appointments and the appointment change history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, UTCDateTime, utcnow
from app.patients.tables import Patient


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    site: Mapped[str | None] = mapped_column(String(120))
    specialty_code: Mapped[str | None] = mapped_column(String(3))
    # A sensitive clinic's reminders carry no clinic or specialty detail (e.g. sexual health).
    sensitive: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pas_appointment_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_attendance: Mapped[bool | None] = mapped_column(Boolean)
    # ATTENDED OR DID NOT ATTEND code; '0' until the outcome is known.
    attendance_code: Mapped[str] = mapped_column(String(1), server_default="0")
    # When this service first learnt the outcome (features must not see it before then).
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when a navigator rebooks: the new appointment points at the one it replaces.
    replaces_appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL")
    )
    source_hash: Mapped[str] = mapped_column(String(32), server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship(lazy="raise")
    clinic: Mapped[Clinic] = relationship(lazy="raise")

    __table_args__ = (
        Index("ix_appointments_start_at", "start_at"),
        Index("ix_appointments_patient_id_start_at", "patient_id", "start_at"),
        Index("ix_appointments_clinic_id_start_at", "clinic_id", "start_at"),
    )


class AppointmentChange(Base):
    """One changed field of an appointment: what it was, what it became, who changed it."""

    __tablename__ = "appointment_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_appointment_changes_appointment_id", "appointment_id"),)


class AppointmentContact(Base):
    """A proactive contact about an appointment: a navigator call or an SMS reminder.

    Written by the calls and SMS features; read by risk retraining (contacted appointments are
    a different population) and by analytics (reach). `reached` means a person was spoken to
    (call) or the message was delivered (SMS).
    """

    __tablename__ = "appointment_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))  # "call" or "sms"
    contacted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reached: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The feature's own record (call id, message id) so a contact is written once.
    source_ref: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_appointment_contacts_appointment_id", "appointment_id"),
        UniqueConstraint(
            "channel", "source_ref", name="uq_appointment_contacts_channel_source_ref"
        ),
    )
