"""The `SmsSender` interface and its implementations: Twilio, a console/file demo, a fake.

The dispatcher only sees `SmsSender`: `send` submits one message (raising `SendError` that
says whether a retry can help) and `find_sent` asks the provider whether a message it may
have submitted before a crash did arrive, which reconciliation uses instead of sending again.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from app.clock import SYSTEM_CLOCK, Clock
from app.errors import NotReadyError
from app.settings import Settings

logger = logging.getLogger("navigator.sms")

# Twilio error codes with a meaning for the service (DOMAIN.md section 6).
INVALID_TO_NUMBER = "21211"
UNSUBSCRIBED = "21610"
TOO_MANY_REQUESTS = "20429"


@dataclass(frozen=True)
class OutgoingSms:
    idempotency_key: str
    to: str
    body: str
    status_callback_url: str


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str  # the provider's status on acceptance ("queued", "accepted"...)


class SendError(Exception):
    """The provider did not accept the message; `retryable` says whether trying again helps."""

    def __init__(self, message: str, *, code: str | None, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class SmsSender(Protocol):
    def send(self, message: OutgoingSms) -> SendResult: ...

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        """The SID of a message with this recipient and text submitted since `since`, if any."""
        ...


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


class ConsoleSender:
    """The demo provider: appends each message to `data_dir/sms-outbox.log` as a JSON line.

    That file is local demo output (it holds numbers and texts); the logger still gets ids only.
    It cannot tell whether a crashed send was written, so reconciliation re-sends (the demo
    may show a duplicate line after a crash; the Twilio provider looks the message up).
    """

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()

    def send(self, message: OutgoingSms) -> SendResult:
        sid = new_sid()
        line = {
            "sid": sid,
            "key": message.idempotency_key,
            "to": message.to,
            "body": message.body,
            "at": self.clock.now().isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        return SendResult(sid=sid, status="sent")

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        return None


@dataclass
class RecordedSms:
    sid: str
    message: OutgoingSms
    at: datetime


@dataclass
class FakeSender:
    """A recording fake for tests: remembers what was sent, fails on request by number."""

    sent: list[RecordedSms] = field(default_factory=list)
    failures: dict[str, list[SendError]] = field(default_factory=dict)
    clock: Clock = field(default=SYSTEM_CLOCK)

    def fail_next(self, to: str, *errors: SendError) -> None:
        self.failures.setdefault(to, []).extend(errors)

    def send(self, message: OutgoingSms) -> SendResult:
        queued = self.failures.get(message.to)
        if queued:
            raise queued.pop(0)
        sid = new_sid()
        self.sent.append(RecordedSms(sid, message, self.clock.now()))
        return SendResult(sid=sid, status="queued")

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        for record in self.sent:
            if record.message.to == to and record.message.body == body and record.at >= since:
                return record.sid
        return None


def _twilio_http_client(base_url: str, timeout: float) -> Any:
    from twilio.http.http_client import TwilioHttpClient

    default_base = "https://api.twilio.com"

    class BaseUrlHttpClient(TwilioHttpClient):
        """Sends the SDK's requests to `twilio_api_base_url` (a gateway or a local server)."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if url.startswith(default_base):
                url = base_url.rstrip("/") + url[len(default_base) :]
            return super().request(method, url, *args, **kwargs)

    return BaseUrlHttpClient(timeout=timeout)


class TwilioSender:
    """Twilio through the official SDK, honouring `twilio_api_base_url`."""

    def __init__(self, settings: Settings) -> None:
        from twilio.rest import Client

        if not settings.twilio_account_sid or not settings.twilio_auth_token.get_secret_value():
            raise NotReadyError("Twilio needs NAVIGATOR_TWILIO_ACCOUNT_SID and _AUTH_TOKEN.")
        if not settings.twilio_messaging_service_sid and not settings.twilio_from_number:
            raise NotReadyError(
                "Twilio needs NAVIGATOR_TWILIO_MESSAGING_SERVICE_SID or "
                "NAVIGATOR_TWILIO_FROM_NUMBER."
            )
        self.settings = settings
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=_twilio_http_client(
                settings.twilio_api_base_url, settings.twilio_timeout_seconds
            ),
        )

    def send(self, message: OutgoingSms) -> SendResult:
        import requests
        from twilio.base.exceptions import TwilioRestException

        sender: dict[str, str] = (
            {"messaging_service_sid": self.settings.twilio_messaging_service_sid}
            if self.settings.twilio_messaging_service_sid
            else {"from_": self.settings.twilio_from_number}
        )
        try:
            created = self.client.messages.create(
                to=message.to,
                body=message.body,
                status_callback=message.status_callback_url,
                **sender,
            )
        except TwilioRestException as error:
            code = str(error.code) if error.code is not None else None
            retryable = error.status == 429 or error.status >= 500 or code == TOO_MANY_REQUESTS
            raise SendError(
                f"Twilio refused the message (HTTP {error.status}, code {code})",
                code=code or str(error.status),
                retryable=retryable,
            ) from None
        except (requests.Timeout, requests.ConnectionError) as error:
            raise SendError(
                f"Twilio unreachable: {type(error).__name__}", code="timeout", retryable=True
            ) from None
        return SendResult(sid=str(created.sid), status=str(created.status or "queued"))

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        # Twilio filters by sent date (a whole day); the exact text and number pick the one.
        for record in self.client.messages.list(to=to, date_sent_after=since, limit=100):
            if record.body == body:
                return str(record.sid)
        return None


# Providers that never hear back about delivery: their "delivered" is unknown, not zero.
UNTRACKED_PROVIDERS = frozenset({"console"})


def delivery_tracked(settings: Settings) -> bool:
    """Whether the configured provider reports deliveries (the pages say "not tracked")."""
    return settings.sms_provider not in UNTRACKED_PROVIDERS


def build_sender(settings: Settings, clock: Clock) -> SmsSender:
    """The provider the settings choose; `clock` stamps what the demo and fake senders keep."""
    if settings.sms_provider == "twilio":
        return TwilioSender(settings)
    if settings.sms_provider == "fake":
        return FakeSender(clock=clock)
    return ConsoleSender(settings.data_dir / "sms-outbox.log", clock)
