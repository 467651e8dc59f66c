"""Pure ASGI middleware helpers, the request body limits and public redirects.

Navigator's middleware (request id and log line, security headers, request metrics) only needs
to see a response's status and add headers. Wrapping `send` does that without Starlette's
`BaseHTTPMiddleware`, which runs every request through extra tasks and memory streams: with
three such layers that was a measurable share of each request's CPU under load.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ResponseStart = Callable[[int, MutableHeaders], None]


def watching_send(send: Send, on_start: ResponseStart) -> Send:
    """`send`, calling `on_start(status, headers)` as the response starts (headers editable)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            on_start(message["status"], MutableHeaders(scope=message))
        await send(message)

    return wrapped


def route_template(scope: Scope) -> str:
    """The matched route's template (never the concrete path: it can carry identifiers)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


# --- request body limits ----------------------------------------------------------------------


class RequestBodyTooLarge(HTTPException):
    """A body past its route family's limit: answered 413 by the ordinary error handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than {limit} bytes.")
        self.limit = limit


BodyLimitFor = Callable[[Scope], int]


class BodyLimitMiddleware:
    """Refuses a request body larger than its route family allows before anything parses it.

    A `Content-Length` over the limit is answered 413 at once, without reading a byte of the
    body; a chunked (or lying) body is counted as it streams in and stops at the limit, so no
    more than the limit is ever held in memory. `limit_for(scope)` picks the limit (JSON API,
    forms, webhooks: see `app.main.body_limit_for`).
    """

    def __init__(self, app: ASGIApp, limit_for: BodyLimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except RequestBodyTooLarge:
            # Raised where no error handler caught it (outside a route): answer here.
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> ASGIApp:
    body = {"detail": f"The request body is larger than {limit} bytes.", "code": "too_large"}
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})


# --- redirects ----------------------------------------------------------------------------------


class PublicRedirectMiddleware:
    """Absolute redirects point at the public base URL, never at the request's Host header.

    Starlette builds its trailing-slash redirect from the Host header, so a forged header
    sent a user to another site. Every absolute `Location` is rebuilt on
    `NAVIGATOR_PUBLIC_BASE_URL` with the same path and query.
    """

    def __init__(self, app: ASGIApp, public_base_url: str) -> None:
        self.app = app
        self.base = public_base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def on_start(status: int, headers: MutableHeaders) -> None:
            location = headers.get("location")
            if 300 <= status < 400 and location:
                headers["location"] = public_location(self.base, location)

        await self.app(scope, receive, watching_send(send, on_start))


def public_location(base: str, location: str) -> str:
    """`location` on `base` when it names a host (absolute or `//host`); else unchanged."""
    parts = urlsplit(location)
    if not parts.netloc and not location.startswith("//"):
        return location
    path = parts.path or "/"
    path = "/" + path.lstrip("/")  # "//evil.example" is a host, not a path
    return base + path + (f"?{parts.query}" if parts.query else "")
