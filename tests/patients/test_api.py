from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from tests.factories import create_patient


def test_a_patient_record_shows_needs_and_deprivation(
    manager_client: TestClient, session: Session
) -> None:
    patient = create_patient(
        session, communication_needs="bsl;large_print", imd_decile=1, core20=True
    )
    session.commit()

    body = manager_client.get(f"/api/patients/{patient.id}").json()
    assert body["communication_needs"] == ["bsl", "large_print"]
    assert body["core20"] is True
    assert body["imd_release"] == "IMD2019"


def test_the_patient_list_carries_no_contact_details_and_filters_core20(
    manager_client: TestClient, session: Session
) -> None:
    create_patient(session, core20=True, imd_decile=1)
    create_patient(session, core20=False, imd_decile=7)
    session.commit()

    body = manager_client.get("/api/patients", params={"core20": "true"}).json()
    assert body["total"] == 1
    assert "mobile_phone" not in body["items"][0]
    assert "family_name" not in body["items"][0]


def test_the_patient_api_refuses_anyone_not_signed_in(
    app_client: TestClient, session: Session
) -> None:
    patient = create_patient(session)
    session.commit()

    assert app_client.get("/api/patients").status_code == 401
    assert app_client.get(f"/api/patients/{patient.id}").status_code == 401


def test_viewing_a_patient_record_is_audited_with_ids_only(
    manager_client: TestClient, session: Session
) -> None:
    patient = create_patient(session, family_name="Auditfamily")
    session.commit()

    manager_client.get(f"/api/patients/{patient.id}")

    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.viewed")).all()
    assert [event.patient_id for event in events] == [patient.id]
    assert events[0].user_id is not None
    assert "Auditfamily" not in str(events[0].detail)
