"""The patients table."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pas_patient_id: Mapped[str] = mapped_column(String(64), unique=True)
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    family_name: Mapped[str | None] = mapped_column(String(120))
    given_name: Mapped[str | None] = mapped_column(String(120))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    ethnic_category: Mapped[str] = mapped_column(String(2), server_default="99")
    postcode: Mapped[str | None] = mapped_column(String(10))
    lsoa_code: Mapped[str | None] = mapped_column(String(9))
    # Deprivation looked up from the LSOA at import; the release is stored with it.
    imd_decile: Mapped[int | None] = mapped_column(SmallInteger)
    imd_rank: Mapped[int | None] = mapped_column(Integer)
    imd_release: Mapped[str | None] = mapped_column(String(16))
    core20: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Phones normalised to E.164; a value given but not a valid UK number is kept out and
    # flagged instead, so a typo never blocks an import but is visible to data quality.
    mobile_phone: Mapped[str | None] = mapped_column(String(16))
    landline_phone: Mapped[str | None] = mapped_column(String(16))
    mobile_phone_invalid: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    landline_phone_invalid: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    preferred_language: Mapped[str] = mapped_column(String(8), server_default="en")
    interpreter_needed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Accessible Information Standard needs, sorted and ';'-joined ("bsl;large_print").
    communication_needs: Mapped[str] = mapped_column(String(120), server_default="")
    learning_disability: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Digest of the imported fields: an unchanged re-import is recognised without a diff.
    source_hash: Mapped[str] = mapped_column(String(32), server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_patients_imd_decile", "imd_decile"),)

    @property
    def communication_need_list(self) -> list[str]:
        return [need for need in self.communication_needs.split(";") if need]

    @property
    def has_usable_mobile(self) -> bool:
        return bool(self.mobile_phone) and not self.mobile_phone_invalid


class PatientAccessGrant(Base):
    """A navigator's time-limited sight of one patient, found through an audited search.

    Written when a navigator picks a patient from a search with a recorded reason (the
    patient rang in, a call-back, correcting details); the patient is then in that
    navigator's access scope (`app.patients.repository.visible_to`) until `expires_at`.
    The user id is a plain integer, as in the calls tables: accounts live in `app.auth`.
    """

    __tablename__ = "patient_access_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_patient_access_grants_user_id_expires_at", "user_id", "expires_at"),
    )


class PatientMerge(Base):
    """A PAS merge (HL7 ADT^A40): the merged-away record's identifiers, kept so that nothing
    about it is lost and a later message under its old id still finds the surviving patient."""

    __tablename__ = "patient_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    surviving_patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    merged_pas_patient_id: Mapped[str] = mapped_column(String(64), unique=True)
    merged_nhs_number: Mapped[str | None] = mapped_column(String(10))
    # How many rows of each kind moved to the surviving patient, e.g. {"appointments": 3}.
    moved: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_patient_merges_surviving_patient_id", "surviving_patient_id"),)


class ContactDirection(StrEnum):
    INBOUND = "inbound"  # the patient rang the navigators
    OUTSIDE_APP = "outside_app"  # a navigator called from a phone outside Navigator


class PatientContact(Base):
    """A call with a patient that no queued call records: the patient rang in, or a navigator
    rang them from outside the app. The patient's history shows it beside the queued calls.
    The note is patient data: database only, never logged."""

    __tablename__ = "patient_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    # The attempt's result, in the calls feature's words ("answered", "no_answer", ...).
    result: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_patient_contacts_patient_id_occurred_at", "patient_id", "occurred_at"),
    )


class PatientPhoneChange(Base):
    """A phone number a navigator corrected: the old value (and whether it was flagged wrong)
    kept beside the new one, who changed it and when."""

    __tablename__ = "patient_phone_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(8))  # "mobile" or "landline"
    old_value: Mapped[str | None] = mapped_column(String(16))
    old_invalid: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    new_value: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_patient_phone_changes_patient_id", "patient_id"),)
