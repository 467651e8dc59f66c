"""Web security across every route: CSRF on every state change, headers on every answer, no
inline script or style in any page, and production refusing placeholder secrets.

Sign-in, lockout, rate limiting, session expiry, password policy and the single sign-in
failure message are tested in tests/auth; this module checks what must hold for all routes,
including those that features add later.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.policy import ROUTE_POLICY
from app.auth.roles import Role
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.test_access_policy import MISSING_ID, app_routes

_PARAM = re.compile(r"\{[^}]+\}")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Anonymous state changes prove their origin another way: the sign-in form with a token
# bound to its own cookie (tests/auth/test_csrf.py), the JSON sign-in by accepting only JSON,
# the Twilio webhooks by their signature (tests/sms).
OWN_PROTECTION = {("POST", "/sign-in"), ("POST", "/api/auth/session")}
GOOD_SECRET = "a-real-secret-key-of-at-least-32-characters-0123"
PG_URL = "postgresql+psycopg://navigator@db.internal:5432/navigator"


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


def unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path in app_routes(app)
        if method in UNSAFE
        and (method, path) not in OWN_PROTECTION
        and not path.startswith("/webhooks/")
    ]


def test_every_state_change_without_the_csrf_token_is_refused(
    app: FastAPI, session: Session
) -> None:
    create_user(session, role=Role.ADMIN, username="csrf-admin")
    session.commit()
    routes = unsafe_routes(app)
    assert len(routes) >= 7
    with TestClient(app) as client:
        sign_in(client, "csrf-admin")
        for method, path in routes:
            concrete = _PARAM.sub(MISSING_ID, path)
            as_json = client.request(method, concrete, json={}, follow_redirects=False)
            as_form = client.request(
                method, concrete, data={"csrf_token": "forged"}, follow_redirects=False
            )
            assert as_json.status_code == 403, (method, path, as_json.status_code)
            assert as_form.status_code == 403, (method, path, as_form.status_code)
        # The session survived: nothing above signed the admin out.
        assert client.get("/api/auth/me").status_code == 200


def test_every_answer_carries_the_security_headers(app: FastAPI) -> None:
    with TestClient(app) as client:
        for method, path in app_routes(app):
            if method != "GET":
                continue
            response = client.get(_PARAM.sub(MISSING_ID, path), follow_redirects=False)
            headers = response.headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "same-origin", path
            if not path.startswith(("/docs", "/redoc")):
                assert "unsafe-inline" not in csp, path
                assert "script-src 'self'" in csp, path


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


def test_no_page_relies_on_inline_script_or_style(app: FastAPI, session: Session) -> None:
    create_user(session, role=Role.ADMIN, username="inline-admin")
    session.commit()
    pages = [
        path
        for method, path in app_routes(app)
        if method == "GET"
        and "{" not in path
        and not path.startswith(("/api/", "/docs", "/redoc", "/openapi", "/metrics", "/health"))
    ]
    assert "/admin/users" in pages
    with TestClient(app) as client:
        anonymous_page = client.get("/sign-in").text
        sign_in(client, "inline-admin")
        checked = [anonymous_page]
        for path in pages:
            response = client.get(path)
            if response.headers.get("content-type", "").startswith("text/html"):
                checked.append(response.text)
    for html in checked:
        assert not INLINE_SCRIPT.search(html)
        assert not EVENT_HANDLER.search(html)
        assert not STYLE_ATTRIBUTE.search(html)


def test_every_declared_unsafe_route_has_a_role_or_its_own_protection() -> None:
    for (method, path), level in ROUTE_POLICY.items():
        if method in UNSAFE and level == "anonymous":
            assert (
                (method, path) in OWN_PROTECTION
                or path.startswith("/webhooks/")
                or path == "/sign-out"
            ), (method, path)


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "secret_key": GOOD_SECRET,
        "database_url": PG_URL,
        "sms_provider": "console",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_starts_with_real_secrets_and_postgresql() -> None:
    assert production().env == "production"
    assert production(sms_provider="twilio", twilio_auth_token="t" * 32).sms_provider == "twilio"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"secret_key": "development-only-secret-key-change-me"}, "NAVIGATOR_SECRET_KEY"),
        ({"secret_key": ""}, "NAVIGATOR_SECRET_KEY"),
        ({"secret_key": "short-but-not-placeholder"}, "at least 32"),
        ({"sms_provider": "twilio"}, "NAVIGATOR_TWILIO_AUTH_TOKEN"),
        ({"database_url": "sqlite:///var/navigator.sqlite3"}, "PostgreSQL"),
        ({"metrics_token": "short"}, "NAVIGATOR_METRICS_TOKEN"),
    ],
)
def test_production_refuses_to_start_without_real_secrets(
    overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        production(**overrides)


def test_development_defaults_still_start() -> None:
    assert Settings(_env_file=None).env == "development"
