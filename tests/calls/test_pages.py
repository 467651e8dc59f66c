"""The calls pages over HTTP: what navigators and managers see, CSRF and role refusal, the
NHS-style error summary with nothing saved, stale forms, and the audit trail."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.bookings.tables import BookingRequest
from app.calls.queue import build_queue
from app.calls.tables import Call, CallOutcome
from app.clock import FixedClock
from app.settings import Settings
from app.sms.tables import SmsMessage
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment, working_day_ahead
from tests.clock import CALENDAR
from tests.factories import create_clinic, create_patient


def _queue_today(
    session: Session, settings: Settings, clock: FixedClock, patients: int = 1
) -> list[int]:
    today = CALENDAR.today(clock.now())
    start = CALENDAR.at(today + timedelta(days=7), time(12))
    ids = []
    for i in range(patients):
        appointment = create_eligible_appointment(
            session,
            patient=create_patient(
                session, given_name="Ada", family_name=f"Lovelace{i}", learning_disability=True
            ),
            risk=0.4 + i / 10,
            start_at=start,
        )
        ids.append(appointment.id)
    build_queue(
        session,
        settings.model_copy(update={"calls_holdout_share": 0.0}),
        today,
        now=clock.now(),
    )
    session.commit()
    return ids


def _signed_in(session: Session, client: TestClient, role: Role = Role.NAVIGATOR) -> str:
    user = create_user(session, role=role)
    session.commit()
    return sign_in(client, user.username)


def _take(client: TestClient, csrf: str) -> int:
    response = client.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    match = re.fullmatch(r"/calls/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def _answer(client: TestClient, csrf: str, call_id: int) -> None:
    response = client.post(
        f"/calls/{call_id}/attempts",
        data={"csrf_token": csrf, "result": "answered", "channel": "mobile"},
        follow_redirects=False,
    )
    assert response.status_code == 303


def _answered_call(
    session: Session, settings: Settings, client: TestClient, clock: FixedClock
) -> tuple[int, str, int]:
    """One appointment queued; a navigator signed in has taken its call and reached the
    patient. (appointment id, CSRF token, call id)"""
    (appointment_id,) = _queue_today(session, settings, clock)
    csrf = _signed_in(session, client)
    call_id = _take(client, csrf)
    _answer(client, csrf, call_id)
    return appointment_id, csrf, call_id


def _rebook_form(
    csrf: str, appointment_id: int, day: date, clock: str, **extra: object
) -> dict[str, object]:
    """The outcome form choosing "rebooked" for one appointment, with the new date and time."""
    return {
        "csrf_token": csrf,
        f"decision-{appointment_id}": "rebooked",
        f"rebook-{appointment_id}-day": str(day.day),
        f"rebook-{appointment_id}-month": str(day.month),
        f"rebook-{appointment_id}-year": str(day.year),
        f"rebook-{appointment_id}-time": clock,
        **extra,
    }


def test_the_queue_page_shows_counts_and_a_take_next_button(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, patients=2)
    _signed_in(session, app_client)

    page = app_client.get("/queue")

    assert page.status_code == 200
    assert "My queue for today" in page.text
    assert re.search(r'data-testid="count-to-call">\s*2\s*<', page.text)
    assert "Take next call" in page.text
    assert 'href="/history"' in page.text  # the navigation links the navigator's pages
    assert 'href="/manage/queues"' not in page.text


def test_the_call_screen_shows_what_the_call_needs_and_never_the_probability(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)

    page = app_client.get(f"/calls/{call_id}")

    assert page.status_code == 200
    assert "Ada Lovelace0" in page.text
    assert "1 January 1980" in page.text  # date of birth for the identity check
    assert "Learning disability" in page.text
    assert "Missed an appointment before" in page.text
    assert "only for offering help" in page.text
    assert "0.4" not in page.text  # the raw risk is never shown
    assert "<legend" in page.text
    assert "BSL interpreter booked" in page.text
    viewed = session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "patient.viewed_via_call")
    )
    assert viewed == 1


def test_rebooked_with_bsl_is_saved_completes_the_call_and_shows_in_history(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)
    new_day = working_day_ahead(clock, 20)

    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data=_rebook_form(
            csrf, appointment_id, new_day, "14:30", other=["bsl_interpreter"], complete="yes"
        ),
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/queue?notice=completed"
    session.expire_all()
    kinds = session.scalars(select(CallOutcome.kind).where(CallOutcome.call_id == call_id))
    assert sorted(kinds) == ["bsl_interpreter", "rebooked"]
    assert session.get_one(Call, call_id).status == "completed"
    sms = sorted(session.scalars(select(SmsMessage.kind)))
    assert sms == ["confirm_support"]  # the rebooking is confirmed once the PAS books it
    recorded = session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "call.outcome_recorded")
    )
    assert recorded == 2
    patient_id = session.get_one(Call, call_id).patient_id
    session.rollback()
    history = app_client.get("/history")
    assert "Rebooking requested; BSL interpreter booked" in history.text
    patient = app_client.get(f"/patients/{patient_id}/history")
    assert patient.status_code == 200
    assert "Confirm support" in patient.text  # the texts sent about the appointments
    # The time asked for, in local wall-clock time as it was typed (never UTC or ISO 8601).
    assert f"asked for {new_day.day} {new_day:%b %Y} 14:30" in patient.text
    assert "+00:00" not in patient.text


def test_a_rebooking_can_move_the_appointment_to_another_clinic_of_the_same_specialty(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    (appointment_id,) = _queue_today(session, settings, clock)
    other_site = create_clinic(
        session, code="GLEN-CARD", site="Glenfield Hospital", specialty_code="120"
    )
    create_clinic(session, code="OTHER-SPEC", site="Glenfield Hospital", specialty_code="330")
    other_code = other_site.code
    csrf = _signed_in(session, app_client)
    call_id = _take(app_client, csrf)
    _answer(app_client, csrf, call_id)

    screen = app_client.get(f"/calls/{call_id}").text
    assert f'name="rebook-{appointment_id}-clinic"' in screen
    assert "Glenfield Hospital: GLEN-CARD" in screen
    assert "OTHER-SPEC" not in screen  # only clinics of the appointment's specialty

    new_day = working_day_ahead(clock, 21)
    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data=_rebook_form(
            csrf,
            appointment_id,
            new_day,
            "10:15",
            complete="yes",
            **{f"rebook-{appointment_id}-clinic": other_code},
        ),
        follow_redirects=False,
    )

    assert response.status_code == 303, response.text
    session.expire_all()
    old = session.get_one(Appointment, appointment_id)
    assert old.attendance_code == "0"  # stays booked until the PAS moves it
    request = session.scalars(select(BookingRequest)).one()
    assert request.appointment_id == appointment_id
    assert request.clinic_id is not None
    assert session.get_one(Clinic, request.clinic_id).code == other_code


def test_a_rebooking_into_a_clinic_that_does_not_exist_is_refused_at_that_field(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)
    new_day = working_day_ahead(clock, 21)

    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data=_rebook_form(
            csrf,
            appointment_id,
            new_day,
            "10:15",
            **{f"rebook-{appointment_id}-clinic": "NO-SUCH-CLINIC"},
        ),
    )

    assert response.status_code == 422
    assert f'href="#rebook-{appointment_id}-clinic"' in response.text
    assert "No clinic with that code." in response.text
    session.expire_all()
    assert session.scalars(select(CallOutcome)).all() == []


def test_contradictory_outcomes_show_the_error_summary_and_save_nothing(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)

    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={
            "csrf_token": csrf,
            f"decision-{appointment_id}": "confirmed",
            "other": ["travel_costs", "declined_help", "spoken_interpreter"],
            "language": "Polish!",
            "complete": "yes",
        },
    )

    assert response.status_code == 422
    assert "nhsuk-error-summary" in response.text
    assert "Declined help cannot go with support that was arranged." in response.text
    assert 'href="#language"' in response.text
    assert "<title>Error: " in response.text
    assert session.scalar(select(func.count(CallOutcome.id))) == 0
    assert session.get_one(Call, call_id).status == "in_progress"


def test_a_rebooking_without_a_real_date_is_refused_with_a_linked_error(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)

    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data={
            "csrf_token": csrf,
            f"decision-{appointment_id}": "rebooked",
            f"rebook-{appointment_id}-day": "31",
            f"rebook-{appointment_id}-month": "2",
            f"rebook-{appointment_id}-year": "2027",
            f"rebook-{appointment_id}-time": "25:00",
        },
    )

    assert response.status_code == 422
    assert f'href="#rebook-{appointment_id}"' in response.text
    assert session.scalar(select(func.count(CallOutcome.id))) == 0


def test_a_stale_form_for_a_call_completed_elsewhere_is_refused_clearly(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)
    form = {"csrf_token": csrf, f"decision-{appointment_id}": "confirmed", "complete": "yes"}
    assert app_client.post(f"/calls/{call_id}/outcomes", data=form).status_code == 200

    again = app_client.post(f"/calls/{call_id}/outcomes", data=form)

    assert again.status_code == 409
    assert "already been completed" in again.text
    assert "Nothing was saved" in again.text
    assert session.scalar(select(func.count(CallOutcome.id))) == 1


def test_forms_without_the_csrf_token_are_refused(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    _signed_in(session, app_client)

    response = app_client.post("/queue/next", data={}, follow_redirects=False)

    assert response.status_code == 403
    assert session.scalar(select(func.count(Call.id)).where(Call.taken_by.is_not(None))) == 0


def test_a_navigator_cannot_open_manager_pages_or_another_navigators_call(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    first = _signed_in(session, app_client)
    call_id = _take(app_client, first)
    app_client.cookies.clear()
    _signed_in(session, app_client)

    assert app_client.get("/manage/queues").status_code == 403
    assert app_client.get("/manage/scripts").status_code == 403
    refused = app_client.get(f"/calls/{call_id}")
    assert refused.status_code == 404  # another navigator's call does not exist for them
    assert "Ada" not in refused.text


def test_a_manager_sees_the_overview_and_saves_a_new_script_version(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, patients=2)
    csrf = _signed_in(session, app_client, Role.MANAGER)

    overview = app_client.get("/manage/queues")
    assert overview.status_code == 200
    assert "Held out (comparison group)" in overview.text
    listing = app_client.get("/manage/scripts")
    slug = re.search(r'href="/manage/scripts/([a-z0-9-]+)"', listing.text)
    assert slug is not None
    path = f"/manage/scripts/{slug.group(1)}"

    preview = app_client.post(
        path, data={"csrf_token": csrf, "action": "preview", "body": "# New\n\n- <b>ask</b>"}
    )
    assert "<li>&lt;b&gt;ask&lt;/b&gt;</li>" in preview.text  # HTML shown, never run
    assert "Current version: 1." in preview.text
    saved = app_client.post(path, data={"csrf_token": csrf, "action": "save", "body": "# New\n"})
    assert "Current version: 2." in saved.text
    empty = app_client.post(path, data={"csrf_token": csrf, "action": "save", "body": "  "})
    assert empty.status_code == 422
    assert "Enter the document text." in empty.text


def test_a_navigator_marks_an_sms_reply_task_done_from_the_queue_and_via_the_api(
    app_client: TestClient, session: Session
) -> None:
    from app.tasks.tables import NavigatorTask, TaskStatus

    patient = create_patient(session, given_name="Grace", family_name="Hopper")
    tasks = [
        NavigatorTask(
            kind="rebook_request",
            patient_id=patient.id,
            source="sms",
            source_ref=f"SM{n}",
            detail="Asked for another day",
        )
        for n in range(2)
    ]
    session.add_all(tasks)
    session.commit()
    first_id, second_id = tasks[0].id, tasks[1].id
    session.rollback()
    csrf = _signed_in(session, app_client)
    queue = app_client.get("/queue")
    assert "Grace Hopper" not in queue.text  # the queue shows a count linking to the tasks
    assert '<a href="/tasks">2 open tasks</a>' in queue.text
    page = app_client.get("/tasks")
    assert "Grace Hopper" in page.text
    assert "Asked for another day" in page.text

    done = app_client.post(f"/tasks/{first_id}/done", data={"csrf_token": csrf})
    again = app_client.post(f"/tasks/{first_id}/done", data={"csrf_token": csrf})
    api = app_client.post(f"/api/calls/tasks/{second_id}/done", headers={"X-CSRF-Token": csrf})
    no_csrf = app_client.post(f"/api/calls/tasks/{second_id}/done")

    assert "The task was marked done." in done.text
    assert again.status_code == 409
    assert api.status_code == 200
    assert api.json()["id"] == second_id
    assert no_csrf.status_code == 403
    statuses = set(session.scalars(select(NavigatorTask.status)))
    assert statuses == {TaskStatus.DONE}


def _sunday_ahead(clock: FixedClock, weeks: int) -> date:
    day = CALENDAR.today(clock.now()) + timedelta(weeks=weeks)
    return day + timedelta(days=(6 - day.weekday()) % 7)


@pytest.mark.parametrize(
    ("when", "clock_time", "field", "message"),
    [
        ("sunday", "03:00", "", "is a Sunday: clinics run on Monday, Tuesday"),
        ("weekday", "03:00", "-time", "must be between 08:00 and 18:00"),
        ("weekday", "18:00", "-time", "must be between 08:00 and 18:00"),
        ("far", "10:00", "", "must be within 26 weeks"),
        ("past", "10:00", "", "must be in the future"),
        ("weekday", "25:99", "-time", "real time on the 24-hour clock"),
    ],
)
def test_a_rebooking_outside_clinic_sessions_is_refused_at_the_field_and_nothing_is_saved(
    app_client: TestClient,
    session: Session,
    settings: Settings,
    clock: FixedClock,
    when: str,
    clock_time: str,
    field: str,
    message: str,
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)
    today = CALENDAR.today(clock.now())
    day = {
        "sunday": _sunday_ahead(clock, 2),
        "weekday": working_day_ahead(clock, 14),
        "far": working_day_ahead(clock, 7 * 27),
        "past": today - timedelta(days=7),
    }[when]

    response = app_client.post(
        f"/calls/{call_id}/outcomes",
        data=_rebook_form(csrf, appointment_id, day, clock_time, complete="yes"),
    )

    assert response.status_code == 422
    summary = response.text.split('class="nhsuk-error-summary', 1)[1].split("</div>", 2)[0]
    assert f'href="#rebook-{appointment_id}{field}"' in summary
    assert message in summary
    session.expire_all()
    assert session.scalar(select(func.count(CallOutcome.id))) == 0
    assert session.get_one(Call, call_id).status == "in_progress"


def test_an_impossible_date_and_time_are_both_reported(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client, clock)
    form = _rebook_form(csrf, appointment_id, working_day_ahead(clock, 14), "25:99")
    form[f"rebook-{appointment_id}-day"] = "31"
    form[f"rebook-{appointment_id}-month"] = "2"

    response = app_client.post(f"/calls/{call_id}/outcomes", data=form)

    assert response.status_code == 422
    assert f'href="#rebook-{appointment_id}"' in response.text
    assert f'href="#rebook-{appointment_id}-time"' in response.text
    assert "real time on the 24-hour clock" in response.text


def test_no_answer_says_when_the_call_comes_back_in_local_time(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    # The evening shift signed in this morning (or, with the clock just after midnight, last
    # night): the session limits are fixed at sign-in, so they are raised first.
    settings.session_idle_minutes = 24 * 60
    settings.session_absolute_hours = 24
    csrf = _signed_in(session, app_client)
    # A late-evening attempt: the callback is the next working morning at 09:00 local.
    clock.set(CALENDAR.at(CALENDAR.today(clock.now()), time(21, 30)))
    call_id = _take(app_client, csrf)

    response = app_client.post(
        f"/calls/{call_id}/attempts",
        data={"csrf_token": csrf, "result": "no_answer", "channel": "mobile"},
    )

    back = CALENDAR.local(CALENDAR.next_working_morning(clock.now()))
    assert response.status_code == 200
    assert f"Call {call_id} comes back for a callback on {back:%A %-d %B} at 09:00." in (
        response.text
    )


def _summary_value(html: str, key: str) -> str:
    found = re.search(
        rf'<dt class="nhsuk-summary-list__key">{re.escape(key)}</dt>'
        r'<dd class="nhsuk-summary-list__value">([^<]*)</dd>',
        html,
    )
    assert found, key
    return found.group(1)


def test_a_manager_looks_back_at_an_earlier_days_queues(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    today = CALENDAR.today(clock.now())
    yesterday = today - timedelta(days=1)
    create_eligible_appointment(
        session,
        patient=create_patient(session, learning_disability=True),
        risk=0.6,
        start_at=CALENDAR.at(yesterday + timedelta(days=7), time(12)),
    )
    build_queue(
        session,
        settings.model_copy(update={"calls_holdout_share": 0.0}),
        yesterday,
        now=clock.now() - timedelta(days=1),
    )
    session.commit()
    _signed_in(session, app_client, Role.MANAGER)

    now_page = app_client.get("/manage/queues")
    earlier = app_client.get(
        f"/manage/queues?date-day={yesterday.day}&date-month={yesterday.month}"
        f"&date-year={yesterday.year}"
    )

    assert _summary_value(now_page.text, "Calls queued today") == "0"
    assert _summary_value(now_page.text, "To call") == "1"  # carried over, still open
    assert 'data-testid="previous-day"' in now_page.text
    assert 'data-testid="next-day"' not in now_page.text
    assert earlier.status_code == 200
    assert f"Call queues on {yesterday:%A %-d %B %Y}" in earlier.text
    assert _summary_value(earlier.text, "Calls queued that day") == "1"
    # Reassigning and who is on a call now belong to today only.
    assert 'data-testid="reassign-form"' not in earlier.text
    assert '<a href="/manage/queues" data-testid="next-day">Next day</a>' in earlier.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date-day=31&date-month=2&date-year=2026", "The day must be a real date"),
        ("date-day=1&date-month=1&date-year=2099", "The day must be today or earlier"),
        ("date-day=1&date-month=1&date-year=2001", "The day must be within the last 366 days"),
    ],
)
def test_a_day_the_queues_page_cannot_show_is_named_in_the_error_summary(
    app_client: TestClient, session: Session, query: str, message: str
) -> None:
    _signed_in(session, app_client, Role.MANAGER)

    page = app_client.get(f"/manage/queues?{query}")

    assert page.status_code == 422
    assert f'<li><a href="#date">{message}' in page.text
    assert 'id="date"' in page.text
    assert "Call queues today" in page.text
