"""Twilio webhooks: signatures (failing closed), status callbacks, inbound replies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from app.appointments.tables import AppointmentContact
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.patients.tables import Patient
from app.settings import Settings
from app.sms.tables import SmsInbound, SmsMessage, SmsStatusEvent
from app.tasks.tables import NavigatorTask
from tests.factories import create_appointment, create_patient
from tests.sms.helpers import create_message, local_at, post_signed, twilio_settings

STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"


@pytest.fixture
def client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    app = create_app(twilio_settings(settings), database, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


def count(database: Database, table: type) -> int:
    with database.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


# --- signatures ------------------------------------------------------------------------------


def test_twilios_documented_signature_example_validates() -> None:
    # From Twilio's "Webhooks security" guide: token 12345, this URL and these parameters.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    validator = RequestValidator("12345")
    assert validator.validate(url, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not validator.validate(url, {**params, "Digits": "1235"}, "GvWf1cFY/Q7PnoempGyD5oXAezc=")


def status_form(sid: str = "SM" + "a" * 32, status: str = "delivered") -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}


def test_a_correctly_signed_callback_is_accepted(client: TestClient) -> None:
    assert post_signed(client, STATUS, status_form()).status_code == 204


def test_a_tampered_body_is_refused(client: TestClient, database: Database) -> None:
    form = status_form()
    signature = RequestValidator("test-auth-token-0123456789abcdef").compute_signature(
        "https://navigator.test" + STATUS, form
    )
    response = post_signed(client, STATUS, {**form, "MessageStatus": "failed"}, signature=signature)
    assert response.status_code == 403
    assert count(database, SmsStatusEvent) == 0


def test_a_signature_for_another_url_is_refused(client: TestClient) -> None:
    # Signed for the host the request reached, not the configured public URL: refused.
    response = post_signed(client, STATUS, status_form(), public_base_url="http://testserver")
    assert response.status_code == 403


def test_a_missing_signature_is_refused(client: TestClient) -> None:
    response = client.post(STATUS, data=status_form())
    assert response.status_code == 403


def test_without_an_auth_token_every_webhook_is_refused(
    settings: Settings, database: Database
) -> None:
    no_token = twilio_settings(settings, twilio_auth_token="")
    with TestClient(create_app(no_token, database)) as client:
        response = post_signed(client, STATUS, status_form(), token="")
        assert response.status_code == 403
        assert post_signed(client, INBOUND, {"MessageSid": "SM1", "Body": "1"}).status_code == 403


# --- status callbacks ------------------------------------------------------------------------


def submitted_message(session: Session, sid: str) -> SmsMessage:
    return create_message(session, state="submitted", provider_sid=sid, delivery_status="queued")


def test_status_only_moves_forward_and_duplicates_are_stored_once(
    client: TestClient, database: Database
) -> None:
    sid = "SM" + "b" * 32
    with database.unit_of_work() as session:
        message_id = submitted_message(session, sid).id
    for status in ["sent", "delivered", "sent", "delivered", "sending", "undelivered"]:
        assert post_signed(client, STATUS, status_form(sid, status)).status_code == 204
    with database.unit_of_work() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        assert message.delivery_status == "delivered"
        events = session.scalars(select(SmsStatusEvent.status).order_by(SmsStatusEvent.id)).all()
        assert events == ["sent", "delivered", "sending", "undelivered"]


def test_delivery_writes_one_contact_for_the_appointment(
    client: TestClient, database: Database
) -> None:
    sid = "SM" + "c" * 32
    with database.unit_of_work() as session:
        appointment_id = submitted_message(session, sid).appointment_id
    for _ in range(3):
        post_signed(client, STATUS, status_form(sid, "delivered"))
    with database.unit_of_work() as session:
        contacts = session.scalars(select(AppointmentContact)).all()
        assert [(c.appointment_id, c.channel, c.reached) for c in contacts] == [
            (appointment_id, "sms", True)
        ]


def test_undelivered_with_an_error_code_is_kept_for_the_failure_report(
    client: TestClient, database: Database
) -> None:
    sid = "SM" + "d" * 32
    with database.unit_of_work() as session:
        message_id = submitted_message(session, sid).id
    post_signed(client, STATUS, {**status_form(sid, "undelivered"), "ErrorCode": "30003"})
    with database.unit_of_work() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        assert (message.delivery_status, message.error_code) == ("undelivered", "30003")
    assert count(database, AppointmentContact) == 0


def test_a_late_callback_reattaches_the_sid_through_the_key_in_its_url(
    client: TestClient, database: Database
) -> None:
    with database.unit_of_work() as session:
        message = create_message(session, state="claimed")
        key, message_id = message.idempotency_key, message.id
    sid = "SM" + "e" * 32
    response = post_signed(client, f"{STATUS}?key={key}", status_form(sid, "sent"))
    assert response.status_code == 204
    with database.unit_of_work() as session:
        stored = session.get(SmsMessage, message_id)
        assert stored is not None
        assert (stored.state, stored.provider_sid, stored.delivery_status) == (
            "submitted",
            sid,
            "sent",
        )


# --- inbound replies -------------------------------------------------------------------------


def inbound(client: TestClient, body: str, sid: str, sender: str = "+447700900555") -> str:
    form = {"MessageSid": sid, "From": sender, "To": "+447700900999", "Body": body}
    response = post_signed(client, INBOUND, form)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return response.text


@pytest.mark.parametrize(
    ("body", "task_kind", "task_status"),
    [
        ("1", "confirmed_note", "done"),
        (" Confirm! ", "confirmed_note", "done"),
        ("2", "cancel_request", "open"),
        ("can't come, sorry", "cancel_request", "open"),
        ("3.", "rebook_request", "open"),
        ("REARRANGE please", "rebook_request", "open"),
        ("Who is this?", "read_reply", "open"),
    ],
)
def test_replies_create_the_right_task_once(
    client: TestClient, database: Database, body: str, task_kind: str, task_status: str
) -> None:
    with database.unit_of_work() as session:
        patient = create_patient(session, mobile_phone="+447700900555")
        appointment = create_appointment(session, patient=patient, start_at=local_at(7, 9, 30))
        create_message(session, appointment=appointment)
        ids = (patient.id, appointment.id)
    sid = "SM" + "f" * 32
    first = inbound(client, body, sid)
    again = inbound(client, body, sid)  # Twilio redelivers
    assert first == again
    with database.unit_of_work() as session:
        tasks = session.scalars(select(NavigatorTask)).all()
        assert [
            (t.kind, t.status, t.patient_id, t.appointment_id, t.source_ref) for t in tasks
        ] == [(task_kind, task_status, *ids, sid)]
    if task_kind == "read_reply":
        assert first.endswith("<Response />")
    else:
        assert "<Message>Thank you" in first


def test_the_answer_to_a_reply_is_in_the_patients_language(
    client: TestClient, database: Database
) -> None:
    with database.unit_of_work() as session:
        create_patient(session, mobile_phone="+447700900555", preferred_language="pl")
    assert "<Message>Dziękujemy" in inbound(client, "1", "SM" + "5" * 32)


@pytest.mark.parametrize("body", ["STOP", "stop", "Cancel", "UNSUBSCRIBE", "end.", "optout"])
def test_stop_keywords_record_an_opt_out_and_start_records_an_opt_in(
    client: TestClient, database: Database, body: str
) -> None:
    with database.unit_of_work() as session:
        patient_id = create_patient(session, mobile_phone="+447700900555").id
    assert inbound(client, body, "SM" + "1" * 32).endswith("<Response />")
    with database.unit_of_work() as session:
        assert session.get(Patient, patient_id).sms_opt_out  # type: ignore[union-attr]
        assert session.scalars(select(NavigatorTask)).all() == []
    inbound(client, "Start", "SM" + "2" * 32)
    with database.unit_of_work() as session:
        assert not session.get(Patient, patient_id).sms_opt_out  # type: ignore[union-attr]


def test_help_is_recorded_without_a_task_or_a_reply(client: TestClient, database: Database) -> None:
    with database.unit_of_work() as session:
        create_patient(session, mobile_phone="+447700900555")
    assert inbound(client, "HELP", "SM" + "3" * 32).endswith("<Response />")
    assert count(database, SmsInbound) == 1
    assert count(database, NavigatorTask) == 0


def test_unknown_senders_are_recorded_without_a_patient(
    client: TestClient, database: Database
) -> None:
    answer = inbound(client, "2", "SM" + "4" * 32, sender="+447700900777")
    assert answer.endswith("<Response />")  # nobody will follow up, so promise nothing
    with database.unit_of_work() as session:
        (reply,) = session.scalars(select(SmsInbound)).all()
        assert (reply.patient_id, reply.intent) == (None, "cancel")
    assert count(database, NavigatorTask) == 0
