"""The audit log's JSON API as a DPO uses it: actions in words, filters by user, NHS number
(in a body only, check digit checked), an inclusive range of days and action, and a CSV
export of the filtered view that is itself audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from tests.auth.helpers import AUDITED_NHS_NUMBER, create_audit_trail, sign_in
from tests.clock import TODAY

NHS_NUMBER = AUDITED_NHS_NUMBER
BAD_CHECK_DIGIT = "9434765918"


def _audited(client: TestClient, session: Session) -> tuple[dict[str, str], int, int]:
    """Three entries (two today by a navigator, one ten days ago by the manager); signed in
    as the manager. Returns the CSRF header, the patient's id and the navigator's id."""
    patient_id, navigator_id = create_audit_trail(session)
    csrf = {"X-CSRF-Token": sign_in(client, "dpo")}
    return csrf, patient_id, navigator_id


def _patient_reads(items: list[dict]) -> list[dict]:
    return [item for item in items if item["action"] in {"patient.viewed", "call.taken"}]


def test_entries_carry_the_action_in_words_and_as_a_code(
    app_client: TestClient, session: Session
) -> None:
    _audited(app_client, session)

    items = app_client.get("/api/audit", params={"action": "call.taken"}).json()["items"]

    assert [(item["action"], item["action_in_words"]) for item in items] == [
        ("call.taken", "Took a call from the queue")
    ]


def test_filters_by_user_and_an_inclusive_range_of_days(
    app_client: TestClient, session: Session
) -> None:
    _, _, navigator_id = _audited(app_client, session)
    today = TODAY.isoformat()

    by_user = app_client.get("/api/audit", params={"user_id": navigator_id}).json()
    today_only = app_client.get("/api/audit", params={"from": today, "to": today}).json()
    ten_days_ago = (TODAY - timedelta(days=10)).isoformat()
    old = app_client.get("/api/audit", params={"from": ten_days_ago, "to": ten_days_ago}).json()

    assert {item["user_id"] for item in by_user["items"]} == {navigator_id}
    assert len(_patient_reads(by_user["items"])) == 2
    assert len(_patient_reads(today_only["items"])) == 2  # the "to" day is included
    assert [item["action"] for item in old["items"]] == ["patient.viewed"]


def test_the_nhs_number_filter_is_sent_in_a_body_and_the_lookup_is_audited(
    app_client: TestClient, session: Session
) -> None:
    csrf, patient_id, _ = _audited(app_client, session)

    found = app_client.post("/api/audit/search", json={"nhs_number": "943 476 5919"}, headers=csrf)
    in_address = app_client.get("/api/audit", params={"nhs_number": NHS_NUMBER})

    assert found.status_code == 200
    assert found.json()["total"] == 2
    assert {item["patient_id"] for item in found.json()["items"]} == {patient_id}
    assert in_address.status_code == 422
    assert [error["field"] for error in in_address.json()["errors"]] == ["nhs_number"]
    looked_up = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.patient_filtered")
    ).all()
    assert [event.patient_id for event in looked_up] == [patient_id]
    assert NHS_NUMBER not in str(looked_up[0].detail)


def test_every_problem_with_the_filters_is_answered_at_once_by_field(
    app_client: TestClient, session: Session
) -> None:
    csrf, _, _ = _audited(app_client, session)

    response = app_client.post(
        "/api/audit/search",
        json={
            "nhs_number": BAD_CHECK_DIGIT,
            "user_id": 999_999,
            "from": TODAY.isoformat(),
            "to": (TODAY - timedelta(days=1)).isoformat(),
        },
        headers=csrf,
    )
    backwards = app_client.get(
        "/api/audit",
        params={"from": TODAY.isoformat(), "to": (TODAY - timedelta(days=1)).isoformat()},
    )

    assert response.status_code == 422
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert set(errors) == {"nhs_number", "user_id", "to"}
    assert "valid NHS number" in errors["nhs_number"]
    assert "is before the first day" in errors["to"]
    assert backwards.status_code == 422
    assert [error["field"] for error in backwards.json()["errors"]] == ["to"]


def test_the_csv_export_has_the_filtered_entries_and_is_audited(
    app_client: TestClient, session: Session
) -> None:
    csrf, patient_id, _ = _audited(app_client, session)

    response = app_client.post("/api/audit/export", json={"nhs_number": NHS_NUMBER}, headers=csrf)
    refused = app_client.post("/api/audit/export", json={"nhs_number": NHS_NUMBER})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["action"], row["action_code"]) for row in rows] == [
        ("Opened a patient's record", "patient.viewed")
    ] * 2
    assert {row["patient_id"] for row in rows} == {str(patient_id)}
    assert NHS_NUMBER not in response.text
    assert refused.status_code == 403  # no CSRF token
    export = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.exported")).one()
    assert export.patient_id == patient_id
    assert export.detail is not None
    assert export.detail["rows"] == 2
    assert NHS_NUMBER not in str(export.detail)
