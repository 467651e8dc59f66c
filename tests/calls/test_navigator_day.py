"""A navigator's real working day through the pages and the API: notes, someone else
answering, "call me back at 3pm", the identity check, written and video relay attempts,
letters for patients without a phone, release, reassignment, same-day corrections, my counts
apart from the team's, tomorrow's list, the success banner and interpreter languages by name."""

from __future__ import annotations

import logging
import re
from datetime import time, timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.bookings.tables import BookingRequest
from app.calls.queue import build_queue
from app.calls.service import overview
from app.calls.tables import (
    Call,
    CallAttempt,
    CallNote,
    CallOutcome,
    CallOutcomeChange,
    CallStatus,
)
from app.clock import FixedClock
from app.patients.tables import Patient
from app.settings import Settings
from app.tasks.tables import NavigatorTask, TaskKind
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment, working_day_ahead
from tests.clock import CALENDAR
from tests.factories import create_patient


def _queue_today(
    session: Session,
    settings: Settings,
    clock: FixedClock,
    risk_patients: int = 0,
    **patient: object,
) -> int:
    """One patient (Ada Lovelace) queued today, plus `risk_patients` lower-priority others;
    the appointment id of Ada's."""
    today = CALENDAR.today(clock.now())
    for _ in range(risk_patients):
        create_eligible_appointment(
            session, risk=0.35, start_at=CALENDAR.at(today + timedelta(days=7), time(12))
        )
    appointment = create_eligible_appointment(
        session,
        patient=create_patient(session, given_name="Ada", family_name="Lovelace", **patient),
        start_at=CALENDAR.at(today + timedelta(days=7), time(12)),
    )
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), today, now=clock.now()
    )
    session.commit()
    return appointment.id


def _signed_in(session: Session, client: TestClient, role: Role = Role.NAVIGATOR) -> str:
    user = create_user(session, role=role)
    session.commit()
    return sign_in(client, user.username)


def _take(client: TestClient, csrf: str) -> int:
    response = client.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
    match = re.fullmatch(r"/calls/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def _attempt(client: TestClient, csrf: str, call_id: int, **fields: str) -> Response:
    return client.post(
        f"/calls/{call_id}/attempts",
        data={"csrf_token": csrf, "channel": "mobile", **fields},
        follow_redirects=False,
    )


def _call(session: Session, call_id: int) -> SimpleNamespace:
    """What the call is now, read and released at once (the app writes in its own sessions)."""
    session.expire_all()
    call = session.get_one(Call, call_id)
    seen = SimpleNamespace(
        status=call.status,
        taken_by=call.taken_by,
        next_attempt_at=call.next_attempt_at,
        patient_id=call.patient_id,
    )
    session.rollback()
    return seen


# --- notes -----------------------------------------------------------------------------------


def test_a_note_is_saved_shown_in_the_history_and_never_logged(
    app_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    text = "Prefers calls after school pick-up; daughter interprets"

    with caplog.at_level(logging.DEBUG):
        saved = app_client.post(
            f"/calls/{call_id}/notes",
            data={"csrf_token": csrf, "note": text},
            follow_redirects=False,
        )

    assert saved.status_code == 303
    screen = app_client.get(saved.headers["location"])
    assert 'data-testid="success-banner"' in screen.text
    assert "The note was saved." in screen.text
    assert text in screen.text
    patient_id = _call(session, call_id).patient_id
    session.rollback()
    history = app_client.get(f"/patients/{patient_id}/history")
    assert text in history.text
    assert text not in caplog.text
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "call.note_added")).one()
    assert text not in str(audit.detail)


