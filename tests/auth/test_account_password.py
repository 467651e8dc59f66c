"""Changing my own password: the current one, the new one twice, the password rules, every
problem at once with nothing changed; audited; the account's other sessions signed out."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from tests.auth.helpers import DEFAULT_PASSWORD, create_user, sign_in

NEW_PASSWORD = "plum orchard lantern seven"


def _change(client: TestClient, csrf: str, current: str, new: str, confirm: str) -> Response:
    return client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current-password": current,
            "new-password": new,
            "confirm-password": confirm,
        },
        follow_redirects=False,
    )


def test_a_navigator_changes_their_password_and_is_signed_out_elsewhere(
    app_client: TestClient, session: Session
) -> None:
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    app = app_client.app
    assert isinstance(app, FastAPI)
    with TestClient(app) as laptop:
        sign_in(laptop, user.username)
        csrf = sign_in(app_client, user.username)

        form = app_client.get("/account/password")
        response = _change(app_client, csrf, DEFAULT_PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        here = app_client.get("/api/auth/me")
        there = laptop.get("/api/auth/me")

    assert form.status_code == 200
    assert 'autocomplete="current-password"' in form.text
    assert response.status_code == 303
    done = app_client.get(response.headers["location"])
    assert "Your password was changed." in done.text
    assert 'data-testid="success-banner"' in done.text
    assert here.status_code == 200  # this session stays signed in
    assert there.status_code == 401  # the laptop's session was signed out
    old = app_client.post(
        "/api/auth/session", json={"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert old.status_code != 200
    sign_in(app_client, user.username, NEW_PASSWORD)
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.password_changed")
    ).one()
    assert audit.user_id == user.id
    assert audit.detail == {"target_user_id": user.id, "other_sessions_signed_out": 1}


def test_every_problem_is_listed_at_once_and_the_password_is_not_changed(
    app_client: TestClient, session: Session
) -> None:
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    csrf = sign_in(app_client, user.username)

    wrong = _change(app_client, csrf, "not my password", "short", "different")

    assert wrong.status_code == 422
    text = wrong.text
    assert "nhsuk-error-summary" in text
    assert '<a href="#current-password">Your current password is not right</a>' in text
    assert 'href="#new-password">Password must be at least 12 characters' in text
    assert '<a href="#confirm-password">The two new passwords do not match</a>' in text
    common = _change(app_client, csrf, DEFAULT_PASSWORD, "password1234", "password1234")
    assert "Password is too common" in common.text
    sign_in(app_client, user.username, DEFAULT_PASSWORD)  # the old password still works
    assert (
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.password_changed")
        ).first()
        is None
    )


def test_the_page_needs_a_signed_in_user_and_the_form_its_csrf_token(
    app_client: TestClient, session: Session
) -> None:
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()

    anonymous = app_client.get("/account/password", follow_redirects=False)
    sign_in(app_client, user.username)
    forged = app_client.post(
        "/account/password",
        data={
            "current-password": DEFAULT_PASSWORD,
            "new-password": NEW_PASSWORD,
            "confirm-password": NEW_PASSWORD,
        },
    )

    assert anonymous.status_code in {302, 303}
    assert forged.status_code == 403
    sign_in(app_client, user.username, DEFAULT_PASSWORD)
