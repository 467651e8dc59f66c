"""Security headers on every response, and no caching of pages or API answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

# No inline script or style anywhere: the NHS.UK JavaScript is loaded as a file.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' https://assets.nhs.uk; connect-src 'self'; object-src 'none'; "
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


def install_security_headers(app: FastAPI) -> None:
    settings = app.state.settings
    # Behind https, tell browsers never to use plain http for this host again.
    https_only = settings.env == "production" or settings.public_base_url.startswith("https://")

    @app.middleware("http")
    async def add_security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in security_headers(request.url.path).items():
            response.headers.setdefault(name, value)
        if https_only:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
