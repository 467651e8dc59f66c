"""The real Twilio SDK against a local Twilio-speaking server, checked against Twilio's own
OpenAPI description (vendored here as twilio_api_v2010.json, from twilio/twilio-oai)."""

from __future__ import annotations

import base64
import functools
import json
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

from app.clock import FixedClock
from app.db.session import Database
from app.patients.tables import Patient
from app.settings import Settings
from app.sms.dispatcher import Dispatcher
from app.sms.providers import OutgoingSms, SendError, TwilioSender
from app.sms.tables import SmsMessage
from tests.factories import create_patient
from tests.sms import fake_twilio
from tests.sms.fake_twilio import FakeTwilio, RecordedRequest
from tests.sms.helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    DAYTIME,
    MESSAGING_SERVICE_SID,
    create_message,
)
from tests.sms.helpers import twilio_settings as make_twilio_settings

SPEC = Path(__file__).with_name("twilio_api_v2010.json")
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@functools.cache
def twilio_openapi() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SPEC.read_text(encoding="utf-8")))


def assert_valid_for_twilio(request: RecordedRequest) -> None:
    """The request matches Twilio's description, including the rules it only annotates."""
    twilio_openapi().validate_request(
        MockRequest(
            "https://api.twilio.com",
            request.method.lower(),
            request.path,
            args={k: v[0] for k, v in _query(request.query).items()},
            headers={"Authorization": request.headers.get("Authorization", "")},
            data=request.body or None,
            content_type=request.headers.get("Content-Type", "application/json"),
        )
    )
    expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == expected
    if request.method == "POST":
        form = request.form
        # "To" plus exactly one sender: From or MessagingServiceSid; and a Body.
        assert ("From" in form) != ("MessagingServiceSid" in form)
        assert form.get("Body")
        assert form["StatusCallback"].startswith("https://navigator.test/webhooks/twilio/status?")


