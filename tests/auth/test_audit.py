"""The audit log: entries for sign-ins and record views, read through `GET /api/audit`."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls.tables import Call, CallStatus
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.patients.access import SearchReason, grant_from_search
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in, sign_in_with_form
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment, create_patient
from tests.test_access_policy import app_routes


def test_sign_ins_and_record_views_are_audited_and_managers_can_filter_them(
    app_client: TestClient, session: Session
) -> None:
    navigator = create_user(session, username="viewer")
    create_user(session, role=Role.MANAGER, username="boss")
    appointment = create_appointment(session)
    session.add(
        Call(
            patient_id=appointment.patient_id,
            queue_date=TODAY,
            priority=1.0,
            status=CallStatus.IN_PROGRESS,
            taken_by=navigator.id,
        )
    )
    session.commit()
    sign_in(app_client, "viewer")
    app_client.get(f"/api/patients/{appointment.patient_id}")
    app_client.get(f"/api/appointments/{appointment.id}")

    sign_in(app_client, "boss")
    body = app_client.get("/api/audit", params={"patient_id": appointment.patient_id}).json()

    assert body["total"] == 2
    assert [item["action"] for item in body["items"]] == ["appointment.viewed", "patient.viewed"]
    assert {item["username"] for item in body["items"]} == {"viewer"}
    assert body["items"][0]["appointment_id"] == appointment.id
    by_user = app_client.get("/api/audit", params={"username": "viewer"}).json()
    assert [item["action"] for item in by_user["items"]][-1] == "sign_in.succeeded"
    assert all(item["user_id"] == navigator.id for item in by_user["items"])


def test_the_audit_api_filters_by_action_and_local_date(
    app_client: TestClient, session: Session
) -> None:
    manager = create_user(session, role=Role.MANAGER, username="reader")
    record_audit(session, user_id=manager.id, action="export.created", detail={"rows": 12})
    session.commit()
    sign_in(app_client, "reader")

    exports = app_client.get("/api/audit", params={"action": "export.created"}).json()
    long_ago = app_client.get("/api/audit", params={"date": "2020-01-01"}).json()

    assert exports["total"] == 1
    assert exports["items"][0]["detail"] == {"rows": 12}
    assert long_ago["total"] == 0


def test_audit_entries_live_in_the_callers_transaction(session: Session) -> None:
    user = create_user(session)
    event = record_audit(session, user_id=user.id, action="queue.opened", patient_id=3)
    assert event.id is not None
    session.rollback()
    assert session.get(type(event), event.id) is None


# Every route that reads patient-level data in this area, with the audit action it writes.
# (Calls and SMS routes join as they move onto `app.auth.reads`.)
PATIENT_READ_ROUTES = {
    "/api/patients": "patient.listed",
    "/api/patients/{patient_id}": "patient.viewed",
    "/api/patients/search": "patient.listed",
    "/api/appointments": "appointment.listed",
    "/api/appointments/{appointment_id}": "appointment.viewed",
}


def test_every_patient_level_read_writes_one_audit_row_with_the_filter_and_ids(
    app_client: TestClient, session: Session, settings: Settings, database: Database
) -> None:
    manager = create_user(session, role=Role.MANAGER)
    first, second = create_appointment(session), create_appointment(session)
    session.commit()
    sign_in(app_client, manager.username)
    concrete = {
        "/api/patients": "/api/patients?core20=false",
        "/api/patients/{patient_id}": f"/api/patients/{first.patient_id}",
        "/api/patients/search": "/api/patients/search?by=name&q=Alex&reason=call_back",
        "/api/appointments": f"/api/appointments?patient_id={second.patient_id}",
        "/api/appointments/{appointment_id}": f"/api/appointments/{first.id}",
    }
    routes = {
        path
        for method, path in app_routes(create_app(settings, database))
        if method == "GET" and path.startswith(("/api/patients", "/api/appointments"))
    }
    assert routes == set(PATIENT_READ_ROUTES)

    for template, action in PATIENT_READ_ROUTES.items():
        before = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        session.rollback()
        assert app_client.get(concrete[template]).status_code == 200
        rows = session.scalars(select(AuditEvent).where(AuditEvent.id > before)).all()
        session.rollback()
        assert [row.action for row in rows] == [action], template
        assert rows[0].user_id == manager.id
        assert rows[0].detail is not None
        assert rows[0].detail["count"] >= 1

    listed, searched = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient.listed").order_by(AuditEvent.id)
    ).all()
    assert searched.detail is not None
    assert searched.detail["filter"] == {"search_by": "name", "reason": "call_back"}
    assert listed.detail is not None
    assert listed.detail["patient_ids"] == sorted([first.patient_id, second.patient_id])
    assert listed.detail["filter"]["core20"] is False
    by_patient = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "appointment.listed")
    ).one()
    assert by_patient.detail is not None
    assert by_patient.detail["filter"]["patient_id"] == second.patient_id
    assert by_patient.patient_id == second.patient_id


def test_bulk_reading_is_refused_429_with_retry_after_until_the_minute_passes(
    settings: Settings, database: Database, session: Session, clock: FixedClock
) -> None:
    manager = create_user(session, role=Role.MANAGER)
    patients = [create_patient(session) for _ in range(4)]
    session.commit()
    limited = settings.model_copy(
        update={"read_limit_requests_per_minute": 100, "read_limit_patients_per_minute": 3}
    )
    with TestClient(create_app(limited, database, clock=clock)) as client:
        sign_in(client, manager.username)
        answers = [client.get(f"/api/patients/{p.id}").status_code for p in patients[:3]]
        clock.advance(seconds=20)
        refused = client.get(f"/api/patients/{patients[3].id}")
        listed = client.get("/api/patients")
        clock.advance(seconds=41)
        again = client.get(f"/api/patients/{patients[3].id}")

    assert answers == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"
    assert "Wait" in refused.json()["detail"]
    assert listed.status_code == 429
    assert again.status_code == 200


def test_the_audit_page_reports_unusual_access(
    settings: Settings, database: Database, session: Session, clock: FixedClock
) -> None:
    manager = create_user(session, role=Role.MANAGER, username="dpo")
    busy = create_user(session, username="busy.reader")
    night = create_user(session, username="night.reader")
    searcher = create_user(session, username="searcher")
    called = create_user(session, username="caller.back")
    start = CALENDAR.working_day_start(TODAY)
    record_audit(
        session,
        user_id=busy.id,
        action="patient.listed",
        detail={"patient_ids": list(range(1, 5)), "count": 4},
        now=start + timedelta(minutes=5),
    )
    record_audit(
        session,
        user_id=night.id,
        action="patient.viewed",
        patient_id=9,
        now=start - timedelta(hours=3),
    )
    found, rang = create_patient(session), create_patient(session)
    for user, patient in ((searcher, found), (called, rang)):
        grant_from_search(
            session,
            settings,
            user_id=user.id,
            patient_id=patient.id,
            reason=SearchReason.CALL_BACK,
            now=start + timedelta(hours=1),
        )
    session.add(
        Call(
            patient_id=rang.id,
            queue_date=TODAY,
            priority=1.0,
            status=CallStatus.COMPLETED,
            completed_by=called.id,
            completed_at=start + timedelta(hours=1, minutes=5),
        )
    )
    session.commit()
    limited = settings.model_copy(update={"audit_unusual_patients_per_hour": 3})
    with TestClient(
        create_app(limited, database, clock=clock), base_url="https://testserver"
    ) as client:
        sign_in_with_form(client, "dpo")
        page = client.get(
            "/audit",
            params={"date-day": TODAY.day, "date-month": TODAY.month, "date-year": TODAY.year},
        )

    assert page.status_code == 200
    report = page.text.split('id="unusual-access"')[1].split("<h2")[0]
    rows = report.split("<tr")[2:]  # after the header row

    def who(kind: str) -> set[str]:
        names = {"busy.reader", "night.reader", "searcher", "caller.back", manager.username}
        return {name for row in rows if f"unusual-{kind}" in row for name in names if name in row}

    assert who("many_patients") == {"busy.reader"}
    assert "More than 3 patients in one hour" in report
    assert "night.reader" in who("out_of_hours")
    assert "outside working hours" in report
    assert who("search_without_call") == {"searcher"}
    assert "no call followed" in report


def test_every_request_log_line_carries_the_user_id_and_never_the_name(
    app_client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    manager = create_user(session, role=Role.MANAGER, username="logged.manager")
    session.commit()
    sign_in(app_client, manager.username)

    with caplog.at_level(logging.INFO, logger="navigator.http"):
        app_client.get("/api/patients")
        app_client.get("/health")

    lines = [record for record in caplog.records if record.name == "navigator.http"]
    assert [getattr(record, "user_id", None) for record in lines] == [manager.id, None]
    assert f"user={manager.id}" in lines[0].getMessage()
    assert all("logged.manager" not in record.getMessage() for record in lines)
