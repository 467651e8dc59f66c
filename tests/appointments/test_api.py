from __future__ import annotations

from datetime import time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.appointments.tables import AppointmentChange
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment, create_clinic, create_patient


def test_appointments_are_listed_by_date_and_clinic_with_paging(
    manager_client: TestClient, session: Session
) -> None:
    ent = create_clinic(session, code="ENT1", specialty_code="120")
    derm = create_clinic(session, code="DERM1", specialty_code="330")
    patient = create_patient(session)
    first = TODAY + timedelta(days=6)
    days = [first + timedelta(days=n) for n in range(3)]
    for day in days:
        create_appointment(
            session, patient=patient, clinic=ent, start_at=CALENDAR.at(day, time(10))
        )
    create_appointment(
        session, patient=patient, clinic=derm, start_at=CALENDAR.at(days[1], time(10))
    )
    session.commit()

    response = manager_client.get(
        "/api/appointments",
        params={
            "from": days[1].isoformat(),
            "to": (days[2] + timedelta(days=1)).isoformat(),
            "clinic": "ENT1",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    assert [item["clinic"]["code"] for item in body["items"]] == ["ENT1", "ENT1"]
    assert body["items"][0]["start_at"] == CALENDAR.at(days[1], time(10)).isoformat().replace(
        "+00:00", "Z"
    )

    first_page = manager_client.get("/api/appointments", params={"limit": 2}).json()
    second_page = manager_client.get("/api/appointments", params={"limit": 2, "offset": 2}).json()
    assert first_page["total"] == 4
    ids = [item["id"] for item in first_page["items"] + second_page["items"]]
    assert len(set(ids)) == 4


def test_an_appointment_shows_its_change_history(
    manager_client: TestClient, session: Session
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

    body = manager_client.get(f"/api/appointments/{appointment.id}").json()
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


def test_a_missing_appointment_is_a_clear_404(manager_client: TestClient) -> None:
    response = manager_client.get("/api/appointments/999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "No appointment with that id."


def test_page_size_is_bounded(manager_client: TestClient) -> None:
    assert manager_client.get("/api/appointments", params={"limit": 100000}).status_code == 422
