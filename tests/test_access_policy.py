"""The access matrix: every route of the app is declared in `app.auth.policy` and behaves so.

Each route is really called anonymously and signed in as each role. Below its level a route
must refuse (401 or a redirect to the sign-in page when anonymous, 403 for too low a role);
at or above its level it must not refuse (whatever else it answers: 404 for a made-up id,
422 for a made-up body). Unsafe calls carry the session's CSRF header, so a 403 there can only
be the role check.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session
from starlette.routing import Mount

from app.auth.policy import ROUTE_POLICY, required_role
from app.auth.roles import Role
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in

# Static files carry no patient data and are public (the sign-in page needs its styles).
PUBLIC_MOUNTS = {"/static", "/assets"}
# Calling these ends the session, so the client signs in again afterwards.
ENDS_SESSION = {("POST", "/sign-out"), ("DELETE", "/api/auth/session")}
MISSING_ID = "999999"
_PARAM = re.compile(r"\{[^}]+\}")


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route, routers included (HEAD left out)."""
    routes: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount):
            assert context.path in PUBLIC_MOUNTS, f"unexpected mount {context.path}"
            continue
        path = context.path
        assert path is not None
        methods = getattr(context, "methods", None) or {"GET"}
        routes.extend((method, path) for method in methods if method != "HEAD")
    return sorted(set(routes), key=lambda item: ((item[0], item[1]) in ENDS_SESSION, item))


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


def call(client: TestClient, method: str, path: str, csrf: str | None = None) -> Response:
    concrete = _PARAM.sub(MISSING_ID, path)
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method in {"POST", "PUT", "PATCH"}:
        return client.request(method, concrete, json={}, headers=headers, follow_redirects=False)
    return client.request(method, concrete, headers=headers, follow_redirects=False)


def refused_anonymously(response: Response) -> bool:
    if response.status_code == 401:
        return True
    location = response.headers.get("location", "")
    return response.status_code in {302, 303, 307} and location.startswith("/sign-in")


def test_every_route_of_the_app_has_a_declared_policy(app: FastAPI) -> None:
    undeclared = [route for route in app_routes(app) if route not in ROUTE_POLICY]
    assert not undeclared, f"routes without an access policy: {undeclared}"


def test_the_matrix_covers_api_and_pages(app: FastAPI) -> None:
    routes = app_routes(app)
    assert any(path.startswith("/api/") for _, path in routes)
    assert any(path == "/admin/users" for _, path in routes)
    assert ("GET", "/metrics") in routes


def test_anyone_not_signed_in_is_refused_every_guarded_route(app: FastAPI) -> None:
    with TestClient(app) as client:
        for method, path in app_routes(app):
            response = call(client, method, path)
            if required_role(method, path) is None:
                assert not refused_anonymously(response), (method, path, response.status_code)
            else:
                assert refused_anonymously(response), (method, path, response.status_code)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reaches_exactly_the_routes_at_or_below_its_rank(
    app: FastAPI, session: Session, role: Role
) -> None:
    username = f"policy-{role.value}"
    create_user(session, role=role, username=username)
    session.commit()
    checked = 0
    with TestClient(app) as client:
        csrf = sign_in(client, username)
        for method, path in app_routes(app):
            needed = required_role(method, path)
            response = call(client, method, path, csrf)
            status = response.status_code
            if needed is None:
                # Open to anyone (webhooks prove their origin by signature instead, which a
                # session does not replace): being signed in changes nothing.
                if (method, path) not in ENDS_SESSION:  # signing out sends you to sign in
                    assert not refused_anonymously(response), (role, method, path, status)
            elif not role.includes(needed):
                assert status == 403, (role, method, path, status)
            else:
                assert status not in {401, 403}, (role, method, path, status, response.text)
                if (method, path) not in ENDS_SESSION:  # signing out sends you to sign in
                    assert not refused_anonymously(response), (role, method, path)
            checked += 1
            if (method, path) in ENDS_SESSION:
                csrf = sign_in(client, username)
    assert checked == len(app_routes(app))
