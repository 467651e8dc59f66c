"""100% of patient-level reads audited: every GET route of the app is declared here as showing
a patient's record (and then must write an audit row the unusual-access report counts) or as
showing none, with the reason. A new route that is in neither list fails the first test, so
it cannot ship unaudited by omission.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.audit import READ_ACTIONS
from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls.tables import Call, CallStatus
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.clock import CALENDAR, TEST_NOW, TODAY
from tests.factories import create_appointment, create_patient
from tests.test_access_policy import app_routes


@dataclass
class Seen:
    patient_id: int
    appointment_id: int
    call_id: int


Url = Callable[[Seen], str]

# Patient-level GET routes: the concrete URL to read one record (or list) of `Seen`.
PATIENT_READ_ROUTES: dict[str, Url] = {
    "/api/patients": lambda s: "/api/patients",
    "/api/patients/{patient_id}": lambda s: f"/api/patients/{s.patient_id}",
    "/api/appointments": lambda s: f"/api/appointments?patient_id={s.patient_id}",
    "/api/appointments/{appointment_id}": lambda s: f"/api/appointments/{s.appointment_id}",
    "/api/calls/{call_id}": lambda s: f"/api/calls/{s.call_id}",
    "/calls/{call_id}": lambda s: f"/calls/{s.call_id}",
    "/patients/{patient_id}/history": lambda s: f"/patients/{s.patient_id}/history",
    "/api/sms/patients/{patient_id}/messages": lambda s: (
        f"/api/sms/patients/{s.patient_id}/messages"
    ),
    "/api/sms/appointments/{appointment_id}/messages": lambda s: (
        f"/api/sms/appointments/{s.appointment_id}/messages"
    ),
    "/bookings": lambda s: "/bookings?status=all",
    "/bookings.csv": lambda s: "/bookings.csv?status=all",
    "/api/calls/{call_id}/history": lambda s: f"/api/calls/{s.call_id}/history",
    "/api/calls/patients/{patient_id}": lambda s: f"/api/calls/patients/{s.patient_id}",
    "/api/calls/queue": lambda s: "/api/calls/queue",
    "/queue": lambda s: "/queue",
    "/history": lambda s: "/history",
    "/queue/tomorrow": lambda s: "/queue/tomorrow",
    "/tasks": lambda s: "/tasks",
    "/api/tasks": lambda s: "/api/tasks",
    "/patients/{patient_id}": lambda s: f"/patients/{s.patient_id}",
    "/patients/search": lambda s: "/patients/search?by=name&q=Alex&reason=patient_called_in",
    "/api/patients/search": lambda s: "/api/patients/search?by=name&q=Alex&reason=call_back",
}

# GET routes that show no patient's record, and why.
NO_PATIENT_RECORD = {
    "/api/calls/tomorrow": "call ids, times and attempt counts only",
    "/": "redirects to the user's start page",
    "/sign-in": "the sign-in form",
    "/health": "service health",
    "/metrics": "counters, no identifiers",
    "/openapi.json": "API documentation",
    "/docs": "API documentation",
    "/docs/oauth2-redirect": "API documentation",
    "/redoc": "API documentation",
    "/api/auth/me": "the signed-in user",
    "/account/password": "the signed-in user's own password form",
    "/admin/users": "staff accounts",
    "/admin/users/new": "a blank form",
    "/admin/users/{user_id}/deactivate": "a confirmation question about an account",
    "/audit": "the audit trail itself: ids, never a record",
    "/api/audit": "the audit trail itself: ids, never a record",
    "/analytics": "aggregates over groups",
    "/dashboard": "aggregates over groups and counts",
    "/analytics/board-pack": "aggregates over groups",
    "/analytics/csv/{slug}": "aggregates over groups",
    "/analytics/assets/analytics.css": "a style sheet",
    "/api/analytics/csv/{slug}": "aggregates over groups",
    "/api/analytics/dashboard": "aggregates over groups",
    "/api/analytics/data-quality": "aggregates over groups",
    "/api/analytics/dna-rates": "aggregates over groups",
    "/api/analytics/impact": "aggregates over groups",
    "/api/analytics/outcomes": "aggregates over groups",
    "/api/analytics/reach": "aggregates over groups",
    "/api/analytics/tables/{slug}": "aggregates over groups",
    "/api/calls/overview": "counts per navigator",
    "/manage/queues": "counts per navigator",
    "/api/calls/documents": "call scripts and SOPs",
    "/api/calls/documents/{slug}": "call scripts and SOPs",
    "/manage/scripts": "call scripts and SOPs",
    "/manage/scripts/{slug}": "call scripts and SOPs",
    "/manage/scripts/{slug}/compare": "call scripts and SOPs",
    "/api/feed/dead-letters": "failed feed messages: PAS keys and errors, no record",
    "/feed": "failed feed messages: PAS keys and errors, no record",
    "/api/risk/models": "model registry",
    "/api/risk/models/active": "model registry",
    "/model": "model card",
    "/api/sms/stats": "message counts",
    "/api/sms/templates": "message templates",
    "/sms": "message counts and templates",
    "/sms/templates/{kind}/{language}": "a message template",
    "/sms/templates/{kind}/{language}/compare": "two versions of a message template",
    "/api/targeting/policy": "the queue policy",
    "/api/targeting/report": "effects by subgroup",
    "/targeting": "effects by subgroup",
}


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> FastAPI:
    return create_app(settings, database, clock=clock)


def test_every_get_route_is_declared_patient_level_or_not(app: FastAPI) -> None:
    routes = {path for method, path in app_routes(app) if method == "GET"}
    declared = set(PATIENT_READ_ROUTES) | set(NO_PATIENT_RECORD)
    assert not routes - declared, f"GET routes to classify (audited or not): {routes - declared}"
    assert not declared - routes, f"declared routes that no longer exist: {declared - routes}"
    assert not set(PATIENT_READ_ROUTES) & set(NO_PATIENT_RECORD)


def _seen(session: Session) -> Seen:
    holder = create_user(session, role=Role.NAVIGATOR)
    patient = create_patient(session)
    appointment = create_appointment(
        session, patient=patient, start_at=CALENDAR.at(TODAY + timedelta(days=7))
    )
    call = Call(
        patient_id=patient.id,
        queue_date=TODAY,
        priority=1.0,
        status=CallStatus.IN_PROGRESS,
        taken_by=holder.id,
        taken_at=TEST_NOW,
        lease_expires_at=TEST_NOW + timedelta(minutes=20),
    )
    session.add(call)
    session.flush()
    return Seen(patient.id, appointment.id, call.id)


def _reads_written(app: FastAPI, session: Session, url: Url) -> tuple[Seen, int, list[AuditEvent]]:
    manager = create_user(session, role=Role.MANAGER)
    seen = _seen(session)
    session.commit()
    with TestClient(app) as client:
        sign_in(client, manager.username)
        before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        session.rollback()
        response = client.get(url(seen), follow_redirects=False)
    rows = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > (before or 0), AuditEvent.action.in_(READ_ACTIONS))
            .order_by(AuditEvent.id)
        )
    )
    assert all(row.user_id == manager.id for row in rows)
    return seen, response.status_code, rows


def _assert_one_read_naming(seen: Seen, status: int, rows: list[AuditEvent], path: str) -> None:
    assert status == 200, path
    assert len(rows) == 1, (path, [row.action for row in rows])
    named = {rows[0].patient_id} | set((rows[0].detail or {}).get("patient_ids", []))
    if "{" in path:  # one record: the row names its patient
        assert seen.patient_id in named, path


@pytest.mark.parametrize("path", sorted(PATIENT_READ_ROUTES))
def test_each_patient_level_read_writes_one_counted_audit_row(
    app: FastAPI, session: Session, path: str
) -> None:
    _assert_one_read_naming(*_reads_written(app, session, PATIENT_READ_ROUTES[path]), path)
