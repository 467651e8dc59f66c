"""One sign-in attempt end to end, shared by the sign-in page and `POST /api/auth/session`.

It runs in its own unit of work so a failure (the counter, the lockout, the audit entry) is
committed even though the caller answers with an error, and the deliberate delay on failure
is spent after the transaction has ended, holding no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

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


def _attempt(
    database: Database, settings: Settings, username: str, password: str, now: datetime
) -> SignInResult:
    with database.unit_of_work() as session:
        try:
            user = service.authenticate(
                session, settings, username=username, password=password, now=now
            )
        except service.SignInFailedError:
            return SignInResult(user=None, opened=None)
        opened = service.open_session(session, settings, user, now=now)
        return SignInResult(user=user, opened=opened)


FailureDelay = Callable[[float], Awaitable[None]]


def failure_delay(request: Request) -> FailureDelay:
    """How a failed sign-in waits: `app.state.sign_in_delay` (tests record it), else sleep."""
    delay: FailureDelay = getattr(request.app.state, "sign_in_delay", asyncio.sleep)
    return delay


async def attempt_sign_in(request: Request, username: str, password: str) -> SignInResult:
    """Check the credentials; on failure wait `login_failure_delay_ms` before answering.

    An address past its failed-attempt limit still signs in with the right password; a
    wrong one waits longer (`login_throttled_delay_ms`) and is answered 429 with
    `Retry-After`. The client address is the TCP peer (`request.client`): uvicorn replaces
    it with a forwarded address only for a trusted proxy (`NAVIGATOR_TRUSTED_PROXIES`).
    """
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    client = request.client.host if request.client else "unknown"
    throttle = _throttle(request, settings)
    throttled = throttle.blocked(client)
    if "\x00" in username:
        # No account can have a NUL in its name (PostgreSQL text refuses it): the ordinary
        # failure, not a database error.
        result = SignInResult(user=None, opened=None)
    else:
        now = request.app.state.clock.now()
        result = await run_in_threadpool(_attempt, database, settings, username, password, now)
    if result.user is None:
        throttle.record_failure(client)
        if throttled:
            await failure_delay(request)(settings.login_throttled_delay_ms / 1000)
            raise TooManyAttemptsError(
                "Too many failed sign-ins from this computer's network. Wait a minute and try "
                "again; the right username and password still sign you in.",
                retry_after=throttle.retry_after(client),
            )
        await failure_delay(request)(settings.login_failure_delay_ms / 1000)
    return result
