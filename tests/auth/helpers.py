"""Test helpers for accounts: `create_user` and `sign_in` (used by every feature's tests)."""

from __future__ import annotations

import functools
import itertools
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.dependencies import SESSION_COOKIE
from app.auth.passwords import hash_password
from app.auth.roles import Role
from app.auth.tables import User
from tests.clock import TEST_NOW
from tests.factories import create_patient

DEFAULT_PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


@functools.cache
def _hash(password: str) -> str:
    # argon2 is deliberately slow; tests reuse one hash per password.
    return hash_password(password)


def create_user(
    session: Session,
    role: Role = Role.NAVIGATOR,
    username: str | None = None,
    password: str = DEFAULT_PASSWORD,
    **overrides: object,
) -> User:
    """An active account (policy not applied: tests may need any password)."""
    values: dict[str, object] = {
        "username": (username or f"{Role(role).value}{next(_numbers)}").lower(),
        "role": Role(role).value,
        "password_hash": _hash(password),
        "active": True,
        "failed_attempts": 0,
    }
    values.update(overrides)
    user = User(**values)
    session.add(user)
    session.flush()
    return user


def sign_in(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> str:
    """Sign `client` in through the API; returns the CSRF token for unsafe API calls.

    The cookie is Secure when the public URL is https (as in the test settings), and the
    test client talks plain http, so the cookie is put in the client's jar explicitly.
    """
    response = client.post("/api/auth/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token = response.cookies.get(SESSION_COOKIE)
    assert token, "the sign-in response set no session cookie"
    client.cookies.delete(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, token)
    csrf_token: str = response.json()["csrf_token"]
    return csrf_token


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in_with_form(
    client: TestClient, username: str, password: str = DEFAULT_PASSWORD, next_path: str = "/"
) -> Response:
    """Sign in through the sign-in page, as a browser does; returns the POST's response."""
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={
            "username": username,
            "password": password,
            "csrf_token": form_token(page.text),
            "next": next_path,
        },
        follow_redirects=False,
    )


AUDITED_NHS_NUMBER = "9434765919"


def create_audit_trail(session: Session) -> tuple[int, int]:
    """Three audit entries for the audit log's tests: a navigator `caller` viewed a patient
    (NHS number `AUDITED_NHS_NUMBER`) and took a call about another today; the manager `dpo`
    viewed the first patient ten days ago. Returns the patient's id and the navigator's id."""
    manager = create_user(session, role=Role.MANAGER, username="dpo")
    navigator = create_user(session, username="caller")
    patient = create_patient(session, nhs_number=AUDITED_NHS_NUMBER)
    other = create_patient(session)
    for user, action, whose, when in [
        (navigator, "patient.viewed", patient, TEST_NOW),
        (navigator, "call.taken", other, TEST_NOW),
        (manager, "patient.viewed", patient, TEST_NOW - timedelta(days=10)),
    ]:
        record_audit(session, user_id=user.id, action=action, patient_id=whose.id, now=when)
    session.commit()
    return patient.id, navigator.id
