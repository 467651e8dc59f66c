"""Who may open what: the role matrix for existing routes, anonymous routes, security headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.roles import Role
from tests.auth.helpers import create_user, sign_in

# route -> lowest role that may open it
GUARDED_API = {
    "/api/patients": Role.NAVIGATOR,
    "/api/appointments": Role.NAVIGATOR,
    "/api/auth/me": Role.NAVIGATOR,
    "/api/audit": Role.MANAGER,
}
GUARDED_PAGES = {
    "/audit": Role.MANAGER,
    "/admin/users": Role.ADMIN,
    "/admin/users/new": Role.ADMIN,
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_the_api_routes_its_rank_allows(
    app_client: TestClient, session: Session, role: Role
) -> None:
    create_user(session, role=role, username=f"matrix-{role.value}")
    session.commit()
    sign_in(app_client, f"matrix-{role.value}")

    for path, lowest in GUARDED_API.items():
        status = app_client.get(path).status_code
        assert status == (200 if role >= lowest else 403), (path, role)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_the_pages_its_rank_allows(
    app_client: TestClient, session: Session, role: Role
) -> None:
    create_user(session, role=role, username=f"pages-{role.value}")
    session.commit()
    sign_in(app_client, f"pages-{role.value}")

    for path, lowest in GUARDED_PAGES.items():
        response = app_client.get(path)
        assert response.status_code == (200 if role >= lowest else 403), (path, role)
        if response.status_code == 403:
            assert "You do not have permission to view this page" in response.text


@pytest.mark.parametrize("path", list(GUARDED_API))
def test_the_api_answers_401_to_anyone_not_signed_in(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_signed_in"


@pytest.mark.parametrize("path", [*GUARDED_PAGES, "/"])
def test_pages_send_anyone_not_signed_in_to_the_sign_in_page(
    app_client: TestClient, path: str
) -> None:
    response = app_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")


def test_a_json_client_gets_401_not_a_redirect_from_a_page_route(app_client: TestClient) -> None:
    response = app_client.get("/audit", headers={"accept": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path", ["/health", "/openapi.json", "/docs", "/sign-in", "/static/js/navigator.js"]
)
def test_health_docs_sign_in_and_static_files_stay_anonymous(
    app_client: TestClient, path: str
) -> None:
    assert app_client.get(path).status_code in {200, 503}  # health is 503 until migrated


def test_pages_carry_security_headers_and_are_never_cached(app_client: TestClient) -> None:
    headers = app_client.get("/sign-in").headers

    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_api_answers_with_patient_data_are_never_cached(
    app_client: TestClient, session: Session
) -> None:
    create_user(session, username="cache-check")
    session.commit()
    sign_in(app_client, "cache-check")

    assert app_client.get("/api/patients").headers["cache-control"] == "no-store"
    assert "no-store" not in app_client.get("/static/js/navigator.js").headers.get(
        "cache-control", ""
    )


def test_an_unknown_page_gets_an_nhs_style_404_and_the_api_json(app_client: TestClient) -> None:
    page = app_client.get("/no-such-page")
    api = app_client.get("/api/no-such-thing")

    assert page.status_code == 404
    assert "Page not found" in page.text
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}


def test_https_deployments_ask_browsers_to_stay_on_https(app_client: TestClient) -> None:
    # The test settings' public URL is https.
    assert app_client.get("/health").headers["strict-transport-security"] == "max-age=31536000"
