"""Signing in and out through the JSON API: sessions, lockout, enumeration, expiry."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth.dependencies import SESSION_COOKIE
from app.auth.roles import Role
from app.auth.tables import AuditEvent, User, UserSession
from app.clock import FixedClock
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import DEFAULT_PASSWORD, create_user, sign_in

SIGN_IN = "/api/auth/session"


def _attempt(client: TestClient, username: str, password: str) -> tuple[int, dict[str, str]]:
    response = client.post(SIGN_IN, json={"username": username, "password": password})
    return response.status_code, response.json()


def test_signing_in_sets_a_secure_http_only_cookie_and_returns_the_csrf_token(
    app_client: TestClient, session: Session
) -> None:
    user = create_user(session, role=Role.MANAGER, username="casey")
    session.commit()

    response = app_client.post(SIGN_IN, json={"username": "Casey", "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "casey"
    assert body["user"]["role"] == "manager"
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Secure" in cookie  # the test settings' public URL is https
    assert "samesite=lax" in cookie.lower()
    token = response.cookies[SESSION_COOKIE]
    stored = session.scalars(select(UserSession.token_hash)).all()
    assert len(stored) == 1
    assert token not in stored[0]  # only a hash of the token is kept
    session.expire_all()
    assert session.get(User, user.id).last_login is not None  # type: ignore[union-attr]


def test_cookies_are_not_secure_on_a_plain_http_development_url(
    settings: Settings, database: object, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="devon")
    session.commit()
    plain = settings.model_copy(update={"public_base_url": "http://127.0.0.1:8000"})
    with TestClient(create_app(plain, database, clock=clock)) as client:  # type: ignore[arg-type]
        response = client.post(SIGN_IN, json={"username": "devon", "password": DEFAULT_PASSWORD})
    assert "Secure" not in response.headers["set-cookie"]


def test_me_shows_the_signed_in_user(app_client: TestClient, session: Session) -> None:
    create_user(session, role=Role.ADMIN, username="ada")
    session.commit()
    csrf = sign_in(app_client, "ada")

    body = app_client.get("/api/auth/me").json()

    assert body["user"]["username"] == "ada"
    assert body["user"]["role"] == "admin"
    assert body["csrf_token"] == csrf


def test_unknown_user_wrong_password_locked_and_inactive_get_the_same_answer(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="wrongpw")
    create_user(session, username="locked", locked_until=clock.now() + timedelta(minutes=5))
    create_user(session, username="gone", active=False)
    session.commit()

    answers = [
        _attempt(app_client, "nobody-here", DEFAULT_PASSWORD),
        _attempt(app_client, "wrongpw", "not the password"),
        _attempt(app_client, "locked", DEFAULT_PASSWORD),
        _attempt(app_client, "gone", DEFAULT_PASSWORD),
    ]

    assert {status for status, _ in answers} == {401}
    assert len({body["detail"] for _, body in answers}) == 1
    assert SESSION_COOKIE not in app_client.cookies


def test_repeated_failures_lock_the_account_even_against_the_right_password(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    user = create_user(session, username="robin")
    session.commit()

    for _ in range(settings.login_max_failures):
        assert _attempt(app_client, "robin", "a wrong guess!")[0] == 401
    status, _ = _attempt(app_client, "robin", DEFAULT_PASSWORD)

    assert status == 401
    session.expire_all()
    locked = session.get(User, user.id)
    assert locked is not None
    assert locked.locked_until is not None
    minutes = (locked.locked_until - clock.now()).total_seconds() / 60
    assert settings.login_lockout_minutes - 1 < minutes <= settings.login_lockout_minutes
    reasons = [
        event.detail["reason"]
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "sign_in.failed").order_by(AuditEvent.id)
        )
        if event.detail
    ]
    assert reasons[-2:] == ["password_locked", "locked"]


def test_a_lock_expires_and_a_success_resets_the_failure_count(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    user = create_user(
        session, username="sam", failed_attempts=3, locked_until=clock.now() - timedelta(seconds=1)
    )
    session.commit()

    assert _attempt(app_client, "sam", DEFAULT_PASSWORD)[0] == 200

    session.expire_all()
    refreshed = session.get(User, user.id)
    assert refreshed is not None
    assert refreshed.failed_attempts == 0
    assert refreshed.locked_until is None


def test_failed_sign_ins_per_client_are_slowed_and_refused_but_the_right_password_still_works(
    settings: Settings, database: object, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="kim")
    session.commit()
    limited = settings.model_copy(
        update={"login_attempts_per_minute": 3, "login_throttled_delay_ms": 1500}
    )
    app = create_app(limited, database, clock=clock)  # type: ignore[arg-type]
    delays: list[float] = []

    async def record_delay(seconds: float) -> None:
        delays.append(seconds)

    app.state.sign_in_delay = record_delay
    with TestClient(app) as client:
        successes = [_attempt(client, "kim", DEFAULT_PASSWORD)[0] for _ in range(4)]
        failures = [_attempt(client, f"guess{n}", "whatever-it-is")[0] for n in range(3)]
        # A spoofed forwarding header does not make a new client: no proxy is trusted.
        spoofed = client.post(
            SIGN_IN,
            json={"username": "guess9", "password": "whatever-it-is"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        still_signs_in = _attempt(client, "kim", DEFAULT_PASSWORD)[0]
    assert successes == [200, 200, 200, 200]
    assert failures == [401, 401, 401]
    assert spoofed.status_code == 429
    assert "Too many" in spoofed.json()["detail"]
    assert 1 <= int(spoofed.headers["Retry-After"]) <= 60
    assert still_signs_in == 200
    assert delays == [0.0, 0.0, 0.0, 1.5]  # the throttled failure waited longer


def test_the_api_sign_in_only_accepts_json_so_a_cross_site_form_cannot_use_it(
    app_client: TestClient, session: Session
) -> None:
    create_user(session, username="jo")
    session.commit()

    response = app_client.post(
        SIGN_IN,
        content='{"username": "jo", "password": "correct horse battery"}',
        headers={"content-type": "text/plain"},
    )

    assert response.status_code == 422
    assert SESSION_COOKIE not in response.cookies


def test_a_failed_sign_in_is_slowed_down_and_a_success_is_not(
    settings: Settings, database: object, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="quick")
    session.commit()
    slowed = settings.model_copy(update={"login_failure_delay_ms": 250})
    app = create_app(slowed, database, clock=clock)  # type: ignore[arg-type]
    delays: list[float] = []

    async def record_delay(seconds: float) -> None:
        delays.append(seconds)

    app.state.sign_in_delay = record_delay
    with TestClient(app) as client:
        failed, _ = _attempt(client, "nobody", "some-password")
        succeeded, _ = _attempt(client, "quick", DEFAULT_PASSWORD)
    assert (failed, succeeded) == (401, 200)
    assert delays == [0.25]  # one wait, for the failure only


def test_signing_out_ends_the_session_on_the_server(
    app_client: TestClient, session: Session
) -> None:
    create_user(session, username="lee")
    session.commit()
    csrf = sign_in(app_client, "lee")
    token = app_client.cookies[SESSION_COOKIE]

    response = app_client.delete(SIGN_IN, headers={"X-CSRF-Token": csrf})

    assert response.status_code == 204
    assert session.scalars(select(UserSession)).all() == []
    session.rollback()  # end the read so the app can write (SQLite has one writer)
    # Replaying the old cookie does not work either.
    app_client.cookies.set(SESSION_COOKIE, token)
    assert app_client.get("/api/auth/me").status_code == 401


def test_an_idle_session_expires(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    create_user(session, username="idle")
    session.commit()
    sign_in(app_client, "idle")
    assert app_client.get("/api/auth/me").status_code == 200

    clock.advance(minutes=settings.session_idle_minutes, seconds=1)

    assert app_client.get("/api/auth/me").status_code == 401
    assert app_client.get("/api/patients").status_code == 401


def test_a_session_in_use_still_ends_at_its_absolute_limit(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    create_user(session, username="busy")
    session.commit()
    sign_in(app_client, "busy")

    for _ in range(settings.session_absolute_hours * 3 - 1):  # in use every 20 minutes
        clock.advance(minutes=20)
        assert app_client.get("/api/auth/me").status_code == 200
    clock.advance(minutes=20)  # exactly the absolute limit after signing in

    assert app_client.get("/api/auth/me").status_code == 401


def test_activity_keeps_a_session_alive(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="active")
    session.commit()
    sign_in(app_client, "active")
    clock.advance(minutes=20)
    assert app_client.get("/api/auth/me").status_code == 200
    clock.advance(minutes=20)  # 40 minutes after signing in, 20 after the last request

    assert app_client.get("/api/auth/me").status_code == 200
    session.expire_all()
    assert session.scalars(select(UserSession.last_seen_at)).one() == clock.now()


def test_a_deactivated_account_is_signed_out_at_once(
    app_client: TestClient, session: Session
) -> None:
    user = create_user(session, username="leaver")
    session.commit()
    sign_in(app_client, "leaver")

    session.execute(update(User).where(User.id == user.id).values(active=False))
    session.commit()

    assert app_client.get("/api/auth/me").status_code == 401
