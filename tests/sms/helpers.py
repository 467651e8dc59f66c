"""Helpers for the SMS tests: Twilio settings, signed webhook posts, outbox rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.settings import Settings
from app.sms.service import new_idempotency_key
from app.sms.tables import OutboxState, SmsMessage
from tests.clock import CALENDAR, TEST_NOW, TODAY
from tests.factories import create_appointment

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
# Mid-morning in London on the tests' day (`tests.clock.TODAY`): outside quiet hours.
DAYTIME = CALENDAR.at(TODAY, time(11, 0))
# When `create_message` says its message was written: before both the test's clock and
# DAYTIME (in summer 11:00 in London is 10:00 UTC, earlier than a 10:30 UTC clock), inside the
# statistics' window that ends at the clock.
WRITTEN_AT = min(TEST_NOW, DAYTIME) - timedelta(minutes=5)


def local_at(days_ahead: int, hour: int = 10, minute: int = 0) -> datetime:
    """A local wall-clock time `days_ahead` days after the tests' day, in UTC."""
    return CALENDAR.at(TODAY + timedelta(days=days_ahead), time(hour, minute))


def spoken(moment: datetime) -> str:
    """How a text names a moment's local date and time: "Tue 1 Dec 2026 at 09:30"."""
    local = CALENDAR.local(moment)
    return f"{spoken_day(local.date())} at {local:%H:%M}"


def spoken_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def twilio_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sms_provider": "twilio",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_messaging_service_sid": MESSAGING_SERVICE_SID,
        "sms_send_rate_per_second": 0.0,
    }
    values.update(overrides)
    return Settings(**{**settings.model_dump(), **values, "_env_file": None})


def post_signed(
    client: TestClient,
    path: str,
    form: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    public_base_url: str = "https://navigator.test",
    signature: str | None = None,
) -> Response:
    url = public_base_url + path
    signed = (
        signature if signature is not None else RequestValidator(token).compute_signature(url, form)
    )
    return client.post(
        path,
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signed,
        },
    )


def create_message(session: Session, **overrides: Any) -> SmsMessage:
    appointment = overrides.pop("appointment", None) or create_appointment(
        session, start_at=local_at(7, 9, 30)
    )
    values: dict[str, Any] = {
        "idempotency_key": new_idempotency_key(),
        "patient_id": appointment.patient_id,
        "appointment_id": appointment.id,
        "kind": "reminder",
        "offset_days": 7,
        "language": "en",
        "template_version": 0,
        "to_number": "+447700900123",
        "body": f"Reminder for appointment {appointment.id}",
        "segments": 1,
        "state": OutboxState.PENDING,
        "attempts": 0,
        "next_attempt_at": DAYTIME,
        "created_at": WRITTEN_AT,
        "updated_at": WRITTEN_AT,
    }
    values.update(overrides)
    message = SmsMessage(**values)
    session.add(message)
    session.flush()
    return message