def test_an_empty_note_is_refused_with_an_error_summary_and_nothing_saved(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    refused = app_client.post(f"/calls/{call_id}/notes", data={"csrf_token": csrf, "note": "  "})

    assert refused.status_code == 422
    assert "nhsuk-error-summary" in refused.text
    assert 'href="#note"' in refused.text
    assert session.scalar(select(func.count(CallNote.id))) == 0


# --- someone else, call me back ---------------------------------------------------------------


def test_someone_else_answered_brings_the_call_back_and_keeps_the_number(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    assert "Someone else picked up" in app_client.get(f"/calls/{call_id}").text

    response = _attempt(app_client, csrf, call_id, result="someone_else")

    assert response.status_code == 303
    assert "notice=retry" in response.headers["location"]
    call = _call(session, call_id)
    assert call.status == CallStatus.RETRY
    assert not session.get_one(Patient, call.patient_id).mobile_phone_invalid


def test_call_me_back_at_three_brings_the_call_back_at_that_local_time(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    # Signed in until the next working day's afternoon (up to a weekend away).
    settings.session_idle_minutes = 7 * 24 * 60
    settings.session_absolute_hours = 7 * 24
    _queue_today(session, settings, clock, risk_patients=2)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    day = working_day_ahead(clock, 1)

    response = _attempt(
        app_client,
        csrf,
        call_id,
        result="call_back",
        **{
            "callback-time": "15:00",
            "callback-date": f"{day.day}/{day.month}/{day.year}",
        },
    )

    assert response.status_code == 303
    call = _call(session, call_id)
    assert call.status == CallStatus.RETRY
    assert call.next_attempt_at == CALENDAR.at(day, time(15))
    queue = app_client.get(response.headers["location"])
    assert f"on {day:%A} {day.day} {day:%B} at 15:00" in queue.text
    clock.set(CALENDAR.at(day, time(14, 59)))
    session.rollback()
    assert _take(app_client, csrf) != call_id  # not before the time asked for
    app_client.post("/queue/next", data={"csrf_token": csrf})
    clock.set(CALENDAR.at(day, time(15)))
    other = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    second = sign_in(app_client, other.username)
    assert _take(app_client, second) == call_id  # due at 15:00: callbacks come first


@pytest.mark.parametrize("hour", [7, 19])
def test_a_callback_outside_working_hours_names_the_field_and_saves_nothing(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock, hour: int
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    day = working_day_ahead(clock, 1)

    refused = _attempt(
        app_client,
        csrf,
        call_id,
        result="call_back",
        **{
            "callback-time": f"{hour:02d}:00",
            "callback-date": f"{day.day}/{day.month}/{day.year}",
        },
    )

    assert refused.status_code == 422
    assert "nhsuk-error-summary" in refused.text
    assert 'href="#callback-time"' in refused.text
    assert "between 09:00 and 17:00" in refused.text
    assert _call(session, call_id).status == CallStatus.IN_PROGRESS
    assert session.scalar(select(func.count(CallAttempt.id))) == 0


def test_an_impossible_callback_time_is_named(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    refused = _attempt(app_client, csrf, call_id, result="call_back", **{"callback-time": "25:99"})

    assert refused.status_code == 422
    assert 'href="#callback-time"' in refused.text
    assert session.scalar(select(func.count(CallAttempt.id))) == 0


# --- identity ---------------------------------------------------------------------------------


def test_identity_confirmed_then_outcomes_are_recorded(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="answered")
    assert 'data-testid="identity-form"' in app_client.get(f"/calls/{call_id}").text

    confirmed = app_client.post(
        f"/calls/{call_id}/identity",
        data={"csrf_token": csrf, "identity": "confirmed"},
        follow_redirects=False,
    )

    assert confirmed.headers["location"] == f"/calls/{call_id}?notice=identity"
    screen = app_client.get(confirmed.headers["location"]).text
    assert "identity confirmed" in screen
    assert 'data-testid="identity-form"' not in screen
    assert _call(session, call_id).status == CallStatus.IN_PROGRESS


def test_identity_not_confirmed_never_marks_the_number_wrong(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="answered")

    response = app_client.post(
        f"/calls/{call_id}/identity",
        data={"csrf_token": csrf, "identity": "not_confirmed"},
        follow_redirects=False,
    )

    assert "notice=retry" in response.headers["location"]
    call = _call(session, call_id)
    assert call.status == CallStatus.RETRY
    patient = session.get_one(Patient, call.patient_id)
    assert not patient.mobile_phone_invalid
    assert session.scalar(select(func.count(NavigatorTask.id))) == 0


def test_the_script_no_longer_says_to_record_a_wrong_number_when_identity_fails(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    screen = app_client.get(f"/calls/{call_id}").text

    section = screen[screen.index("Check identity") : screen.index("Say why you are calling")]
    assert "record <em>wrong number</em>" not in section
    assert "record <em>identity not confirmed</em>" in section
    assert "Do not record a wrong number" in section


# --- other channels and patients without a phone ----------------------------------------------


def test_a_bsl_user_is_offered_video_relay_text_email_and_letter(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, communication_needs="bsl")
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    screen = app_client.get(f"/calls/{call_id}").text
    for label in ("Video relay (BSL)", "Text message", "Email", "Letter"):
        assert label in screen
    sent = _attempt(app_client, csrf, call_id, result="sent", channel="email")

    assert sent.status_code == 303
    call = _call(session, call_id)
    assert call.status == CallStatus.RETRY  # back the next working morning, for the reply
    assert call.next_attempt_at == CALENDAR.next_working_morning(clock.now())
    attempt = session.scalars(select(CallAttempt)).one()
    assert (attempt.result, attempt.channel) == ("sent", "email")


def test_a_letter_cannot_be_answered_and_a_text_cannot_ring_out(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, communication_needs="bsl")
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    letter = _attempt(app_client, csrf, call_id, result="answered", channel="letter")
    text = _attempt(app_client, csrf, call_id, result="no_answer", channel="sms")

    assert letter.status_code == 422
    assert 'href="#result"' in letter.text
    assert text.status_code == 422
    assert 'href="#channel"' in text.text
    assert session.scalar(select(func.count(CallAttempt.id))) == 0


def test_a_patient_with_no_phone_gets_a_letter_task_not_a_voice_call(
    session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings = settings.model_copy(update={"calls_holdout_share": 0.0})
    today = CALENDAR.today(clock.now())
    start = CALENDAR.at(today + timedelta(days=7), time(12))
    no_phone = create_eligible_appointment(
        session, patient=create_patient(session, mobile_phone=None), start_at=start
    )
    phoned = create_eligible_appointment(session, start_at=start)

    result = build_queue(session, settings, today, now=clock.now())
    again = build_queue(session, settings, today, now=clock.now())

    calls = {call.patient_id for call in session.scalars(select(Call))}
    assert calls == {phoned.patient_id}
    tasks = list(session.scalars(select(NavigatorTask)))
    assert [(task.kind, task.patient_id, task.appointment_id) for task in tasks] == [
        (TaskKind.SEND_LETTER, no_phone.patient_id, no_phone.id)
    ]
    assert result.letters_instead_of_calls == 1
    assert again.letters_instead_of_calls == 1
    assert len(tasks) == 1
    view = overview(session, settings, queue_date=today, now=clock.now())
    assert view.call_arm_waiting_beyond_capacity == 0  # written to, not waiting for a call


# --- the day around the calls -----------------------------------------------------------------


def test_my_counts_are_shown_apart_from_the_teams(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    today = CALENDAR.today(clock.now())
    start = CALENDAR.at(today + timedelta(days=7), time(12))
    for _ in range(3):
        create_eligible_appointment(session, start_at=start)
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), today, now=clock.now()
    )
    session.commit()
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="no_answer")

    page = app_client.get("/queue").text

    assert "You today" in page
    assert "The team today" in page
    assert re.search(r'data-testid="my-attempts">\s*1\s*<', page)
    assert re.search(r'data-testid="count-to-call">\s*3\s*<', page)  # the team: 2 + 1 callback
    api = app_client.get("/api/calls/queue").json()
    assert api["mine"]["attempts"] == 1
    assert api["counts"]["ready"] == 2


def test_tomorrows_list_shows_callbacks_due_then_and_changes_nothing(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    day = CALENDAR.next_working_day(CALENDAR.today(clock.now()))
    _attempt(
        app_client,
        csrf,
        call_id,
        result="call_back",
        **{
            "callback-time": "11:30",
            "callback-date": f"{day.day}/{day.month}/{day.year}",
        },
    )

    page = app_client.get("/queue/tomorrow")

    assert page.status_code == 200
    assert f"{day:%A} {day.day} {day:%B}" in page.text
    assert "11:30" in page.text
    assert "Ada Lovelace" in page.text  # this navigator worked the call
    assert "The patient asked to be called back then" in page.text
    assert "<form" not in page.text.split("<main", 1)[1].split("</main>")[0]
    api = app_client.get("/api/calls/tomorrow").json()
    assert [item["call_id"] for item in api["calls"]] == [call_id]
    assert _call(session, call_id).status == CallStatus.RETRY


def test_a_navigator_releases_a_call_back_to_the_queue(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    released = app_client.post(
        f"/calls/{call_id}/release", data={"csrf_token": csrf}, follow_redirects=False
    )

    assert released.headers["location"] == "/queue?notice=released"
    call = _call(session, call_id)
    assert (call.status, call.taken_by) == (CallStatus.READY, None)
    assert "went back to the queue" in app_client.get(released.headers["location"]).text
    assert session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "call.released")
    )


def test_a_manager_reassigns_a_call_to_a_navigator(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    navigator = create_user(session, role=Role.NAVIGATOR, username="nav.asha")
    session.commit()
    navigator_id = navigator.id
    csrf = _signed_in(session, app_client, Role.MANAGER)
    call_id = session.scalars(select(Call.id)).one()
    session.rollback()
    page = app_client.get("/manage/queues").text
    assert "nav.asha" in page

    missing = app_client.post(
        "/manage/calls/reassign", data={"csrf_token": csrf, "call": str(call_id)}
    )
    assert missing.status_code == 422
    assert 'href="#navigator"' in missing.text
    done = app_client.post(
        "/manage/calls/reassign",
        data={"csrf_token": csrf, "call": str(call_id), "navigator": str(navigator_id)},
        follow_redirects=False,
    )

    assert done.headers["location"] == "/manage/queues?notice=reassigned"
    call = _call(session, call_id)
    assert (call.status, call.taken_by) == (CallStatus.IN_PROGRESS, navigator_id)
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "call.reassigned")).one()
    assert audit.detail is not None
    assert audit.detail["to_user_id"] == navigator_id


def test_a_call_in_progress_is_reassigned_from_its_own_row(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    first = create_user(session, role=Role.NAVIGATOR, username="nav.first")
    second = create_user(session, role=Role.NAVIGATOR, username="nav.second")
    session.commit()
    first_id, second_id = first.id, second.id
    csrf = _signed_in(session, app_client, Role.MANAGER)
    call_id = session.scalars(select(Call.id)).one()
    session.rollback()
    app_client.post(
        "/manage/calls/reassign",
        data={"csrf_token": csrf, "call": str(call_id), "navigator": str(first_id)},
    )

    page = app_client.get("/manage/queues").text
    row_form = page.split(f'data-testid="reassign-{call_id}"', 1)[1].split("</form>", 1)[0]
    assert f'<label class="nhsuk-label nhsuk-u-visually-hidden" for="navigator-{call_id}">' in (
        row_form
    )
    assert f'<option value="{second_id}"' in row_form
    assert f'<option value="{first_id}"' not in row_form  # not to the navigator who has it
    moved = app_client.post(
        "/manage/calls/reassign",
        data={"csrf_token": csrf, "call": str(call_id), "navigator": str(second_id)},
        follow_redirects=False,
    )

    assert moved.headers["location"] == "/manage/queues?notice=reassigned"
    assert _call(session, call_id).taken_by == second_id


def test_a_navigator_cannot_reassign_calls(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    headers = {"X-CSRF-Token": _signed_in(session, app_client)}
    call_id = session.scalars(select(Call.id)).one()
    session.rollback()

    refused = app_client.post(
        f"/api/calls/{call_id}/reassign", json={"navigator_id": 1}, headers=headers
    )

    assert refused.status_code == 403


def _completed_with_confirmed_and_parking(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> tuple[int, int, str]:
    appointment_id = _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="answered")
    saved = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={
            "csrf_token": csrf,
            f"decision-{appointment_id}": "confirmed",
            "other": ["parking"],
            "complete": "yes",
        },
        follow_redirects=False,
    )
    assert saved.headers["location"] == "/queue?notice=completed"
    return call_id, appointment_id, csrf


def test_a_completed_calls_outcome_is_undone_the_same_day_and_the_old_version_kept(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    call_id, _appointment_id, csrf = _completed_with_confirmed_and_parking(
        app_client, session, settings, clock
    )
    parking_id = session.scalars(select(CallOutcome.id).where(CallOutcome.kind == "parking")).one()
    session.rollback()
    assert "Correct this call" in app_client.get(f"/calls/{call_id}").text

    undone = app_client.post(
        f"/calls/{call_id}/outcomes/{parking_id}/undo",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )

    assert undone.headers["location"] == f"/calls/{call_id}?notice=undone"
    session.expire_all()
    assert sorted(session.scalars(select(CallOutcome.kind))) == ["confirmed"]
    change = session.scalars(select(CallOutcomeChange)).one()
    assert (change.old_kind, change.change) == ("parking", "undone")
    session.rollback()
    screen = app_client.get(undone.headers["location"]).text
    assert "Undone" in screen
    assert "Parking arranged" in screen
    assert _call(session, call_id).status == CallStatus.COMPLETED
    corrected = app_client.post(
        f"/calls/{call_id}/corrections",
        data={"csrf_token": csrf, "other": ["transport"]},
        follow_redirects=False,
    )
    assert corrected.headers["location"] == f"/calls/{call_id}?notice=corrected"
    session.expire_all()
    assert sorted(session.scalars(select(CallOutcome.kind))) == ["confirmed", "transport"]
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"call.outcome_undone", "call.outcome_corrected"} <= actions


def test_undoing_a_rebooking_withdraws_the_booking_request(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id = _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="answered")
    new_day = working_day_ahead(clock, 20)
    app_client.post(
        f"/calls/{call_id}/outcomes",
        data={
            "csrf_token": csrf,
            f"decision-{appointment_id}": "rebooked",
            f"rebook-{appointment_id}-day": str(new_day.day),
            f"rebook-{appointment_id}-month": str(new_day.month),
            f"rebook-{appointment_id}-year": str(new_day.year),
            f"rebook-{appointment_id}-time": "10:00",
            "complete": "yes",
        },
    )
    outcome_id = session.scalars(select(CallOutcome.id)).one()
    session.rollback()

    undone = app_client.post(
        f"/calls/{call_id}/outcomes/{outcome_id}/undo",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )

    # The only outcome gone: the call is open again for the navigator to record what happened.
    assert undone.headers["location"] == f"/calls/{call_id}?notice=reopened"
    session.expire_all()
    assert session.scalars(select(BookingRequest.status)).one() == "withdrawn"
    session.rollback()
    call = _call(session, call_id)
    assert call.status == CallStatus.IN_PROGRESS
    confirmed = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={"csrf_token": csrf, f"decision-{appointment_id}": "confirmed", "complete": "yes"},
        follow_redirects=False,
    )
    assert confirmed.headers["location"] == "/queue?notice=completed"  # completed again, once


def test_a_completed_call_cannot_be_corrected_on_a_later_day(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    settings.session_idle_minutes = 2 * 24 * 60  # still signed in the next morning
    settings.session_absolute_hours = 2 * 24
    call_id, _appointment_id, csrf = _completed_with_confirmed_and_parking(
        app_client, session, settings, clock
    )
    outcome_id = session.scalars(select(CallOutcome.id)).first()
    session.rollback()
    clock.set(CALENDAR.at(CALENDAR.today(clock.now()) + timedelta(days=1), time(10)))
    headers = {"X-CSRF-Token": csrf}

    refused = app_client.post(f"/api/calls/{call_id}/outcomes/{outcome_id}/undo", headers=headers)

    assert refused.status_code == 409
    assert "on the day it was completed" in refused.json()["detail"]
    assert session.scalar(select(func.count(CallOutcome.id))) == 2
    session.rollback()
    assert "Correct this call" not in app_client.get(f"/calls/{call_id}").text


# --- language by name ------------------------------------------------------------------------


def test_the_interpreter_language_is_chosen_by_name_and_stored_as_its_code(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, interpreter_needed=True, preferred_language="pl")
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _attempt(app_client, csrf, call_id, result="answered")
    screen = app_client.get(f"/calls/{call_id}").text
    assert '<option value="Polish">' in screen

    saved = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={"csrf_token": csrf, "other": ["spoken_interpreter"], "language": "Polish"},
        follow_redirects=False,
    )
    refused = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={"csrf_token": csrf, "other": ["spoken_interpreter"], "language": "Elvish"},
    )

    assert saved.status_code == 303
    assert session.scalars(select(CallOutcome.detail)).one() == {"language": "pl"}
    session.rollback()
    assert "Spoken-language interpreter booked: Polish" in app_client.get(f"/calls/{call_id}").text
    assert refused.status_code == 422
    assert 'href="#language"' in refused.text
    assert "type its name, for example Polish" in refused.text
