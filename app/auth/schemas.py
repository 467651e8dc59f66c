"""Request and response bodies of the accounts and audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.auth.roles import Role
from app.db.errors import MAX_RECORD_ID
from app.isodate import IsoDate
from app.pagination import MAX_PAGE_SIZE


class SignInIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    last_login: datetime | None


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str
    expires_at: datetime


class MeOut(BaseModel):
    user: UserOut
    csrf_token: str


class AuditEventOut(BaseModel):
    id: int
    occurred_at: datetime
    user_id: int | None
    username: str | None
    action: str = Field(description="The action's code, for example `patient.viewed`.")
    action_in_words: str = Field(
        description='The action in plain words, for example "Opened a patient\'s record".'
    )
    patient_id: int | None
    appointment_id: int | None
    detail: dict[str, Any] | None


class AuditSearchIn(BaseModel):
    """Filters for the audit log sent in a body, so that an NHS number never sits in a web
    address (and so in browser histories and access logs). Days are the trust's local days;
    `to` is included and may not be before `from`."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    user_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)
    nhs_number: str | None = Field(
        default=None,
        max_length=16,
        description="10 digits with a valid check digit (spaces allowed), e.g. 943 476 5919.",
    )
    action: str | None = Field(default=None, max_length=64)
    date_from: IsoDate | None = Field(default=None, alias="from")
    date_to: IsoDate | None = Field(default=None, alias="to")


class AuditPageIn(AuditSearchIn):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=10_000_000)
