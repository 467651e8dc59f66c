"""Leases that follow the person: a long call (an interpreter call of 35 minutes) keeps its
outcomes. The open call screen renews the lease; a lapsed call nobody else took is simply
kept; a call a colleague took meanwhile keeps what was typed and offers a clear choice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls.queue import build_queue
from app.calls.tables import Call, CallOutcome
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.clock import CALENDAR
from tests.factories import create_patient

LEASE_MINUTES = 20


@pytest.fixture
def lease_settings(settings: Settings) -> Settings:
    # The session outlives the lease here (no heartbeat keeps it alive): the lease is under test.
    return settings.model_copy(
        update={"calls_lease_minutes": LEASE_MINUTES, "session_idle_minutes": 120}
    )


@pytest.fixture
def navigator(
    lease_settings: Settings, database: Database, clock: FixedClock
) -> Iterator[TestClient]:
    with TestClient(create_app(lease_settings, database, clock=clock)) as client:
        yield client


@pytest.fixture
def colleague(
    lease_settings: Settings, database: Database, clock: FixedClock
) -> Iterator[TestClient]:
    with TestClient(create_app(lease_settings, database, clock=clock)) as client:
        yield client


def _queue_one(session: Session, settings: Settings, clock: FixedClock) -> int:
    today = CALENDAR.today(clock.now())
    appointment = create_eligible_appointment(
        session,
        patient=create_patient(session, interpreter_needed=True, preferred_language="pl"),
        start_at=CALENDAR.at(today + timedelta(days=7), time(11)),
    )
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), today, now=clock.now()
    )
    session.commit()
    appointment_id = appointment.id
    session.rollback()
    return appointment_id


def _sign_in(session: Session, client: TestClient, username: str) -> str:
    create_user(session, role=Role.NAVIGATOR, username=username)
    session.commit()
    return sign_in(client, username)


def _take_and_answer(client: TestClient, csrf: str) -> int:
    taken = client.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
    match = re.fullmatch(r"/calls/(\d+)", taken.headers["location"])
    assert match, taken.headers["location"]
    call_id = int(match.group(1))
    answered = client.post(
        f"/calls/{call_id}/attempts",
        data={"csrf_token": csrf, "result": "answered", "channel": "mobile"},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    return call_id


def _outcomes_form(csrf: str, appointment_id: int) -> dict[str, object]:
    return {
        "csrf_token": csrf,
        f"decision-{appointment_id}": "confirmed",
        "other": ["spoken_interpreter"],
        "language": "pl",
        "complete": "yes",
    }


def _saved_kinds(session: Session) -> list[str]:
    kinds = sorted(session.scalars(select(CallOutcome.kind)))
    session.rollback()
    return kinds


def test_the_open_call_screen_keeps_a_35_minute_call_and_its_outcomes(
    navigator: TestClient,
    colleague: TestClient,
    session: Session,
    lease_settings: Settings,
    clock: FixedClock,
) -> None:
    appointment_id = _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.interpreter")
    colleague_csrf = _sign_in(session, colleague, "nav.colleague")
    call_id = _take_and_answer(navigator, csrf)
    screen = navigator.get(f"/calls/{call_id}").text
    assert 'src="/static/js/call-lease.js"' in screen
    assert f'data-heartbeat-url="/api/calls/{call_id}/heartbeat"' in screen
    assert f'data-seconds-left="{LEASE_MINUTES * 60}"' in screen  # the page times from this

    for _ in range(7):  # 35 minutes, the screen's heartbeat renewing the lease on the way
        now = clock.advance(minutes=5)
        beat = navigator.post(f"/api/calls/{call_id}/heartbeat", headers={"X-CSRF-Token": csrf})
        assert beat.status_code == 200
        assert datetime.fromisoformat(beat.json()["lease_expires_at"]) == now + timedelta(
            minutes=LEASE_MINUTES
        )
        assert beat.json()["lease_seconds_left"] == LEASE_MINUTES * 60
        offered = colleague.post(
            "/queue/next", data={"csrf_token": colleague_csrf}, follow_redirects=False
        )
        assert offered.headers["location"] == "/queue?notice=empty"  # never the held call

    saved = navigator.post(
        f"/calls/{call_id}/outcomes",
        data=_outcomes_form(csrf, appointment_id),
        follow_redirects=False,
    )

    assert saved.status_code == 303
    assert saved.headers["location"] == "/queue?notice=completed"
    assert _saved_kinds(session) == ["confirmed", "spoken_interpreter"]


def test_a_lapsed_call_nobody_took_is_kept_silently_and_its_outcomes_saved(
    navigator: TestClient, session: Session, lease_settings: Settings, clock: FixedClock
) -> None:
    appointment_id = _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.nojs")
    call_id = _take_and_answer(navigator, csrf)

    clock.advance(minutes=35)  # no heartbeat at all (no JavaScript): the lease lapsed
    queue = navigator.get("/queue").text
    assert f"Go back to call {call_id}" in queue  # still theirs
    saved = navigator.post(
        f"/calls/{call_id}/outcomes",
        data=_outcomes_form(csrf, appointment_id),
        follow_redirects=False,
    )

    assert saved.headers["location"] == "/queue?notice=completed"
    assert _saved_kinds(session) == ["confirmed", "spoken_interpreter"]


def test_taking_the_next_call_after_a_lapse_gives_the_navigator_their_own_call_back(
    navigator: TestClient, session: Session, lease_settings: Settings, clock: FixedClock
) -> None:
    _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.back")
    call_id = _take_and_answer(navigator, csrf)
    now = clock.advance(minutes=35)

    again = navigator.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)

    assert again.headers["location"] == f"/calls/{call_id}"
    session.expire_all()
    assert session.get_one(Call, call_id).lease_expires_at == now + timedelta(minutes=LEASE_MINUTES)
    session.rollback()


def test_when_a_colleague_took_the_lapsed_call_the_outcomes_are_kept_with_a_choice(
    navigator: TestClient,
    colleague: TestClient,
    session: Session,
    lease_settings: Settings,
    clock: FixedClock,
) -> None:
    appointment_id = _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.slow")
    colleague_csrf = _sign_in(session, colleague, "nav.quick")
    call_id = _take_and_answer(navigator, csrf)
    clock.advance(minutes=35)
    taken = colleague.post(
        "/queue/next", data={"csrf_token": colleague_csrf}, follow_redirects=False
    )
    assert taken.headers["location"] == f"/calls/{call_id}"

    refused = navigator.post(
        f"/calls/{call_id}/outcomes", data=_outcomes_form(csrf, appointment_id)
    )

    assert refused.status_code == 409
    assert "Your outcomes are not saved yet" in refused.text
    assert "nav.quick took it" in refused.text
    assert "Confirmed: the patient will attend" in refused.text
    assert "Spoken-language interpreter booked: Polish" in refused.text  # by name
    assert "Take the call back and save my outcomes" in refused.text
    assert "Leave the call with nav.quick" in refused.text
    assert _saved_kinds(session) == []
    beat = navigator.post(f"/api/calls/{call_id}/heartbeat", headers={"X-CSRF-Token": csrf})
    assert beat.status_code == 409
    assert "colleague took this call" in beat.json()["detail"]

    # The choice: take it back (the colleague has done nothing on it yet) and save.
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', refused.text))
    assert hidden["take_back"] == "yes"
    form = _outcomes_form(csrf, appointment_id) | {"take_back": "yes"}
    saved = navigator.post(f"/calls/{call_id}/outcomes", data=form, follow_redirects=False)

    assert saved.headers["location"] == "/queue?notice=completed"
    assert _saved_kinds(session) == ["confirmed", "spoken_interpreter"]
    taken_back = session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "call.taken_back")
    )
    session.rollback()
    assert taken_back == 1
    gone = colleague.post(
        f"/api/calls/{call_id}/heartbeat", headers={"X-CSRF-Token": colleague_csrf}
    )
    # The colleague only held it for a moment and did nothing on it: it is no longer theirs to
    # see, and their open screen is told it no longer holds the call.
    assert gone.status_code == 404


def test_a_call_the_colleague_has_started_on_stays_with_them(
    navigator: TestClient,
    colleague: TestClient,
    session: Session,
    lease_settings: Settings,
    clock: FixedClock,
) -> None:
    appointment_id = _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.late")
    colleague_csrf = _sign_in(session, colleague, "nav.onit")
    call_id = _take_and_answer(navigator, csrf)
    clock.advance(minutes=35)
    assert _take_and_answer(colleague, colleague_csrf) == call_id

    refused = navigator.post(
        f"/calls/{call_id}/outcomes", data=_outcomes_form(csrf, appointment_id)
    )
    assert refused.status_code == 409
    assert "Confirmed: the patient will attend" in refused.text
    assert "Take the call back" not in refused.text
    assert "nav.onit has already started working on it" in refused.text
    forced = navigator.post(
        f"/calls/{call_id}/outcomes",
        data=_outcomes_form(csrf, appointment_id) | {"take_back": "yes"},
    )

    assert forced.status_code == 409
    assert _saved_kinds(session) == []


def test_the_heartbeat_of_a_call_never_held_is_404_and_needs_the_csrf_token(
    navigator: TestClient,
    colleague: TestClient,
    session: Session,
    lease_settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_one(session, lease_settings, clock)
    csrf = _sign_in(session, navigator, "nav.holder")
    other_csrf = _sign_in(session, colleague, "nav.nosy")
    call_id = _take_and_answer(navigator, csrf)

    assert (
        colleague.post(
            f"/api/calls/{call_id}/heartbeat", headers={"X-CSRF-Token": other_csrf}
        ).status_code
        == 404
    )
    assert navigator.post(f"/api/calls/{call_id}/heartbeat").status_code == 403
