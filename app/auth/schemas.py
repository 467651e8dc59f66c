"""Request and response bodies of the accounts and audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.auth.roles import Role


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
    action: str
    patient_id: int | None
    appointment_id: int | None
    detail: dict[str, Any] | None
