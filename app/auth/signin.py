"""One sign-in attempt end to end, shared by the sign-in page and `POST /api/auth/session`.

It runs in its own unit of work so a failure (the counter, the lockout, the audit entry) is
committed even though the caller answers with an error, and the deliberate delay on failure
is spent after the transaction has ended, holding no lock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from app.auth import service
from app.auth.dependencies import SESSION_COOKIE
from app.auth.errors import TooManyAttemptsError
from app.auth.tables import User
from app.auth.throttle import LoginThrottle
from app.db.session import Database
from app.settings import Settings


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    opened: service.OpenedSession | None


def secure_cookies(settings: Settings) -> bool:
    return settings.env == "production" or settings.public_base_url.startswith("https://")


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    # No max-age: the cookie ends with the browser (shared clinic workstations); the server
    # enforces the idle and absolute limits whatever the browser keeps.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(settings),
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, secure=secure_cookies(settings), samesite="lax", path="/"
    )


def _throttle(request: Request, settings: Settings) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle(settings.login_attempts_per_minute)
        request.app.state.login_throttle = throttle
    return throttle


def _attempt(database: Database, settings: Settings, username: str, password: str) -> SignInResult:
    with database.unit_of_work() as session:
        try:
            user = service.authenticate(session, settings, username=username, password=password)
        except service.SignInFailedError:
            return SignInResult(user=None, opened=None)
        opened = service.open_session(session, settings, user)
        return SignInResult(user=user, opened=opened)


async def attempt_sign_in(request: Request, username: str, password: str) -> SignInResult:
    """Check the credentials; on failure wait `login_failure_delay_ms` before answering."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    client = request.client.host if request.client else "unknown"
    throttle = _throttle(request, settings)
    if throttle.blocked(client):
        raise TooManyAttemptsError("Too many sign-in attempts. Wait a minute and try again.")
    result = await run_in_threadpool(_attempt, database, settings, username, password)
    if result.user is None:
        throttle.record_failure(client)
        await asyncio.sleep(settings.login_failure_delay_ms / 1000)
    return result
