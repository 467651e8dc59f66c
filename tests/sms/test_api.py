"""The SMS JSON API: message history, manager statistics, templates with segment counts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import create_appointment
from tests.sms.helpers import create_message


def test_history_per_patient_and_per_appointment(session: Session, app_client: TestClient) -> None:
    appointment = create_appointment(session)
    create_message(session, appointment=appointment, offset_days=7)
    create_message(session, appointment=appointment, offset_days=2)
    other = create_message(session)
    session.commit()

    by_patient = app_client.get(f"/api/sms/patients/{appointment.patient_id}/messages").json()
    by_appointment = app_client.get(f"/api/sms/appointments/{appointment.id}/messages").json()

    assert sorted(m["offset_days"] for m in by_patient) == [2, 7]
    assert {m["appointment_id"] for m in by_appointment} == {appointment.id}
    assert other.id not in {m["id"] for m in by_patient}


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
    session.commit()

    stats = app_client.get("/api/sms/stats").json()

    reminder = next(k for k in stats["by_kind"] if k["kind"] == "reminder")
    assert (reminder["total"], reminder["submitted"], reminder["delivered"]) == (3, 2, 1)
    assert reminder["delivery_rate"] == 0.5
    assert {f["error_code"]: f["count"] for f in stats["failures_by_reason"]} == {
        "30003": 1,
        "21211": 1,
    }


def test_templates_list_preview_and_save_a_new_version(app_client: TestClient) -> None:
    listed = app_client.get("/api/sms/templates").json()
    reminder = next(t for t in listed if (t["kind"], t["language"]) == ("reminder", "en"))
    assert reminder["version"] == 0
    assert reminder["segments"]["encoding"] == "GSM-7"
    gujarati = next(t for t in listed if (t["kind"], t["language"]) == ("reminder", "gu"))
    assert gujarati["segments"]["encoding"] == "UCS-2"

    preview = app_client.post(
        "/api/sms/templates/reminder/en/preview", json={"body": "€ {date} at {time}"}
    ).json()
    assert preview["preview"] == "€ Tue 1 Dec 2026 at 09:30"
    assert preview["segments"]["units"] == 26  # the euro sign costs two septets

    bad = app_client.post("/api/sms/templates/reminder/en/preview", json={"body": "{nhs}"}).json()
    assert bad["problems"]

    saved = app_client.put(
        "/api/sms/templates/reminder/en", json={"body": "See you {date} at {time}, {site}."}
    )
    assert saved.status_code == 200
    assert saved.json()["version"] == 1
    refused = app_client.put("/api/sms/templates/reminder/en", json={"body": "Hi {name}"})
    assert refused.status_code == 422
