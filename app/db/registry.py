"""Imports every feature's tables so `Base.metadata` is complete (tests, metadata checks)."""

from app.analytics import tables as analytics_tables
from app.appointments import tables as appointment_tables
from app.auth import tables as auth_tables
from app.bookings import tables as booking_tables
from app.calls import tables as call_tables
from app.db.base import Base
from app.feed import tables as feed_tables
from app.jobs import tables as job_tables
from app.patients import tables as patient_tables
from app.risk import tables as risk_tables
from app.sms import tables as sms_tables
from app.targeting import tables as targeting_tables
from app.tasks import tables as task_tables

metadata = Base.metadata

__all__ = [
    "analytics_tables",
    "appointment_tables",
    "auth_tables",
    "booking_tables",
    "call_tables",
    "feed_tables",
    "job_tables",
    "metadata",
    "patient_tables",
    "risk_tables",
    "sms_tables",
    "targeting_tables",
    "task_tables",
]
