"""The access matrix's row dimension: own and someone else's record, for every role.

A navigator sees a patient (and their appointments) only through a call they hold or
worked, an open team task, or an audited search with a recorded reason; managers and
admins see everyone. Out of scope answers 404, the same as a record that does not exist,
and lists leave such patients out. Every route of the app that takes a patient, appointment
or call id is enumerated below and tried by every role on its own and on another's record
(reads), and by a navigator on another's call (every unsafe door: 404, nothing changed); a
new id parameter fails until it is declared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.auth.roles import Role
from app.calls.tables import Call, CallAttempt, CallOutcome, CallStatus
from app.clock import FixedClock
from app.patients.access import SearchReason, grant_from_search
from app.patients.tables import Patient
from app.settings import Settings
from app.tasks.tables import NavigatorTask, TaskStatus
from tests.auth.helpers import create_user, sign_in
from tests.clock import TODAY
from tests.factories import create_appointment, create_patient


@dataclass
class Records:
    own_patient: Patient
    own_appointment: Appointment
    other_patient: Patient
    other_appointment: Appointment


def _call(session: Session, patient: Patient, **values: object) -> Call:
    call = Call(patient_id=patient.id, queue_date=TODAY, priority=1.0, **values)
    session.add(call)
    session.flush()
    return call


def _records(session: Session, navigator_id: int, other_navigator_id: int) -> Records:
    own, other = create_patient(session), create_patient(session)
    records = Records(
        own_patient=own,
        own_appointment=create_appointment(session, patient=own),
        other_patient=other,
        other_appointment=create_appointment(session, patient=other),
    )
    _call(session, own, status=CallStatus.IN_PROGRESS, taken_by=navigator_id)
    _call(session, other, status=CallStatus.IN_PROGRESS, taken_by=other_navigator_id)
    return records


ROW_ROUTES: list[tuple[str, Callable[[Records, bool], str]]] = [
    (
        "/api/patients/{patient_id}",
        lambda r, own: f"/api/patients/{(r.own_patient if own else r.other_patient).id}",
    ),
    (
        "/api/appointments/{appointment_id}",
        lambda r, own: (
            f"/api/appointments/{(r.own_appointment if own else r.other_appointment).id}"
        ),
    ),
]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("template", "concrete"), ROW_ROUTES, ids=[t for t, _ in ROW_ROUTES])
def test_each_role_reads_its_own_records_and_only_managers_read_anyone_elses(
    app_client: TestClient,
    session: Session,
    role: Role,
    template: str,
    concrete: Callable[[Records, bool], str],
) -> None:
    reader = create_user(session, role=role)
    colleague = create_user(session, role=Role.NAVIGATOR)
    records = _records(session, reader.id, colleague.id)
    session.commit()
    sign_in(app_client, reader.username)

    own = app_client.get(concrete(records, True))
    others = app_client.get(concrete(records, False))
    missing = app_client.get(template.split("{", maxsplit=1)[0] + "999999")

    assert own.status_code == 200, (role, template)
    if role == Role.NAVIGATOR:
        assert others.status_code == 404, (role, template)
        assert others.json() == missing.json()  # out of scope looks exactly like missing
    else:
        assert others.status_code == 200, (role, template)


@pytest.mark.parametrize("role", list(Role))
def test_lists_hold_only_the_patients_in_scope(
    app_client: TestClient, session: Session, role: Role
) -> None:
    reader = create_user(session, role=role)
    colleague = create_user(session, role=Role.NAVIGATOR)
    records = _records(session, reader.id, colleague.id)
    session.commit()
    sign_in(app_client, reader.username)

    patients = app_client.get("/api/patients").json()
    appointments = app_client.get("/api/appointments", params={"limit": 500}).json()
    other_by_filter = app_client.get(
        "/api/appointments", params={"patient_id": records.other_patient.id}
    ).json()

    expected = {records.own_patient.id}
    if role != Role.NAVIGATOR:
        expected.add(records.other_patient.id)
    assert {item["id"] for item in patients["items"]} == expected
    assert patients["total"] == len(expected)
    assert {item["patient_id"] for item in appointments["items"]} == expected
    assert other_by_filter["total"] == (0 if role == Role.NAVIGATOR else 1)


def test_a_navigator_sees_patients_of_calls_worked_and_tasks_but_not_the_rest(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    navigator = create_user(session, role=Role.NAVIGATOR)
    attempted, completed, tasked, done_task, stranger = (create_patient(session) for _ in range(5))
    call = _call(session, attempted, status=CallStatus.RETRY, taken_by=None)
    session.add(
        CallAttempt(
            call_id=call.id,
            number=1,
            result="no_answer",
            channel="mobile",
            attempted_at=clock.now(),
            attempted_by=navigator.id,
        )
    )
    _call(session, completed, status=CallStatus.COMPLETED, completed_by=navigator.id)
    for patient, status, by in (
        (tasked, TaskStatus.OPEN, None),
        (done_task, TaskStatus.DONE, navigator.id + 1000),
    ):
        session.add(
            NavigatorTask(
                kind="read_reply",
                status=status,
                patient_id=patient.id,
                source="sms",
                source_ref=f"ref-{patient.id}",
                completed_by=by,
            )
        )
    session.commit()
    sign_in(app_client, navigator.username)

    seen = {item["id"] for item in app_client.get("/api/patients").json()["items"]}

    assert seen == {attempted.id, completed.id, tasked.id}
    assert app_client.get(f"/api/patients/{stranger.id}").status_code == 404
    assert app_client.get(f"/api/patients/{done_task.id}").status_code == 404


def test_a_patient_found_by_an_audited_search_is_visible_until_the_sight_expires(
    app_client: TestClient, session: Session, clock: FixedClock, settings: Settings
) -> None:
    navigator = create_user(session, role=Role.NAVIGATOR)
    caller = create_patient(session)
    session.commit()
    sign_in(app_client, navigator.username)
    assert app_client.get(f"/api/patients/{caller.id}").status_code == 404

    grant_from_search(
        session,
        settings,
        user_id=navigator.id,
        patient_id=caller.id,
        reason=SearchReason.PATIENT_CALLED_IN,
        now=clock.now(),
    )
    session.commit()

    assert app_client.get(f"/api/patients/{caller.id}").status_code == 200
    clock.advance(timedelta(hours=settings.search_access_hours, seconds=1))
    sign_in(app_client, navigator.username)  # the session itself has idled out meanwhile
    assert app_client.get(f"/api/patients/{caller.id}").status_code == 404


# --- every route with a record id, every role, own and another's ---------------------------

# Path parameters that name a patient-level record; every route that takes one is in the
# matrix below. Other parameters are declared here with why they need no own/another's row.
RECORD_PARAMS = {"patient_id", "appointment_id", "call_id"}
OTHER_PARAMS = {
    "task_id": "tasks have their own scope and matrix (tests/tasks)",
    "request_id": "booking requests: managers only (the booking team sees every request)",
    "message_id": "feed dead letters: managers only",
    "user_id": "staff accounts: admins only",
    "slug": "scripts, SOPs and analytics tables: no patient record",
    "kind": "SMS templates: no patient record",
    "language": "SMS templates: no patient record",
    "version": "risk models: no patient record",
    "outcome_id": "only with the call_id it belongs to, which the matrix covers",
}
# Unsafe calls on a record, with the body (JSON for the API, a form for pages) that would
# change it if the navigator held it.
UNSAFE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/calls/{call_id}/attempts"): {"result": "no_answer", "channel": "mobile"},
    ("POST", "/api/calls/{call_id}/outcomes"): {"outcomes": [], "complete": True},
    ("POST", "/api/calls/{call_id}/complete"): {},
    ("POST", "/api/calls/{call_id}/heartbeat"): {},
    ("POST", "/calls/{call_id}/attempts"): {"result": "no_answer", "channel": "mobile"},
    ("POST", "/calls/{call_id}/outcomes"): {"complete": "yes", "other": "no_need"},
    ("POST", "/calls/{call_id}/complete"): {},
    ("POST", "/api/calls/{call_id}/identity"): {"confirmed": True},
    ("POST", "/api/calls/{call_id}/notes"): {"body": "Asked for a morning slot"},
    ("POST", "/api/calls/{call_id}/release"): {},
    ("POST", "/api/calls/{call_id}/outcomes/{outcome_id}/undo"): {},
    ("POST", "/api/calls/{call_id}/corrections"): {"outcomes": [{"kind": "parking"}]},
    ("POST", "/calls/{call_id}/identity"): {"identity": "confirmed"},
    ("POST", "/calls/{call_id}/notes"): {"note": "Asked for a morning slot"},
    ("POST", "/calls/{call_id}/release"): {},
    ("POST", "/calls/{call_id}/outcomes/{outcome_id}/undo"): {},
    ("POST", "/calls/{call_id}/corrections"): {"other": "parking"},
    ("POST", "/api/patients/{patient_id}/open"): {"reason": "patient_called_in"},
    ("POST", "/api/patients/{patient_id}/calls"): {"direction": "inbound"},
    ("POST", "/api/patients/{patient_id}/phones"): {"phone": "mobile", "number": "07700900999"},
    ("POST", "/patients/{patient_id}/open"): {"reason": "patient_called_in"},
    ("POST", "/patients/{patient_id}/calls"): {"direction": "inbound"},
    ("POST", "/patients/{patient_id}/phones"): {"phone": "mobile", "number": "07700900999"},
}
# Record routes only managers may use at all: a navigator is refused before any record is read.
MANAGER_ONLY_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/calls/{call_id}/reassign"): {},
}


def _record_routes(app_client: TestClient) -> list[tuple[str, str]]:
    from tests.test_access_policy import app_routes

    routes = []
    for method, path in app_routes(app_client.app):  # type: ignore[arg-type]
        params = set(re.findall(r"\{([^}]+)\}", path))
        unknown = params - RECORD_PARAMS - set(OTHER_PARAMS)
        assert not unknown, f"{method} {path}: declare {unknown} in RECORD_PARAMS or OTHER_PARAMS"
        if params & RECORD_PARAMS:
            routes.append((method, path))
    return routes


def _fill(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda match: str(ids[match.group(1)]), path)


def _ids(session: Session, records: Records, patient: Patient) -> dict[str, int]:
    call = session.scalar(select(Call.id).where(Call.patient_id == patient.id))
    appointment = records.own_appointment if patient is records.own_patient else None
    return {
        "patient_id": patient.id,
        "appointment_id": (appointment or records.other_appointment).id,
        "call_id": call or 0,
        # The call's first outcome, or an id no outcome has yet (ids start at 1).
        "outcome_id": session.scalar(select(CallOutcome.id).where(CallOutcome.call_id == call))
        or 1_000_000,
    }


def test_every_record_route_is_in_the_matrix(app_client: TestClient) -> None:
    routes = _record_routes(app_client)
    unsafe = {route for route in routes if route[0] != "GET"}
    declared = set(UNSAFE_BODIES) | set(MANAGER_ONLY_BODIES)
    assert unsafe == declared, unsafe ^ declared
    assert len([route for route in routes if route[0] == "GET"]) >= 9


@pytest.mark.parametrize("role", list(Role))
def test_every_read_route_gives_each_role_its_own_record_and_only_managers_anothers(
    app_client: TestClient, session: Session, role: Role
) -> None:
    reader = create_user(session, role=role)
    colleague = create_user(session, role=Role.NAVIGATOR)
    records = _records(session, reader.id, colleague.id)
    own = _ids(session, records, records.own_patient)
    other = _ids(session, records, records.other_patient)
    other_pas = records.other_patient.pas_patient_id
    session.commit()
    sign_in(app_client, reader.username)

    answers = {}
    for method, path in _record_routes(app_client):
        if method != "GET":
            continue
        answers[path] = (
            app_client.get(_fill(path, own), follow_redirects=False),
            app_client.get(_fill(path, other), follow_redirects=False),
        )

    for path, (own_answer, other_answer) in answers.items():
        assert own_answer.status_code == 200, (role, path, own_answer.status_code)
        if role == Role.NAVIGATOR:
            assert other_answer.status_code == 404, (role, path, other_answer.status_code)
            assert other_pas not in other_answer.text, path
        else:
            assert other_answer.status_code == 200, (role, path, other_answer.status_code)


@pytest.mark.parametrize(("method", "path"), sorted(UNSAFE_BODIES))
def test_a_navigator_cannot_change_anothers_call_through_any_door(
    app_client: TestClient, session: Session, method: str, path: str
) -> None:
    navigator = create_user(session, role=Role.NAVIGATOR)
    colleague = create_user(session, role=Role.NAVIGATOR)
    records = _records(session, navigator.id, colleague.id)
    other = _ids(session, records, records.other_patient)
    session.commit()
    csrf = sign_in(app_client, navigator.username)
    before = session.get_one(Call, other["call_id"])
    state = (before.status, before.taken_by, before.lease_expires_at, before.attempts)
    session.rollback()

    body = UNSAFE_BODIES[(method, path)]
    concrete = _fill(path, other)
    if path.startswith("/api/"):
        response = app_client.request(method, concrete, json=body, headers={"X-CSRF-Token": csrf})
    else:
        response = app_client.request(
            method, concrete, data={"csrf_token": csrf, **body}, follow_redirects=False
        )

    assert response.status_code == 404, (path, response.status_code)
    after = session.get_one(Call, other["call_id"])
    assert (after.status, after.taken_by, after.lease_expires_at, after.attempts) == state


@pytest.mark.parametrize(("method", "path"), sorted(MANAGER_ONLY_BODIES))
def test_a_navigator_is_refused_a_managers_action_on_any_call(
    app_client: TestClient, session: Session, method: str, path: str
) -> None:
    navigator = create_user(session, role=Role.NAVIGATOR)
    colleague = create_user(session, role=Role.NAVIGATOR)
    records = _records(session, navigator.id, colleague.id)
    own = _ids(session, records, records.own_patient)
    other = _ids(session, records, records.other_patient)
    session.commit()
    csrf = sign_in(app_client, navigator.username)
    body = {**MANAGER_ONLY_BODIES[(method, path)], "navigator_id": navigator.id}

    for ids in (own, other):
        before = session.get_one(Call, ids["call_id"])
        state = (before.status, before.taken_by, before.lease_expires_at)
        session.rollback()
        response = app_client.request(
            method, _fill(path, ids), json=body, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 403, (path, response.status_code)
        after = session.get_one(Call, ids["call_id"])
        assert (after.status, after.taken_by, after.lease_expires_at) == state
        session.rollback()
