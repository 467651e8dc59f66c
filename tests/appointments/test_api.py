from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.appointments.tables import AppointmentChange
from tests.factories import create_appointment, create_clinic, create_patient


def test_appointments_are_listed_by_date_and_clinic_with_paging(
    navigator_client: TestClient, session: Session
) -> None:
    ent = create_clinic(session, code="ENT1", specialty_code="120")
    derm = create_clinic(session, code="DERM1", specialty_code="330")
    patient = create_patient(session)
    for day in (1, 2, 3):
        create_appointment(
            session, patient=patient, clinic=ent, start_at=datetime(2026, 12, day, 10, tzinfo=UTC)
        )
    create_appointment(
        session, patient=patient, clinic=derm, start_at=datetime(2026, 12, 2, 10, tzinfo=UTC)
    )
    session.commit()

    response = navigator_client.get(
        "/api/appointments", params={"from": "2026-12-02", "to": "2026-12-04", "clinic": "ENT1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    assert [item["clinic"]["code"] for item in body["items"]] == ["ENT1", "ENT1"]
    assert body["items"][0]["start_at"].startswith("2026-12-02")

    first_page = navigator_client.get("/api/appointments", params={"limit": 2}).json()
    second_page = navigator_client.get("/api/appointments", params={"limit": 2, "offset": 2}).json()
    assert first_page["total"] == 4
    ids = [item["id"] for item in first_page["items"] + second_page["items"]]
    assert len(set(ids)) == 4


def test_an_appointment_shows_its_change_history(
    navigator_client: TestClient, session: Session
) -> None:
    appointment = create_appointment(session, attendance_code="3")
    session.add(
        AppointmentChange(
            appointment_id=appointment.id,
            source="pas_import",
            field="attendance_code",
            old_value="0",
            new_value="3",
        )
    )
    session.commit()

    body = navigator_client.get(f"/api/appointments/{appointment.id}").json()
    assert body["attendance_code"] == "3"
    assert body["changes"] == [
        {
            "changed_at": body["changes"][0]["changed_at"],
            "source": "pas_import",
            "field": "attendance_code",
            "old_value": "0",
            "new_value": "3",
        }
    ]


def test_a_missing_appointment_is_a_clear_404(navigator_client: TestClient) -> None:
    response = navigator_client.get("/api/appointments/999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "No appointment with that id."


def test_page_size_is_bounded(navigator_client: TestClient) -> None:
    assert navigator_client.get("/api/appointments", params={"limit": 100000}).status_code == 422
