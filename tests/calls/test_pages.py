"""The calls pages over HTTP: what navigators and managers see, CSRF and role refusal, the
NHS-style error summary with nothing saved, stale forms, and the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls.queue import build_queue
from app.calls.service import local_today
from app.calls.tables import Call, CallOutcome
from app.settings import Settings
from app.sms.tables import SmsMessage
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.factories import create_clinic, create_patient


def _queue_today(session: Session, settings: Settings, patients: int = 1) -> list[int]:
    today = local_today(settings, datetime.now(UTC))
    start = datetime.combine(today + timedelta(days=7), time(12), ZoneInfo(settings.timezone))
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
    build_queue(session, settings.model_copy(update={"calls_holdout_share": 0.0}), today)
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
    session: Session, settings: Settings, client: TestClient
) -> tuple[int, str, int]:
    """One appointment queued; a navigator signed in has taken its call and reached the
    patient. (appointment id, CSRF token, call id)"""
    (appointment_id,) = _queue_today(session, settings)
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
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings, patients=2)
    _signed_in(session, app_client)

    page = app_client.get("/queue")

    assert page.status_code == 200
    assert "My queue for today" in page.text
    assert re.search(r'data-testid="count-to-call">\s*2\s*<', page.text)
    assert "Take next call" in page.text
    assert 'href="/history"' in page.text  # the navigation links the navigator's pages
    assert 'href="/manage/queues"' not in page.text


def test_the_call_screen_shows_what_the_call_needs_and_never_the_probability(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings)
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
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client)
    new_day = local_today(settings, datetime.now(UTC)) + timedelta(days=20)

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
    assert sms == ["confirm_rebooked", "confirm_support"]
    recorded = session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "call.outcome_recorded")
    )
    assert recorded == 2
    patient_id = session.get_one(Call, call_id).patient_id
    session.rollback()
    history = app_client.get("/history")
    assert "Rebooked to a new date and time; BSL interpreter booked" in history.text
    patient = app_client.get(f"/patients/{patient_id}/history")
    assert patient.status_code == 200
    assert "Confirm rebooked" in patient.text  # the texts sent about the appointments


def test_a_rebooking_can_move_the_appointment_to_another_clinic_of_the_same_specialty(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    (appointment_id,) = _queue_today(session, settings)
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

    new_day = local_today(settings, datetime.now(UTC)) + timedelta(days=21)
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
    assert old.attendance_code == "2"  # cancelled by the patient
    new = session.scalars(
        select(Appointment).where(Appointment.replaces_appointment_id == appointment_id)
    ).one()
    assert session.get_one(Clinic, new.clinic_id).code == other_code


def test_a_rebooking_into_a_clinic_that_does_not_exist_is_refused_at_that_field(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client)
    new_day = local_today(settings, datetime.now(UTC)) + timedelta(days=21)

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
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client)

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
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client)

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
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    appointment_id, csrf, call_id = _answered_call(session, settings, app_client)
    form = {"csrf_token": csrf, f"decision-{appointment_id}": "confirmed", "complete": "yes"}
    assert app_client.post(f"/calls/{call_id}/outcomes", data=form).status_code == 200

    again = app_client.post(f"/calls/{call_id}/outcomes", data=form)

    assert again.status_code == 409
    assert "already been completed" in again.text
    assert "Nothing was saved" in again.text
    assert session.scalar(select(func.count(CallOutcome.id))) == 1


def test_forms_without_the_csrf_token_are_refused(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings)
    _signed_in(session, app_client)

    response = app_client.post("/queue/next", data={}, follow_redirects=False)

    assert response.status_code == 403
    assert session.scalar(select(func.count(Call.id)).where(Call.taken_by.is_not(None))) == 0


def test_a_navigator_cannot_open_manager_pages_or_another_navigators_call(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings)
    first = _signed_in(session, app_client)
    call_id = _take(app_client, first)
    app_client.cookies.clear()
    _signed_in(session, app_client)

    assert app_client.get("/manage/queues").status_code == 403
    assert app_client.get("/manage/scripts").status_code == 403
    refused = app_client.get(f"/calls/{call_id}")
    assert refused.status_code == 403
    assert "Ada" not in refused.text


def test_a_manager_sees_the_overview_and_saves_a_new_script_version(
    app_client: TestClient, session: Session, settings: Settings
) -> None:
    _queue_today(session, settings, patients=2)
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
    page = app_client.get("/queue")
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
