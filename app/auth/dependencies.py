"""FastAPI dependencies that guard routes: the signed-in user, `require_role` and `verify_csrf`.

One cookie-backed session serves both pages and the JSON API. Unsafe methods (POST, PUT,
PATCH, DELETE) must prove they come from our own pages or client: forms carry `csrf_token`,
API calls send the `X-CSRF-Token` header; both are the session's synchroniser token.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.auth.errors import CsrfError, NotSignedInError
from app.auth.roles import Role
from app.auth.service import csrf_token_for, csrf_token_matches, resolve_session
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import PermissionDeniedError
from app.logging_setup import note_request_user
from app.settings import Settings

SESSION_COOKIE = "navigator_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MACHINE_PREFIXES = ("/api/", "/webhooks/")


def is_api_request(request: Request) -> bool:
    """JSON for /api and webhooks, and for clients that ask for JSON; HTML pages otherwise."""
    path = request.url.path
    if path.startswith(MACHINE_PREFIXES) or path in {"/api", "/webhooks"}:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@dataclass(frozen=True)
class SignedInUser:
    """What pages show of the signed-in user, safe to use after the request's session ended
    (an error page renders after the transaction rolled back and expired the ORM object)."""

    id: int
    username: str
    role: str

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def has_role(self, required: Role) -> bool:
        return self.role_enum.includes(required)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current_user(request: Request, session: SessionDep, clock: ClockDep) -> User | None:
    """The signed-in user or None.

    Also leaves on `request.state`: `user` (a `SignedInUser` snapshot for templates),
    `session_token` and `csrf_token`.
    """
    settings = _settings(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = resolve_session(session, settings, token, now=clock.now())
    request.state.user = (
        SignedInUser(id=user.id, username=user.username, role=user.role) if user else None
    )
    if user is not None:
        note_request_user(user.id)
    request.state.session_token = token if user is not None else None
    request.state.csrf_token = (
        csrf_token_for(settings.secret_key.get_secret_value(), token)
        if user is not None and token
        else None
    )
    return user


async def _csrf_candidate(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request that does not carry the session's synchroniser token."""
    if request.method in SAFE_METHODS:
        return
    token = getattr(request.state, "session_token", None)
    candidate = await _csrf_candidate(request)
    secret = _settings(request).secret_key.get_secret_value()
    if token is None or not csrf_token_matches(secret, token, candidate):
        if is_api_request(request):
            raise CsrfError(f"Missing or wrong {CSRF_HEADER} header for this session")
        raise CsrfError(
            "This form has expired or did not come from Navigator. Go back, reload the page "
            "and try again."
        )


async def verify_csrf(
    request: Request, _user: Annotated[User | None, Depends(current_user)]
) -> None:
    """Dependency: unsafe methods need `csrf_token` (forms) or `X-CSRF-Token` (JSON API)."""
    await check_csrf(request)


@functools.cache
def require_role(role: Role) -> Callable[..., Awaitable[User]]:
    """Dependency factory: the signed-in user when their role includes `role`.

    Not signed in: 401 for the API, a redirect to /sign-in for pages. Role too low: 403.
    Unsafe methods are CSRF-checked here too, so a guarded form or API call is never left
    open by forgetting `verify_csrf`. Cached per role, so FastAPI runs it once per request
    even when a router and its route both ask for it.
    """

    async def dependency(
        request: Request, user: Annotated[User | None, Depends(current_user)]
    ) -> User:
        if user is None:
            raise NotSignedInError("Sign in to continue")
        if not user.has_role(role):
            raise PermissionDeniedError("You do not have permission to do that")
        await check_csrf(request)
        return user

    dependency.__name__ = f"require_{role.value}"
    return dependency
