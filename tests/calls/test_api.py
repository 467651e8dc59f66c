"""The calls JSON API end to end: queue, take next, detail, attempts, outcomes, documents."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.calls.queue import build_queue
from app.calls.service import local_today
from app.settings import Settings
from tests.calls.helpers import create_eligible_appointment
from tests.factories import create_patient

NAVIGATOR = {"X-Navigator-User": "11"}
OTHER_NAVIGATOR = {"X-Navigator-User": "12"}
MANAGER = {"X-Navigator-User": "21"}


def _queue_today(session: Session, settings: Settings, patients: int = 2) -> None:
    today = local_today(settings, datetime.now(UTC))
    start = datetime.combine(today + timedelta(days=7), time(12), ZoneInfo(settings.timezone))
    for i in range(patients):
        create_eligible_appointment(
            session,
            patient=create_patient(session, interpreter_needed=True, preferred_language="pl"),
            risk=0.4 + i / 10,
            start_at=start,
        )
    build_queue(session, settings.model_copy(update={"calls_holdout_share": 0.0}), today)
    session.commit()


def test_a_navigator_works_a_call_through_the_api(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings)

    queue = app_client.get("/api/calls/queue", headers=NAVIGATOR).json()
    assert queue["counts"]["ready"] == 2
    assert queue["next_call"] is not None
    taken = app_client.post("/api/calls/next", headers=NAVIGATOR).json()
    assert taken["status"] == "in_progress"
    assert "priority" not in taken
    other = app_client.post("/api/calls/next", headers=OTHER_NAVIGATOR).json()
    assert other["id"] != taken["id"]

    detail = app_client.get(f"/api/calls/{taken['id']}", headers=NAVIGATOR).json()
    assert detail["patient"]["birth_date"] == "1980-01-01"
    assert [d["slug"] for d in detail["script"]] == ["script", "script-interpreter"]
    assert "<h1>" in detail["sop"]["html"]
    appointment_id = detail["appointments"][0]["id"]
    assert "risk" not in detail["appointments"][0]

    attempt = app_client.post(
        f"/api/calls/{taken['id']}/attempts", json={"result": "answered"}, headers=NAVIGATOR
    )
    assert attempt.status_code == 200
    invalid = app_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={"outcomes": [{"kind": "rebooked", "appointment_id": appointment_id}]},
        headers=NAVIGATOR,
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
        headers=NAVIGATOR,
    )
    assert saved.status_code == 200
    assert [o["kind"] for o in saved.json()] == ["confirmed", "spoken_interpreter"]

    stale = app_client.post(
        f"/api/calls/{taken['id']}/outcomes",
        json={"outcomes": [{"kind": "cancelled", "appointment_id": appointment_id}]},
        headers=OTHER_NAVIGATOR,
    )
    assert stale.status_code == 409
    history = app_client.get(f"/api/calls/{taken['id']}/history", headers=NAVIGATOR).json()
    assert history["call"]["status"] == "completed"
    assert [a["result"] for a in history["attempts"]] == ["answered"]

    overview = app_client.get("/api/calls/overview", headers=MANAGER).json()
    assert overview["capacity"] == 80
    assert overview["counts"]["completed"] == 1
    assert overview["outcomes_today"] == {"confirmed": 1, "spoken_interpreter": 1}
    assert {n["user_id"]: n["completed"] for n in overview["by_navigator"]}[11] == 1


def test_managers_edit_scripts_and_old_versions_stay(app_client: TestClient) -> None:
    listed = app_client.get("/api/calls/documents", headers=MANAGER).json()
    assert {d["slug"] for d in listed} >= {"script", "sop", "script-bsl"}

    edited = app_client.post(
        "/api/calls/documents/sop",
        json={"body": "# SOP\n\nUpdated procedure."},
        headers=MANAGER,
    )
    assert edited.status_code == 201
    assert edited.json()["version"] == 2
    versions = app_client.get("/api/calls/documents/sop", headers=MANAGER).json()
    assert [v["version"] for v in versions] == [2, 1]
    refused = app_client.post("/api/calls/documents/sop", json={"body": ""}, headers=MANAGER)
    assert refused.status_code == 422


def test_an_empty_queue_has_no_next_call(app_client: TestClient) -> None:
    response = app_client.post("/api/calls/next", headers=NAVIGATOR)
    assert response.status_code == 200
    assert response.json() is None
