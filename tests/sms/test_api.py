"""The SMS JSON API: message history, manager statistics, templates with segment counts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.sms.tables import SmsTemplate
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment
from tests.sms.helpers import create_message


def signed_in(session: Session, client: TestClient, role: Role) -> dict[str, str]:
    user = create_user(session, role=role)
    session.commit()
    return {"X-CSRF-Token": sign_in(client, user.username)}


def test_history_is_refused_404_to_a_navigator_who_never_had_the_patient(
    session: Session, app_client: TestClient
) -> None:
    appointment = create_appointment(session)
    create_message(session, appointment=appointment, offset_days=7)
    session.commit()
    signed_in(session, app_client, Role.NAVIGATOR)
    assert app_client.get(f"/api/sms/patients/{appointment.patient_id}/messages").status_code == 404
    assert app_client.get(f"/api/sms/appointments/{appointment.id}/messages").status_code == 404


def test_history_per_patient_and_per_appointment_is_for_managers_and_audited(
    session: Session, app_client: TestClient
) -> None:
    appointment = create_appointment(session)
    create_message(session, appointment=appointment, offset_days=7)
    create_message(session, appointment=appointment, offset_days=2)
    other = create_message(session)
    session.commit()
    path = f"/api/sms/patients/{appointment.patient_id}/messages"
    assert app_client.get(path).status_code == 401

    signed_in(session, app_client, Role.MANAGER)
    by_patient = app_client.get(path).json()
    by_appointment = app_client.get(f"/api/sms/appointments/{appointment.id}/messages").json()

    assert sorted(m["offset_days"] for m in by_patient) == [2, 7]
    assert {m["appointment_id"] for m in by_appointment} == {appointment.id}
    assert other.id not in {m["id"] for m in by_patient}
    session.expire_all()
    audited = session.scalars(
        select(AuditEvent.patient_id).where(AuditEvent.action == "sms.history_viewed")
    ).all()
    assert audited == [appointment.patient_id, appointment.patient_id]


def test_stats_and_templates_are_for_managers_only(
    session: Session, app_client: TestClient
) -> None:
    signed_in(session, app_client, Role.NAVIGATOR)
    assert app_client.get("/api/sms/stats").status_code == 403
    assert app_client.get("/api/sms/templates").status_code == 403


def test_stats_give_volumes_delivery_rates_and_failures_by_reason(
    session: Session, app_client: TestClient
) -> None:
    create_message(
        session, state="submitted", provider_sid="SM" + "1" * 32, delivery_status="delivered"
    )
    create_message(
        session,
        state="submitted",
        provider_sid="SM" + "2" * 32,
        delivery_status="undelivered",
        error_code="30003",
    )
    create_message(session, state="failed", error_code="21211")
    create_message(session, kind="confirm_rebooked", offset_days=None)
    signed_in(session, app_client, Role.MANAGER)

    stats = app_client.get("/api/sms/stats").json()

    reminder = next(k for k in stats["by_kind"] if k["kind"] == "reminder")
    assert (reminder["total"], reminder["submitted"], reminder["delivered"]) == (3, 2, 1)
    assert reminder["delivery_rate"] == 0.5
    assert {f["error_code"]: f["count"] for f in stats["failures_by_reason"]} == {
        "30003": 1,
        "21211": 1,
    }


def test_templates_list_preview_and_save_a_new_version(
    session: Session, app_client: TestClient
) -> None:
    headers = signed_in(session, app_client, Role.MANAGER)
    listed = app_client.get("/api/sms/templates").json()
    reminder = next(t for t in listed if (t["kind"], t["language"]) == ("reminder", "en"))
    assert reminder["version"] == 0
    assert reminder["segments"]["encoding"] == "GSM-7"
    gujarati = next(t for t in listed if (t["kind"], t["language"]) == ("reminder", "gu"))
    assert gujarati["segments"]["encoding"] == "UCS-2"

    preview = app_client.post(
        "/api/sms/templates/reminder/en/preview",
        json={"body": "€ {date} at {time}"},
        headers=headers,
    ).json()
    assert preview["preview"] == "€ Tue 1 Dec 2026 at 09:30"
    assert preview["segments"]["units"] == 26  # the euro sign costs two septets
    bad = app_client.post(
        "/api/sms/templates/reminder/en/preview", json={"body": "{nhs}"}, headers=headers
    ).json()
    assert bad["problems"]

    body = {"body": "See you {date} at {time}, {site}."}
    assert app_client.put("/api/sms/templates/reminder/en", json=body).status_code == 403  # CSRF
    saved = app_client.put("/api/sms/templates/reminder/en", json=body, headers=headers)
    assert saved.status_code == 200
    assert saved.json()["version"] == 1
    unchanged = app_client.put("/api/sms/templates/reminder/en", json=body, headers=headers)
    assert (unchanged.status_code, unchanged.json()["version"]) == (200, 1)
    refused = app_client.put(
        "/api/sms/templates/reminder/en", json={"body": "Hi {name}"}, headers=headers
    )
    assert refused.status_code == 422
    session.expire_all()
    stored = session.scalars(select(SmsTemplate)).all()
    assert [(t.kind, t.version, t.created_by) for t in stored] == [
        ("reminder", 1, stored[0].created_by)
    ]
    assert stored[0].created_by is not None
