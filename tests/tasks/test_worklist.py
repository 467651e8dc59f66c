"""The task worklist a navigator works from: filters, paging, links to patient and call, done
with a note, undo within the hour (by the clock), one wrong-number task per patient a day."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent, User
from app.calls.tables import Call, CallStatus
from app.clock import FixedClock
from app.patients.tables import Patient
from app.tasks import service
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus
from tests.auth.helpers import create_user, sign_in
from tests.clock import CALENDAR
from tests.factories import create_patient


def _task(
    session: Session,
    patient: Patient,
    *,
    created_at: datetime,
    kind: TaskKind = TaskKind.READ_REPLY,
    call_id: int | None = None,
    ref: str | None = None,
) -> NavigatorTask:
    task = NavigatorTask(
        kind=kind,
        status=TaskStatus.OPEN,
        patient_id=patient.id,
        source="sms",
        source_ref=ref or f"SM{patient.id}-{created_at.timestamp()}-{kind}",
        detail="Please call me about my appointment",
        created_at=created_at,
        call_id=call_id,
    )
    session.add(task)
    session.flush()
    return task


def _navigator(session: Session, client: TestClient, role: Role = Role.NAVIGATOR) -> User:
    user = create_user(session, role=role)
    session.commit()
    user.csrf = sign_in(client, user.username)  # type: ignore[attr-defined]
    return user


def _csrf(user: User) -> str:
    return str(user.csrf)  # type: ignore[attr-defined]


def _call(session: Session, patient: Patient, user: User, now: datetime) -> Call:
    call = Call(
        patient_id=patient.id,
        queue_date=CALENDAR.today(now),
        priority=1.0,
        status=CallStatus.COMPLETED,
        taken_by=user.id,
        completed_by=user.id,
        completed_at=now,
    )
    session.add(call)
    session.flush()
    return call


def test_wrong_numbers_found_on_one_day_make_one_task_per_patient(
    session: Session, clock: FixedClock
) -> None:
    patient, other = create_patient(session), create_patient(session)
    now = clock.now()
    today = CALENDAR.today(now)
    for _ in range(3):  # three failed texts to the same number
        service.open_wrong_number_task(
            session, patient_id=patient.id, day=today, detail="Twilio rejected it", now=now
        )
    service.open_wrong_number_task(
        session,
        patient_id=patient.id,
        day=today,
        detail="Wrong number on the landline (call 7)",
        now=now,
        call_id=None,
    )
    service.open_wrong_number_task(
        session, patient_id=other.id, day=today, detail="Twilio rejected it", now=now
    )
    tomorrow = today + timedelta(days=1)
    service.open_wrong_number_task(
        session,
        patient_id=patient.id,
        day=tomorrow,
        detail="Twilio rejected it",
        now=CALENDAR.at(tomorrow),
    )

    rows = list(session.scalars(select(NavigatorTask).order_by(NavigatorTask.id)))
    assert [(row.patient_id, row.kind) for row in rows] == [
        (patient.id, TaskKind.DATA_QUALITY),
        (other.id, TaskKind.DATA_QUALITY),
        (patient.id, TaskKind.DATA_QUALITY),  # a new day, a new task
    ]
    assert rows[0].detail.split("\n") == [
        "Twilio rejected it",
        "Wrong number on the landline (call 7)",
    ]


def test_a_new_wrong_number_the_same_day_reopens_the_task_marked_done(
    session: Session, clock: FixedClock
) -> None:
    patient = create_patient(session)
    now = clock.now()
    task = service.open_wrong_number_task(
        session, patient_id=patient.id, day=CALENDAR.today(now), detail="Mobile wrong", now=now
    )
    user = create_user(session)
    service.complete_task(session, task_id=task.id, user_id=user.id, now=now, note="Rang the GP")
    again = service.open_wrong_number_task(
        session, patient_id=patient.id, day=CALENDAR.today(now), detail="Landline wrong", now=now
    )
    assert again.id == task.id
    assert again.status == TaskStatus.OPEN
    assert again.done_note is None


def test_the_api_lists_tasks_by_kind_age_and_mine_with_paging(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    now = clock.now()
    me = _navigator(session, app_client)
    patients = [create_patient(session) for _ in range(4)]
    my_call = _call(session, patients[0], me, now)
    mine = _task(
        session, patients[0], created_at=now, kind=TaskKind.DATA_QUALITY, call_id=my_call.id
    )
    older = _task(session, patients[1], created_at=now - timedelta(days=3))
    oldest = _task(session, patients[2], created_at=now - timedelta(days=8))
    letter = _task(session, patients[3], created_at=now, kind=TaskKind.SEND_LETTER)
    session.commit()

    def ids(**params: object) -> list[int]:
        response = app_client.get("/api/tasks", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [oldest.id, older.id, mine.id, letter.id]  # the longest waiting first
    assert ids(kind="send_letter") == [letter.id]
    assert ids(age="today") == [mine.id, letter.id]
    assert ids(age="older") == [oldest.id, older.id]
    assert ids(age="over_a_week") == [oldest.id]
    assert ids(scope="mine") == [mine.id]
    page = app_client.get("/api/tasks", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 4
    assert [item["id"] for item in page["items"]] == [mine.id, letter.id]
    first = app_client.get("/api/tasks", params={"scope": "mine"}).json()["items"][0]
    assert first["call_id"] == my_call.id
    assert first["patient_id"] == patients[0].id
    bad = app_client.get("/api/tasks", params={"kind": "nonsense", "age": "yesterday"})
    assert bad.status_code == 422


def test_done_with_a_note_then_undo_within_the_hour_and_not_after(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    me = _navigator(session, app_client)
    first = _task(session, create_patient(session), created_at=clock.now())
    second = _task(session, create_patient(session), created_at=clock.now())
    session.commit()
    headers = {"X-CSRF-Token": _csrf(me)}

    done = app_client.post(
        f"/api/tasks/{first.id}/done", json={"note": "Rang back, confirmed"}, headers=headers
    )
    assert done.status_code == 200
    assert done.json()["done_note"] == "Rang back, confirmed"
    assert done.json()["undo_until"] is not None
    assert [t["id"] for t in app_client.get("/api/tasks").json()["items"]] == [second.id]

    clock.advance(minutes=59)
    headers = {"X-CSRF-Token": sign_in(app_client, me.username)}  # past the idle sign-out
    undone = app_client.post(f"/api/tasks/{first.id}/undo", headers=headers)
    assert undone.status_code == 200
    assert undone.json()["status"] == "open"
    assert undone.json()["done_note"] is None

    app_client.post(f"/api/tasks/{second.id}/done", headers=headers)
    clock.advance(hours=1)
    headers = {"X-CSRF-Token": sign_in(app_client, me.username)}
    late = app_client.post(f"/api/tasks/{second.id}/undo", headers=headers)
    assert late.status_code == 409
    assert "more than an hour ago" in late.json()["detail"]
    session.expire_all()
    assert session.get_one(NavigatorTask, second.id).status == TaskStatus.DONE
    actions = list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("navigator_task.%"))
            .order_by(AuditEvent.id)
        )
    )
    assert actions == ["navigator_task.done", "navigator_task.undone", "navigator_task.done"]


def test_only_whoever_marked_it_done_can_undo_and_sees_it_among_the_done(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    colleague = create_user(session, role=Role.NAVIGATOR)
    task = _task(session, create_patient(session), created_at=clock.now())
    service.complete_task(session, task_id=task.id, user_id=colleague.id, now=clock.now())
    me = _navigator(session, app_client)

    refused = app_client.post(f"/api/tasks/{task.id}/undo", headers={"X-CSRF-Token": _csrf(me)})
    done_list = app_client.get("/api/tasks", params={"status": "done"}).json()

    assert refused.status_code == 409
    assert done_list["total"] == 0  # a colleague's done task is not mine to see


def test_a_note_too_long_is_refused_and_nothing_is_saved(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    me = _navigator(session, app_client)
    task = _task(session, create_patient(session), created_at=clock.now())
    session.commit()

    response = app_client.post(
        f"/api/tasks/{task.id}/done", json={"note": "x" * 1001}, headers={"X-CSRF-Token": _csrf(me)}
    )

    assert response.status_code == 422
    session.expire_all()
    assert session.get_one(NavigatorTask, task.id).status == TaskStatus.OPEN


def test_the_tasks_page_links_patient_and_call_marks_done_with_a_note_and_undoes(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    me = _navigator(session, app_client)
    patient = create_patient(session, given_name="Grace", family_name="Hopper")
    call = _call(session, patient, me, clock.now())
    task = _task(
        session, patient, created_at=clock.now(), kind=TaskKind.DATA_QUALITY, call_id=call.id
    )
    session.commit()

    page = app_client.get("/tasks")
    assert page.status_code == 200
    assert f'<a href="/patients/{patient.id}">Grace Hopper</a>' in page.text
    assert f'<a href="/calls/{call.id}">Call {call.id}</a>' in page.text
    assert "1 open for the team, 1 from your calls." in page.text

    done = app_client.post(
        f"/tasks/{task.id}/done?kind=data_quality",
        data={"csrf_token": _csrf(me), "note": "Number corrected with the patient"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/tasks?kind=data_quality&notice=done"
    listing = app_client.get("/tasks?status=done")
    assert "Number corrected with the patient" in listing.text
    assert "You can undo this until" in listing.text

    undo = app_client.post(f"/tasks/{task.id}/undo", data={"csrf_token": _csrf(me)})
    assert "The task is open again." in undo.text
    session.expire_all()
    assert session.get_one(NavigatorTask, task.id).status == TaskStatus.OPEN


def test_the_tasks_page_shows_every_problem_in_the_error_summary_and_saves_nothing(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    me = _navigator(session, app_client)
    task = _task(session, create_patient(session), created_at=clock.now())
    session.commit()

    filters = app_client.get("/tasks?kind=nonsense&age=yesterday")
    too_long = app_client.post(
        f"/tasks/{task.id}/done", data={"csrf_token": _csrf(me), "note": "x" * 1001}
    )

    assert "nhsuk-error-summary" in filters.text
    assert "Choose a kind of task from the list" in filters.text
    assert "Choose how old the tasks are from the list" in filters.text
    assert too_long.status_code == 422
    assert f'href="#note-{task.id}"' in too_long.text
    assert session.scalar(select(func.count()).where(NavigatorTask.status == "done")) == 0


def test_the_queue_page_shows_a_short_count_linking_to_the_tasks(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    _navigator(session, app_client)
    for _ in range(37):
        _task(session, create_patient(session), created_at=clock.now(), kind=TaskKind.DATA_QUALITY)
    session.commit()

    queue = app_client.get("/queue")

    assert '<a href="/tasks">37 open tasks</a> for the team' in queue.text
    assert "Please call me about my appointment" not in queue.text
    assert queue.text.count("Mark done") == 0
