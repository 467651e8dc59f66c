"""Plain regression tests for what the schemathesis fuzzing found.

1-3. A missing patient or appointment answered 404 and a wrong sign-in 401, but the schema
documented only 200 and 422, so clients could not rely on the error body. Every operation
now documents its error answers (`app/openapi.py`).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.auth.helpers import create_user, sign_in


@pytest.mark.parametrize(
    "path", ["/api/patients/{patient_id}", "/api/appointments/{appointment_id}"]
)
def test_a_missing_record_answers_a_documented_404(
    app_client: TestClient, session: Session, path: str
) -> None:
    create_user(session, username="regress-404")
    session.commit()
    sign_in(app_client, "regress-404")

    response = app_client.get(path.split("{", maxsplit=1)[0] + "73")
    documented = app_client.get("/openapi.json").json()["paths"][path]["get"]["responses"]

    assert response.status_code == 404
    assert "404" in documented
    assert response.json()["detail"]


def test_a_wrong_sign_in_answers_a_documented_401(app_client: TestClient) -> None:
    response = app_client.post("/api/auth/session", json={"username": "0", "password": "x"})
    documented = app_client.get("/openapi.json").json()["paths"]["/api/auth/session"]["post"]

    assert response.status_code == 401
    assert {"401", "429"} <= set(documented["responses"])
    assert response.json() == {
        "detail": "Enter a correct username and password",
        "code": "sign_in_failed",
    }


def test_guarded_operations_document_401_and_403_and_anonymous_ones_do_not(
    app_client: TestClient,
) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]

    assert {"401", "403"} <= set(paths["/api/patients"]["get"]["responses"])
    assert "403" not in paths["/health"]["get"]["responses"]


@pytest.mark.parametrize("path", ["/api/patients/2147483648", "/api/appointments/2147483648"])
def test_an_id_beyond_the_integer_column_is_refused_not_a_server_error(
    app_client: TestClient, session: Session, path: str
) -> None:
    # 4. Found on PostgreSQL: an id of 2**31 overflowed the integer column and answered 500.
    create_user(session, username="regress-overflow")
    session.commit()
    sign_in(app_client, "regress-overflow")

    assert app_client.get(path).status_code == 422


def test_a_query_value_the_database_cannot_hold_is_a_client_error(
    app_client: TestClient, session: Session
) -> None:
    # 5. The same overflow through a query parameter (the audit log's patient filter).
    from app.auth.roles import Role

    create_user(session, role=Role.MANAGER, username="regress-audit")
    session.commit()
    sign_in(app_client, "regress-audit")

    response = app_client.get("/api/audit", params={"patient_id": 2**31})

    assert response.status_code in {200, 422}
    assert response.status_code != 500


def test_an_id_beyond_64_bits_is_refused_on_every_backend(
    app_client: TestClient, session: Session
) -> None:
    # 6. Found on SQLite: a patient filter of 2**63 made the driver raise OverflowError (500).
    create_user(session, username="regress-64")
    session.commit()
    sign_in(app_client, "regress-64")

    response = app_client.get("/api/appointments", params={"patient_id": 2**63, "limit": 1})

    assert response.status_code == 422


def test_a_domain_422_matches_the_documented_schema(app_client: TestClient) -> None:
    # 7. A domain error's 422 body ({"detail": text}) contradicted FastAPI's documented
    # validation body; 422 now documents both.
    paths = app_client.get("/openapi.json").json()["paths"]
    schema = paths["/api/calls/{call_id}/attempts"]["post"]["responses"]["422"]["content"][
        "application/json"
    ]["schema"]

    assert {"$ref": "#/components/schemas/Error"} in schema["anyOf"]


def test_webhooks_document_the_403_for_a_bad_signature(app_client: TestClient) -> None:
    # 8. Webhooks answered 403 for a missing signature, undocumented.
    paths = app_client.get("/openapi.json").json()["paths"]

    assert "403" in paths["/webhooks/twilio/status"]["post"]["responses"]


def test_a_username_with_a_nul_is_an_ordinary_failed_sign_in(app_client: TestClient) -> None:
    # 9. Found on PostgreSQL: a NUL in the username reached the database, which refuses it.
    response = app_client.post(
        "/api/auth/session", json={"username": "y\u0000x", "password": "whatever"}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "sign_in_failed"


def test_the_audit_patient_filter_is_bounded(app_client: TestClient, session: Session) -> None:
    # 10. Found on PostgreSQL: a negative 64-bit patient filter on the audit log was refused
    # by the database; the bound is now in the schema.
    from app.auth.roles import Role

    create_user(session, role=Role.MANAGER, username="regress-audit-bound")
    session.commit()
    sign_in(app_client, "regress-audit-bound")

    response = app_client.get("/api/audit", params={"patient_id": -8315058763})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "patient_id"]
