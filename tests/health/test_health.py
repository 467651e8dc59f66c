from __future__ import annotations

from fastapi.testclient import TestClient


def test_health_reports_a_reachable_database_at_the_migration_head(
    app_client: TestClient,
) -> None:
    response = app_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["migration_current"] == body["migration_head"]
    assert response.headers["X-Request-ID"]


def test_openapi_docs_are_served(app_client: TestClient) -> None:
    assert app_client.get("/docs").status_code == 200
    assert "/health" in app_client.get("/openapi.json").json()["paths"]