def _query(query: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(query)


@pytest.fixture
def upstream(clock: FixedClock) -> Iterator[FakeTwilio]:
    """A local Twilio sharing the test's clock, set to daytime (outside quiet hours)."""
    clock.set(DAYTIME)
    with FakeTwilio(slow_seconds=0.8, clock=clock) as fake:
        yield fake


@pytest.fixture
def twilio_settings(settings: Settings, upstream: FakeTwilio) -> Settings:
    return make_twilio_settings(
        settings, twilio_api_base_url=upstream.base_url, twilio_timeout_seconds=0.3
    )


def outgoing(to: str = "+447700900123", body: str = "Reminder: Tue 1 Dec at 09:30") -> OutgoingSms:
    return OutgoingSms(
        "k" * 32, to, body, "https://navigator.test/webhooks/twilio/status?key=" + "k" * 32
    )


def test_send_with_a_messaging_service_matches_twilios_description(
    twilio_settings: Settings, upstream: FakeTwilio
) -> None:
    result = TwilioSender(twilio_settings).send(outgoing())
    assert result.sid.startswith("SM")
    assert result.status == "queued"
    (request,) = upstream.message_posts()
    assert request.path == MESSAGES_PATH
    assert request.form["MessagingServiceSid"] == MESSAGING_SERVICE_SID
    assert_valid_for_twilio(request)


def test_send_with_a_from_number_matches_twilios_description(
    twilio_settings: Settings, upstream: FakeTwilio
) -> None:
    settings = make_twilio_settings(
        twilio_settings, twilio_messaging_service_sid="", twilio_from_number="+447700900999"
    )
    TwilioSender(settings).send(outgoing(body="Przypomnienie: wizyta się odbędzie"))
    (request,) = upstream.message_posts()
    assert request.form["From"] == "+447700900999"
    assert request.form["Body"] == "Przypomnienie: wizyta się odbędzie"
    assert_valid_for_twilio(request)


def test_the_validator_catches_a_request_twilio_would_refuse() -> None:
    bad = RecordedRequest(
        "POST",
        MESSAGES_PATH,
        "",
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic eA=="},
        b"Body=hello",
    )
    with pytest.raises(Exception, match="To"):
        assert_valid_for_twilio(bad)


def test_reconciliation_lookup_matches_twilios_description(
    twilio_settings: Settings, upstream: FakeTwilio, clock: FixedClock
) -> None:
    sender = TwilioSender(twilio_settings)
    sent = sender.send(outgoing())
    since = clock.now() - timedelta(minutes=5)
    assert sender.find_sent(to="+447700900123", body=outgoing().body, since=since) == sent.sid
    assert sender.find_sent(to="+447700900123", body="another text", since=since) is None
    lookups = [r for r in upstream.requests if r.method == "GET"]
    assert len(lookups) == 2
    for request in lookups:
        assert_valid_for_twilio(request)


@pytest.mark.parametrize(
    ("to", "code", "retryable"),
    [
        (fake_twilio.INVALID_NUMBER, "21211", False),
        (fake_twilio.UNSUBSCRIBED_NUMBER, "21610", False),
        (fake_twilio.RATE_LIMITED_NUMBER, "20429", True),
        (fake_twilio.SERVER_ERROR_NUMBER, "20500", True),
        (fake_twilio.SLOW_NUMBER, "timeout", True),
    ],
)
def test_provider_errors_say_whether_a_retry_can_help(
    twilio_settings: Settings, to: str, code: str, retryable: bool
) -> None:
    with pytest.raises(SendError) as caught:
        TwilioSender(twilio_settings).send(outgoing(to=to))
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_dispatcher_through_twilio_handles_each_error_path(
    database: Database, twilio_settings: Settings, upstream: FakeTwilio, clock: FixedClock
) -> None:
    numbers = [
        "+447700900123",
        fake_twilio.INVALID_NUMBER,
        fake_twilio.UNSUBSCRIBED_NUMBER,
        fake_twilio.RATE_LIMITED_NUMBER,
        fake_twilio.SERVER_ERROR_NUMBER,
        fake_twilio.SLOW_NUMBER,
    ]
    ids: dict[str, tuple[int, int]] = {}
    with database.unit_of_work() as session:
        for number in numbers:
            patient = create_patient(session, mobile_phone=number)
            message = create_message(session, to_number=number)
            message.patient_id = patient.id
            ids[number] = (message.id, patient.id)
    dispatcher = Dispatcher(
        database,
        twilio_settings,
        TwilioSender(twilio_settings),
        clock=clock,
        rng=random.Random(2),
    )
    summary = dispatcher.run_once()
    assert (summary.submitted, summary.failed, summary.retried) == (1, 2, 3)
    outcome: dict[str, Any] = {}
    with database.unit_of_work() as session:
        for number, (message_id, patient_id) in ids.items():
            stored = session.get(SmsMessage, message_id)
            person = session.get(Patient, patient_id)
            assert stored is not None
            assert person is not None
            outcome[number] = (
                stored.state,
                stored.error_code,
                person.has_usable_mobile,
                person.sms_opt_out,
            )
    assert outcome == {
        "+447700900123": ("submitted", None, True, False),
        fake_twilio.INVALID_NUMBER: ("failed", "21211", False, False),
        fake_twilio.UNSUBSCRIBED_NUMBER: ("failed", "21610", True, True),
        fake_twilio.RATE_LIMITED_NUMBER: ("pending", "20429", True, False),
        fake_twilio.SERVER_ERROR_NUMBER: ("pending", "20500", True, False),
        fake_twilio.SLOW_NUMBER: ("pending", "timeout", True, False),
    }
    for request in upstream.message_posts():
        assert_valid_for_twilio(request)


def test_a_timed_out_send_that_twilio_accepted_is_not_sent_again(
    database: Database, twilio_settings: Settings, upstream: FakeTwilio, clock: FixedClock
) -> None:
    """The slow number's answer never arrives, but the fake does create the message."""
    with database.unit_of_work() as session:
        message_id = create_message(session, to_number=fake_twilio.SLOW_NUMBER).id
    dispatcher = Dispatcher(database, twilio_settings, TwilioSender(twilio_settings), clock=clock)
    assert dispatcher.run_once().retried == 1
    deadline = time.monotonic() + 5
    while upstream.sent_keys().total() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the fake finishes creating the message after the client gave up
    clock.advance(hours=1)
    summary = dispatcher.run_once()
    assert (summary.reconciled_found, summary.submitted) == (1, 0)
    assert upstream.sent_keys().total() == 1
    with database.unit_of_work() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        assert message.state == "submitted"
