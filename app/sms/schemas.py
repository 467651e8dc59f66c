"""Pydantic shapes of the SMS JSON API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    appointment_id: int | None
    kind: str
    offset_days: int | None
    language: str
    body: str
    segments: int
    state: str
    attempts: int
    delivery_status: str | None
    error_code: str | None
    provider_sid: str | None
    created_at: datetime
    submitted_at: datetime | None


class SegmentsOut(BaseModel):
    encoding: str
    units: int
    segments: int
    per_segment: int


class TemplateOut(BaseModel):
    kind: str
    language: str
    version: int  # 0 = the built-in default, never edited
    body: str
    segments: SegmentsOut


class TemplateIn(BaseModel):
    body: str = Field(min_length=1, max_length=1600)


class PreviewOut(BaseModel):
    kind: str
    language: str
    preview: str
    segments: SegmentsOut
    problems: list[str]


class KindStats(BaseModel):
    kind: str
    total: int
    submitted: int
    delivered: int
    undelivered: int
    rejected: int
    segments: int
    delivery_rate: float | None


class FailureReason(BaseModel):
    error_code: str
    count: int


class WithdrawnReason(BaseModel):
    reason: str  # cancelled, moved, past, requested
    count: int


class StatsOut(BaseModel):
    since: datetime
    until: datetime
    by_kind: list[KindStats]
    failures_by_reason: list[FailureReason]
    withdrawn_by_reason: list[WithdrawnReason] = []
