"""Web security across every route: CSRF on every state change, headers on every answer, no
inline script or style in any page, and production refusing placeholder secrets.

Sign-in, lockout, rate limiting, session expiry, password policy and the single sign-in
failure message are tested in tests/auth; this module checks what must hold for all routes,
including those that features add later.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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


# --- request limits, error answers, dates and redirects (issue 17) ---------------------------

BIG = 2 * 1024 * 1024


def _streamed(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length: sent chunked, so the limit must count it as it comes."""
    sent = 0
    while sent < size:
        sent += chunk
        yield b"x" * chunk


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/auth/session", "application/json"),
        ("/sign-in", "application/x-www-form-urlencoded"),
        ("/webhooks/twilio/status", "application/x-www-form-urlencoded"),
        ("/webhooks/twilio/inbound", "multipart/form-data; boundary=x"),
    ],
)
def test_an_oversized_body_is_refused_413_before_it_is_read(
    app: FastAPI, path: str, content_type: str
) -> None:
    with TestClient(app) as client:
        declared = client.post(path, content=b"x" * BIG, headers={"content-type": content_type})
        streamed = client.post(path, content=_streamed(BIG), headers={"content-type": content_type})
    assert declared.status_code == 413, declared.text
    assert streamed.status_code == 413, streamed.text
    assert len(declared.content) < 300


def test_body_limits_are_per_route_family_and_configurable(
    settings: Settings, database: Database
) -> None:
    small = settings.model_copy(
        update={"body_limit_sign_in_bytes": 1024, "body_limit_json_bytes": 4096}
    )
    app = create_app(small, database)
    body = {"username": "someone", "password": "p" * 2000}  # ~2 KB: past sign-in's 1 KB
    with TestClient(app) as client:
        sign_in_answer = client.post("/api/auth/session", json=body)
        api_answer = client.post("/api/calls/next", json=body)  # within the JSON API's 4 KB
    assert sign_in_answer.status_code == 413
    assert api_answer.status_code == 401  # read, then refused for having no session


def test_validation_errors_name_the_field_and_never_echo_the_value(app: FastAPI) -> None:
    secret = "hunter2-my-real-password"  # what must not come back
    with TestClient(app) as client:
        response = client.post("/api/auth/session", json={"username": 7, "password": [secret]})
        huge = client.post("/api/auth/session", json=[{"a": "b" * 100} for _ in range(70)])
    assert response.status_code == 422
    assert secret not in response.text
    body = response.json()
    assert {error["field"] for error in body["errors"]} == {"body.username", "body.password"}
    assert all(error["message"] for error in body["errors"])
    assert huge.status_code == 422
    assert len(huge.content) < 4096
    assert "bbbb" not in huge.text


@pytest.mark.parametrize("bad", ["0", "1e3", "1700000000", "2026-2-3", "2026-02-30", "24/11/2026"])
def test_date_parameters_accept_only_iso_8601(app: FastAPI, session: Session, bad: str) -> None:
    create_user(session, role=Role.MANAGER, username="date-manager")
    session.commit()
    with TestClient(app) as client:
        sign_in(client, "date-manager")
        audit = client.get("/api/audit", params={"date": bad})
        appointments = client.get("/api/appointments", params={"from": bad})
        good = client.get("/api/audit", params={"date": "2026-11-24"})
    assert audit.status_code == 422
    assert audit.json()["errors"][0]["field"] == "query.date"
    assert appointments.status_code == 422
    assert appointments.json()["errors"][0]["field"] == "query.from"
    assert good.status_code == 200


def test_the_trailing_slash_redirect_ignores_the_host_header(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.get(
            "/api/patients/", headers={"host": "evil.example"}, follow_redirects=False
        )
        sneaky = client.get("//evil.example/", follow_redirects=False)
    assert response.status_code in {307, 308}
    assert response.headers["location"] == "https://navigator.test/api/patients"
    assert "evil.example" not in sneaky.headers.get("location", "https://navigator.test/")


def test_forwarded_addresses_are_believed_only_from_configured_proxies(
    settings: Settings,
) -> None:
    from app.web import proxy_options

    assert proxy_options(settings) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    behind = settings.model_copy(update={"trusted_proxies": ["10.1.2.3", "10.1.2.4"]})
    assert proxy_options(behind) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.1.2.3,10.1.2.4",
    }


def test_a_deeply_nested_or_malformed_body_is_a_short_4xx(app: FastAPI) -> None:
    with TestClient(app) as client:
        nested = client.post(
            "/api/auth/session",
            content=b'{"username": ' + b"[" * 3000 + b"]" * 3000 + b', "password": "x"}',
            headers={"content-type": "application/json"},
        )
        malformed = client.post(
            "/api/auth/session", content=b"{" * 5000, headers={"content-type": "application/json"}
        )
    for response in (nested, malformed):
        assert 400 <= response.status_code < 500
        assert len(response.content) < 500
