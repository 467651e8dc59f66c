"""The audit log: entries for sign-ins and record views, read through `GET /api/audit`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.roles import Role
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment


def test_sign_ins_and_record_views_are_audited_and_managers_can_filter_them(
    app_client: TestClient, session: Session
) -> None:
    navigator = create_user(session, username="viewer")
    create_user(session, role=Role.MANAGER, username="boss")
    appointment = create_appointment(session)
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
