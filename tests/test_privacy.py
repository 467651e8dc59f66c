"""No patient-identifiable data in any log line, with every logger at DEBUG.

The main flows run with the production logging setup (JSON lines, request ids) and a capture
of everything the root logger sees: import of a synthetic trust, the read APIs and pages a
navigator and a manager use, sign-in failures, and the flows of the calls and SMS features
when they are installed. Then no name, NHS number, phone number or postcode of any patient
may appear in any line. The pages navigators, managers and analysts read (queue, call screen,
history, analytics with every CSV and the board pack, the model card) are part of the flows.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.clock import FixedClock
from app.db.session import Database
from app.imports.service import import_appointments, import_patients
from app.logging_setup import JsonFormatter, RequestIdFilter, configure_logging
from app.main import create_app
from app.patients.tables import Patient
from app.settings import Settings
from app.synth.service import write_trust
from tests.auth.helpers import create_user, sign_in
from tests.sms.helpers import AUTH_TOKEN, post_signed


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("DEBUG", json_lines=True)
    capture = Capture()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def identifiers(session: Session) -> set[str]:
    """Every identifying value of every patient, in the forms a log could carry."""
    values: set[str] = set()
    for patient in session.scalars(select(Patient)):
        for value in (
            patient.family_name,
            patient.given_name,
            patient.nhs_number,
            patient.postcode,
            patient.mobile_phone,
            patient.landline_phone,
        ):
            if value:
                values.add(value)
                values.add(value.replace(" ", ""))
        for phone in (patient.mobile_phone, patient.landline_phone):
            if phone and phone.startswith("+44"):
                values.add("0" + phone[3:])  # national format
    from app.sms.tables import SmsInbound, SmsMessage

    # Message bodies (reminders name the clinic and time; replies are free text).
    values.update(session.scalars(select(SmsMessage.body)))
    values.update(session.scalars(select(SmsInbound.body)))
    return {value for value in values if len(value) >= 3}


def leaks(lines: list[str], values: set[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for value in values:
        pattern = re.compile(rf"(?<![\w]){re.escape(value)}(?![\w])")
        found.extend((value, line) for line in lines if pattern.search(line))
    return found


def run_main_flows(database: Database, settings: Settings, session: Session, tmp: Path) -> None:
    today = datetime.now(UTC).date()
    write_trust(tmp, patients=80, weeks_history=6, weeks_ahead=2, seed=7, today=today)
    import_patients(database, tmp / "patients.csv", now=datetime.now(UTC))
    import_appointments(database, tmp / "appointments.csv", now=datetime.now(UTC))

    create_user(session, role=Role.ADMIN, username="privacy-admin")
    session.commit()
    patient = session.scalars(select(Patient).order_by(Patient.id)).first()
    assert patient is not None
    session.commit()  # end the read (SQLite's write lock) before the app serves requests
    with TestClient(create_app(settings, database)) as client:
        # A failed sign-in with identifying text as the username must not echo it to the log.
        client.post(
            "/api/auth/session",
            json={"username": patient.family_name or "x", "password": "wrong password"},
        )
        sign_in(client, "privacy-admin")
        assert client.get("/api/patients").status_code == 200
        assert client.get(f"/api/patients/{patient.id}").status_code == 200
        appointments = client.get("/api/appointments", params={"limit": 5}).json()["items"]
        for appointment in appointments:
            client.get(f"/api/appointments/{appointment['id']}")
        client.get("/audit")
        client.get("/admin/users")
        client.get(f"/no-such-page/{patient.nhs_number}")
        call_id = run_call_and_sms_flows(database, settings, client, today)
        run_page_and_manager_views(client, patient.id, call_id)


def _slugs(node: object) -> set[str]:
    """Every table slug in the dashboard's JSON."""
    if isinstance(node, dict):
        found = {node["slug"]} if isinstance(node.get("slug"), str) else set()
        for value in node.values():
            found |= _slugs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_slugs(value) for value in node)) if node else set()
    return set()


def run_page_and_manager_views(client: TestClient, patient_id: int, call_id: int | None) -> None:
    """The navigators' pages, and what a manager and an analyst read: analytics (pages, API,
    every CSV and the board pack) and the model card."""
    for path in ("/queue", "/history", f"/patients/{patient_id}/history", "/manage/queues"):
        assert client.get(path).status_code == 200, path
    if call_id is not None:
        assert client.get(f"/calls/{call_id}").status_code == 200
    for path in ("/analytics", "/analytics/board-pack", "/model"):
        assert client.get(path).status_code == 200, path
    board = client.get("/api/analytics/dashboard")
    assert board.status_code == 200
    # Impact answers 409 with a plain message when the period has no programme to measure.
    for path in ("/api/analytics/impact", "/api/analytics/dna-rates"):
        assert client.get(path).status_code in (200, 409), path
    slugs = _slugs(board.json())
    assert slugs, "the dashboard listed no tables"
    for slug in sorted(slugs):
        assert client.get(f"/analytics/csv/{slug}").status_code == 200, slug


