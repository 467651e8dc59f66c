"""Appointment API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ClinicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    site: str | None
    specialty_code: str | None
    sensitive: bool


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pas_appointment_id: str
    patient_id: int
    clinic: ClinicOut
    booked_at: datetime
    start_at: datetime
    first_attendance: bool | None
    attendance_code: str
    replaces_appointment_id: int | None


class AppointmentChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    changed_at: datetime
    source: str
    field: str
    old_value: str | None
    new_value: str | None


class AppointmentDetail(AppointmentOut):
    changes: list[AppointmentChangeOut]
