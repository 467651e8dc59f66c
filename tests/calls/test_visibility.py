"""One read scope for calls (`calls/repository.py`): the API, the pages and the patient history
agree. A navigator sees the calls they hold or worked on; any other call answers 404 with no
patient details, whichever door is tried; managers see every call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.queue import build_queue
from app.calls.tables import Call
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.clock import CALENDAR
from tests.factories import create_patient

PATIENT_NAME = "Wilhelmina"


@pytest.fixture
def other_client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database, clock=clock)) as client:
        yield client


def _one_call_queued(session: Session, settings: Settings, clock: FixedClock) -> tuple[int, int]:
    """(call id, patient id) of one queued call for today."""
    today = CALENDAR.today(clock.now())
    appointment = create_eligible_appointment(
        session,
        patient=create_patient(session, given_name=PATIENT_NAME, family_name="Testperson"),
        start_at=CALENDAR.at(today + timedelta(days=7), time(11)),
    )
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), today, now=clock.now()
    )
    session.commit()
    call_id = session.scalars(select(Call.id)).one()
    patient_id = appointment.patient_id
    session.rollback()
    return call_id, patient_id


def _sign_in_as(session: Session, client: TestClient, role: Role = Role.NAVIGATOR) -> str:
    user = create_user(session, role=role)
    session.commit()
    return sign_in(client, user.username)


def _every_read(
    client: TestClient, call_id: int, patient_id: int, *, hidden: bool = True
) -> dict[str, int]:
    reads = {
        "api call": client.get(f"/api/calls/{call_id}"),
        "api history": client.get(f"/api/calls/{call_id}/history"),
        "api patient calls": client.get(f"/api/calls/patients/{patient_id}"),
        "call page": client.get(f"/calls/{call_id}"),
        "patient history page": client.get(f"/patients/{patient_id}/history"),
    }
    if hidden:
        for name, response in reads.items():
            assert PATIENT_NAME not in response.text, name
            assert "1980-01-01" not in response.text, name
    return {name: response.status_code for name, response in reads.items()}


def test_a_navigator_who_never_held_a_call_gets_404_from_the_api_and_the_pages(
    app_client: TestClient,
    other_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    call_id, patient_id = _one_call_queued(session, settings, clock)
    holder_csrf = _sign_in_as(session, app_client)
    other_csrf = _sign_in_as(session, other_client)

    # Queued and not taken: nobody's yet.
    assert set(_every_read(other_client, call_id, patient_id).values()) == {404}
    taken = app_client.post("/api/calls/next", headers={"X-CSRF-Token": holder_csrf}).json()
    assert taken["id"] == call_id

    # Taken by a colleague: still not there for the other navigator, reads and writes alike.
    assert set(_every_read(other_client, call_id, patient_id).values()) == {404}
    headers = {"X-CSRF-Token": other_csrf}
    writes = [
        other_client.post(
            f"/api/calls/{call_id}/attempts", json={"result": "answered"}, headers=headers
        ),
        other_client.post(f"/api/calls/{call_id}/complete", headers=headers),
        other_client.post(
            f"/calls/{call_id}/attempts",
            data={"csrf_token": other_csrf, "result": "answered", "channel": "mobile"},
        ),
    ]
    assert [response.status_code for response in writes] == [404, 404, 404]
    session.expire_all()
    assert session.get_one(Call, call_id).attempts == 0
    session.rollback()  # end the read: SQLite lets the app write only when nobody else reads

    # The holder sees it everywhere.
    assert set(_every_read(app_client, call_id, patient_id, hidden=False).values()) == {200}


def test_a_navigator_keeps_seeing_a_call_they_dialled_after_a_colleague_takes_it_over(
    app_client: TestClient,
    other_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    call_id, patient_id = _one_call_queued(session, settings, clock)
    # Both stay signed in until the retry comes round (up to a working morning away).
    settings.session_idle_minutes = 24 * 60
    settings.session_absolute_hours = 24
    first_csrf = {"X-CSRF-Token": _sign_in_as(session, app_client)}
    second_csrf = {"X-CSRF-Token": _sign_in_as(session, other_client)}
    app_client.post("/api/calls/next", headers=first_csrf)
    missed = app_client.post(
        f"/api/calls/{call_id}/attempts", json={"result": "no_answer"}, headers=first_csrf
    )
    assert missed.json()["status"] == "retry"

    clock.set(datetime.fromisoformat(missed.json()["next_attempt_at"]))
    retaken = other_client.post("/api/calls/next", headers=second_csrf).json()

    assert retaken["id"] == call_id
    history = app_client.get(f"/api/calls/{call_id}/history")
    assert history.status_code == 200
    assert [a["result"] for a in history.json()["attempts"]] == ["no_answer"]
    assert app_client.get(f"/patients/{patient_id}/history").status_code == 200
    page = app_client.get(f"/calls/{call_id}")
    assert page.status_code == 200
    assert "read only" in page.text  # they no longer hold it


def test_managers_see_every_call(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    call_id, patient_id = _one_call_queued(session, settings, clock)
    _sign_in_as(session, app_client, Role.MANAGER)

    assert app_client.get(f"/api/calls/{call_id}").json()["patient"]["given_name"] == PATIENT_NAME
    assert app_client.get(f"/api/calls/{call_id}/history").status_code == 200
    assert [c["id"] for c in app_client.get(f"/api/calls/patients/{patient_id}").json()] == [
        call_id
    ]
    assert PATIENT_NAME in app_client.get(f"/calls/{call_id}").text
    assert PATIENT_NAME in app_client.get(f"/patients/{patient_id}/history").text
