"""Patient API shapes."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.isodate import IsoDateTime


class PatientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pas_patient_id: str
    nhs_number: str | None
    family_name: str | None
    given_name: str | None
    birth_date: date
    sex: str
    ethnic_category: str
    lsoa_code: str | None
    imd_decile: int | None
    imd_release: str | None
    core20: bool
    mobile_phone: str | None
    landline_phone: str | None
    preferred_language: str
    interpreter_needed: bool
    communication_needs: list[str]
    learning_disability: bool
    sms_opt_out: bool

    @field_validator("communication_needs", mode="before")
    @classmethod
    def _split_needs(cls, value: object) -> object:
        if isinstance(value, str):
            return [need for need in value.split(";") if need]
        return value


class PatientSummary(BaseModel):
    """What a list needs: no contact details."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    pas_patient_id: str
    birth_date: date
    sex: str
    imd_decile: int | None
    core20: bool


class PatientMatch(BaseModel):
    """A search result: enough to tell two people apart on the phone, no contact details."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    given_name: str | None
    family_name: str | None
    birth_date: date
    nhs_number: str | None


class SearchOut(BaseModel):
    items: list[PatientMatch]
    more: bool


class OpenIn(BaseModel):
    reason: str


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    patient_id: int
    reason: str
    expires_at: datetime


class LoggedCallIn(BaseModel):
    direction: str
    result: str = ""
    occurred_at: IsoDateTime | None = None
    note: str | None = Field(default=None, max_length=10_000)


class LoggedCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    direction: str
    result: str
    occurred_at: datetime
    note: str | None
    recorded_by: int


class PhoneCorrectionIn(BaseModel):
    phone: str
    number: str = Field(max_length=40)


class PhoneCorrectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    phone: str
    old_value: str | None
    old_invalid: bool
    new_value: str
    changed_at: datetime
