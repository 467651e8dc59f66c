"""Security headers on every response, and no caching of pages or API answers."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import watching_send

# No inline script or style anywhere: the NHS.UK JavaScript is loaded as a file.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's interactive docs load Swagger UI from a CDN and start it with an inline script;
# they carry no patient data, so they get a looser policy of their own.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
STATIC_PREFIXES = ("/static/", "/assets/")


def security_headers(path: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": (
            DOCS_CONTENT_SECURITY_POLICY if path.startswith(DOCS_PATHS) else CONTENT_SECURITY_POLICY
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    # Pages and API answers can carry patient data: never store them in a browser or proxy
    # cache. Static assets (no patient data) may be cached.
    if not path.startswith(STATIC_PREFIXES):
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return headers


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (those a route set itself win)."""

    def __init__(self, app: ASGIApp, *, https_only: bool) -> None:
        self.app = app
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def add_headers(_status: int, headers: MutableHeaders) -> None:
            for name, value in security_headers(scope["path"]).items():
                headers.setdefault(name, value)
            if self.https_only:
                headers.setdefault("Strict-Transport-Security", "max-age=31536000")

        await self.app(scope, receive, watching_send(send, add_headers))


def install_security_headers(app: FastAPI) -> None:
    settings = app.state.settings
    # Behind https, tell browsers never to use plain http for this host again.
    https_only = settings.env == "production" or settings.public_base_url.startswith("https://")
    app.add_middleware(SecurityHeadersMiddleware, https_only=https_only)
