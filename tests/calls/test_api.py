"""The calls JSON API end to end: roles, CSRF, audit, queue, take next, outcomes, documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls.queue import build_queue
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.clock import CALENDAR
from tests.factories import create_patient


def _queue_today(
    session: Session, settings: Settings, clock: FixedClock, patients: int = 2
) -> None:
    today = CALENDAR.today(clock.now())
    start = CALENDAR.at(today + timedelta(days=7), time(12))
    for i in range(patients):
        create_eligible_appointment(
            session,
            patient=create_patient(session, interpreter_needed=True, preferred_language="pl"),
            risk=0.4 + i / 10,
            start_at=start,
        )
    build_queue(
        session,
        settings.model_copy(update={"calls_holdout_share": 0.0}),
        today,
        now=clock.now(),
    )
    session.commit()


@pytest.fixture
def second_client(
    settings: Settings, database: Database, clock: FixedClock
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database, clock=clock)) as client:
        yield client


def _signed_in(session: Session, client: TestClient, role: Role) -> tuple[int, dict[str, str]]:
    user = create_user(session, role=role)
    session.commit()
    return user.id, {"X-CSRF-Token": sign_in(client, user.username)}


def test_a_navigator_works_a_call_through_the_api(
    app_client: TestClient,
    second_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock)
    navigator_id, csrf = _signed_in(session, app_client, Role.NAVIGATOR)
    _, other_csrf = _signed_in(session, second_client, Role.NAVIGATOR)

    queue = app_client.get("/api/calls/queue").json()
    assert queue["counts"]["ready"] == 2
    assert queue["next_call"] is not None
    taken = app_client.post("/api/calls/next", headers=csrf).json()
    assert taken["status"] == "in_progress"
    assert "priority" not in taken
    other = second_client.post("/api/calls/next", headers=other_csrf).json()
    assert other["id"] != taken["id"]

    detail = app_client.get(f"/api/calls/{taken['id']}").json()
    assert detail["patient"]["birth_date"] == "1980-01-01"
    assert [d["slug"] for d in detail["script"]] == ["script", "script-interpreter"]
    assert "<h1>" in detail["sop"]["html"]
    appointment_id = detail["appointments"][0]["id"]
    assert "risk" not in detail["appointments"][0]

    attempt = app_client.post(
        f"/api/calls/{taken['id']}/attempts", json={"result": "answered"}, headers=csrf
    )
    assert attempt.status_code == 200
    invalid = app_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={"outcomes": [{"kind": "rebooked", "appointment_id": appointment_id}]},
        headers=csrf,
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "outcomes[0].new_start_at"

    saved = app_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={
            "outcomes": [
                {"kind": "confirmed", "appointment_id": appointment_id},
                {"kind": "spoken_interpreter", "language": "pl"},
            ],
            "complete": True,
        },
        headers=csrf,
    )
    assert saved.status_code == 200
    assert [o["kind"] for o in saved.json()] == ["confirmed", "spoken_interpreter"]

    not_theirs = second_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={"outcomes": [{"kind": "cancelled", "appointment_id": appointment_id}]},
        headers=other_csrf,
    )
    assert not_theirs.status_code == 404  # a call the navigator never held is not there
    stale = app_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={"outcomes": [{"kind": "cancelled", "appointment_id": appointment_id}]},
        headers=csrf,
    )
    assert stale.status_code == 409
    history = app_client.get(f"/api/calls/{taken['id']}/history").json()
    assert history["call"]["status"] == "completed"
    assert [a["result"] for a in history["attempts"]] == ["answered"]

    session.expire_all()
    audit = [
        (event.action, event.patient_id)
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.user_id == navigator_id).order_by(AuditEvent.id)
        )
        if event.action.startswith(("call", "patient"))
    ]
    patient_id = detail["patient"]["id"]
    assert audit == [
        ("call.taken", patient_id),
        ("patient.viewed_via_call", patient_id),
        ("call.attempt_recorded", patient_id),
        ("call.outcome_recorded", patient_id),
        ("call.outcome_recorded", patient_id),
        # Completing with the outcomes is audited as on the call screen.
        ("call.completed", patient_id),
        # Reading the call's history afterwards is a read of the patient's record.
        ("call.history_viewed", patient_id),
    ]


def test_the_overview_and_script_editing_are_for_managers(
    app_client: TestClient,
    second_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock)
    _, navigator_csrf = _signed_in(session, app_client, Role.NAVIGATOR)
    _, manager_csrf = _signed_in(session, second_client, Role.MANAGER)

    assert app_client.get("/api/calls/overview").status_code == 403
    refused = app_client.post(
        "/api/calls/documents/sop", json={"body": "# SOP\n\nMine."}, headers=navigator_csrf
    )
    assert refused.status_code == 403

    overview = second_client.get("/api/calls/overview").json()
    assert overview["capacity"] == 80
    assert overview["counts"]["ready"] == 2
    listed = second_client.get("/api/calls/documents").json()
    assert {d["slug"] for d in listed} >= {"script", "sop", "script-bsl"}
    edited = second_client.post(
        "/api/calls/documents/sop", json={"body": "# SOP\n\nUpdated."}, headers=manager_csrf
    )
    assert edited.status_code == 201
    assert edited.json()["version"] == 2
    versions = second_client.get("/api/calls/documents/sop").json()
    assert [v["version"] for v in versions] == [2, 1]
    empty = second_client.post("/api/calls/documents/sop", json={"body": ""}, headers=manager_csrf)
    assert empty.status_code == 422


def test_saving_unchanged_script_text_through_the_api_makes_no_version(
    app_client: TestClient, session: Session
) -> None:
    _, csrf = _signed_in(session, app_client, Role.MANAGER)
    saved = app_client.post(
        "/api/calls/documents/sop", json={"body": "# SOP\n\nUpdated."}, headers=csrf
    )
    assert saved.status_code == 201
    assert (saved.json()["version"], saved.json()["changed"]) == (2, True)

    # The same text again, with the CRLF line ends and trailing blank a form would send.
    again = app_client.post(
        "/api/calls/documents/sop", json={"body": "# SOP\r\n\r\nUpdated.\r\n\r\n"}, headers=csrf
    )
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["version"]) == (saved.json()["id"], 2)
    assert again.json()["changed"] is False
    versions = app_client.get("/api/calls/documents/sop").json()
    assert [v["version"] for v in versions] == [2, 1]
    edits = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "call_document.edited")
    ).all()
    assert edits == ["call_document.edited"]


def test_the_openapi_schema_says_an_unchanged_save_answers_200(
    settings: Settings, database: Database
) -> None:
    schema = create_app(settings, database).openapi()
    responses = schema["paths"]["/api/calls/documents/{slug}"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    assert "Unchanged" in responses["200"]["description"]
    saved = schema["components"]["schemas"]["DocumentSaved"]
    assert "changed" in saved["required"]


def test_calls_need_a_signed_in_user_and_csrf_on_changes(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    assert app_client.get("/api/calls/queue").status_code == 401
    assert app_client.post("/api/calls/next").status_code == 401

    _, csrf = _signed_in(session, app_client, Role.NAVIGATOR)
    without_token = app_client.post("/api/calls/next")
    assert without_token.status_code == 403
    assert app_client.get("/api/calls/queue").json()["counts"]["in_progress"] == 0
    assert app_client.post("/api/calls/next", headers=csrf).json()["status"] == "in_progress"


def test_an_empty_queue_has_no_next_call(app_client: TestClient, session: Session) -> None:
    _, csrf = _signed_in(session, app_client, Role.NAVIGATOR)
    response = app_client.post("/api/calls/next", headers=csrf)
    assert response.status_code == 200
    assert response.json() is None
