"""The patients table."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, SmallInteger, String, text
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
