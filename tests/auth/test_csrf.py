"""Unsafe requests must carry the session's synchroniser token, on forms and on the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import User, UserSession
from tests.auth.helpers import create_user, form_token, sign_in, sign_in_with_form


def test_an_api_call_without_the_csrf_header_is_refused(
    app_client: TestClient, session: Session
) -> None:
    create_user(session, username="api-user")
    session.commit()
    csrf = sign_in(app_client, "api-user")

    missing = app_client.delete("/api/auth/session")
    wrong = app_client.delete("/api/auth/session", headers={"X-CSRF-Token": "0" * len(csrf)})

    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf_failed"
    assert "X-CSRF-Token" in missing.json()["detail"]
    assert wrong.status_code == 403
    assert app_client.get("/api/auth/me").status_code == 200  # still signed in


def test_one_sessions_csrf_token_does_not_work_for_another(
    app_client: TestClient, session: Session
) -> None:
    create_user(session, username="first")
    create_user(session, username="second")
    session.commit()
    first_token = sign_in(app_client, "first")
    sign_in(app_client, "second")

    response = app_client.delete("/api/auth/session", headers={"X-CSRF-Token": first_token})

    assert response.status_code == 403


def test_a_form_post_without_its_token_is_refused_with_a_page(
    page_client: TestClient, session: Session
) -> None:
    admin = create_user(session, role=Role.ADMIN, username="boss")
    target = create_user(session, username="target")
    session.commit()
    sign_in_with_form(page_client, "boss")

    refused = page_client.post(f"/admin/users/{target.id}/deactivate", data={})
    forged = page_client.post(f"/admin/users/{target.id}/deactivate", data={"csrf_token": "forged"})

    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "did not come from Navigator" in refused.text
    assert forged.status_code == 403
    session.expire_all()
    assert session.get(User, target.id).active is True  # type: ignore[union-attr]
    assert admin.id


def test_the_sign_in_form_needs_its_own_token(page_client: TestClient, session: Session) -> None:
    create_user(session, username="victim")
    session.commit()

    # A cross-site form posting credentials (login CSRF) has no token bound to our cookie.
    response = page_client.post(
        "/sign-in",
        data={"username": "victim", "password": "correct horse battery"},
        follow_redirects=False,
    )

    assert response.status_code == 400
    assert "expired" in response.text
    assert session.scalars(select(UserSession)).all() == []


def test_sign_out_by_form_needs_the_token(page_client: TestClient, session: Session) -> None:
    create_user(session, username="mo")
    session.commit()
    sign_in_with_form(page_client, "mo")
    home = page_client.get("/")

    assert page_client.post("/sign-out", data={}).status_code == 403
    signed_out = page_client.post(
        "/sign-out", data={"csrf_token": form_token(home.text)}, follow_redirects=False
    )

    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/sign-in"
    assert session.scalars(select(UserSession)).all() == []