def run_call_and_sms_flows(
    database: Database, settings: Settings, client: TestClient, today: date
) -> int | None:
    """Queue build, the call screen and outcomes; SMS schedule, dispatch and webhooks. The id
    of the call worked, if the queue had one."""
    from app.calls.cli import build_for_day
    from app.sms import service as sms_service
    from app.sms.dispatcher import Dispatcher
    from app.sms.providers import FakeSender
    from app.sms.tables import SmsMessage

    build_for_day(database, settings, today)
    csrf = client.get("/api/auth/me").json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    client.get("/api/calls/queue")
    call = client.post("/api/calls/next", headers=headers).json()
    if call:
        client.get(f"/api/calls/{call['id']}")
        client.post(
            f"/api/calls/{call['id']}/attempts", json={"result": "answered"}, headers=headers
        )
        client.post(
            f"/api/calls/{call['id']}/outcomes",
            json={"outcomes": [{"kind": "confirmed"}], "complete": True},
            headers=headers,
        )
    daytime = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    with database.unit_of_work() as session:
        sms_service.seed_default_templates(session, now=daytime)
        for offset in range(0, 15):
            sms_service.schedule_reminders(
                session, settings, on_date=today + timedelta(offset), now=daytime
            )
    sender = FakeSender()
    Dispatcher(database, settings, sender, clock=FixedClock(daytime)).run_once()
    with database.unit_of_work() as session:
        sent = list(session.scalars(select(SmsMessage).where(SmsMessage.provider_sid.is_not(None))))
        session.expunge_all()
    assert sent, "no reminder was sent: the SMS flow did not run"
    client.get("/sms")
    client.get("/api/sms/stats")
    client.get(f"/api/sms/patients/{sent[0].patient_id}/messages")
    for message in sent[:3]:
        post_signed(
            client,
            "/webhooks/twilio/status",
            {"MessageSid": message.provider_sid or "", "MessageStatus": "delivered"},
        )
        post_signed(
            client,
            "/webhooks/twilio/inbound",
            {
                "MessageSid": "SM" + uuid.uuid4().hex,
                "From": message.to_number,
                "To": "+447700900999",
                "Body": "2 please call me, my name is " + message.body[:20],
            },
        )
    return call["id"] if call else None


def test_no_patient_identifier_appears_in_any_log_line(
    database: Database, settings: Settings, session: Session, tmp_path: Path, captured: Capture
) -> None:
    # A fresh engine, created after logging is set up, as in production (SQLAlchemy decides
    # whether to log statements when an engine connects).
    flow_settings = settings.model_copy(
        update={"twilio_auth_token": SecretStr(AUTH_TOKEN), "sms_send_rate_per_second": 0.0}
    )
    fresh = Database(flow_settings)
    try:
        run_main_flows(fresh, flow_settings, session, tmp_path)
    finally:
        fresh.dispose()

    values = identifiers(session)
    session.commit()
    assert len(values) > 100  # the check has something to look for
    assert any("please call me" in value for value in values)  # replies were received
    assert captured.lines, "nothing was logged: the capture is not working"
    assert leaks(captured.lines, values) == []


def test_log_lines_are_json_with_the_request_id(
    database: Database, settings: Settings, captured: Capture
) -> None:
    with TestClient(create_app(settings, database)) as client:
        response = client.get("/health", headers={"X-Request-ID": "req-privacy-1"})

    assert response.headers["x-request-id"] == "req-privacy-1"
    entries = [json.loads(line) for line in captured.lines]
    request_lines = [entry for entry in entries if entry["logger"] == "navigator.http"]
    assert request_lines
    assert request_lines[-1]["request_id"] == "req-privacy-1"
    assert request_lines[-1]["message"].startswith("GET /health ")


def test_a_database_error_never_carries_its_parameters(database: Database) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    secret = "Ashdown-0113 496 0123"
    with pytest.raises(SQLAlchemyError) as raised, database.engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :x"), {"x": secret})

    assert secret not in str(raised.value)
