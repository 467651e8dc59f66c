"""Patient API shapes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, field_validator


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
