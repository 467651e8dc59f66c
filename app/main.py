"""The FastAPI application: wires settings, the database, middleware and every feature's routes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.analytics.pages import router as analytics_pages
from app.analytics.router import router as analytics_router
from app.appointments.router import router as appointments_router
from app.asgi import (
    BodyLimitMiddleware,
    PublicRedirectMiddleware,
    route_template,
    watching_send,
)
from app.auth.pages import router as auth_pages
from app.auth.router import router as auth_router
from app.bookings.pages import router as bookings_pages
from app.calls.pages import router as calls_pages
from app.calls.router import router as calls_router
from app.calls.script_pages import router as calls_script_pages
from app.clock import SYSTEM_CLOCK, Clock
from app.db.admission import AdmissionMiddleware
from app.db.errors import install_database_error_handlers
from app.db.session import Database
from app.errors import DomainError, InvalidInputError, TooManyRequestsError
from app.feed.pages import router as feed_pages
from app.feed.router import router as feed_router
from app.health.router import router as health_router
from app.logging_setup import configure_logging, request_id_var, request_user_var
from app.observability.metrics import install_metrics_middleware
from app.observability.router import router as metrics_router
from app.openapi import install_openapi
from app.patients.pages import router as patients_pages
from app.patients.router import router as patients_router
from app.risk.pages import router as risk_pages
from app.risk.router import router as risk_router
from app.settings import Settings, get_settings
from app.sms.pages import router as sms_pages
from app.sms.router import router as sms_router
from app.sms.webhooks import router as sms_webhooks_router
from app.targeting.pages import router as targeting_pages
from app.targeting.router import router as targeting_router
from app.tasks.pages import router as tasks_pages
from app.tasks.router import router as tasks_router
from app.ui.errors import domain_error_response
from app.ui.pages import router as ui_pages
from app.ui.setup import install_ui

logger = logging.getLogger("navigator.http")


class RequestContextMiddleware:
    """Gives each request an id (kept from `X-Request-ID` when the caller sent one) that every
    log line of the request carries and the response echoes, and logs one line per request:
    method, route template (never the concrete path: paths can carry identifiers), status,
    time taken and the signed-in user's id (never a name)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex)[:64]
        token = request_id_var.set(request_id)
        user_holder: dict[str, int] = {}
        user_token = request_user_var.set(user_holder)
        started = time.perf_counter()
        status = 500

        def on_start(code: int, headers: MutableHeaders) -> None:
            nonlocal status
            status = code
            headers["X-Request-ID"] = request_id

        try:
            await self.app(scope, receive, watching_send(send, on_start))
        finally:
            user_id = user_holder.get("user_id")
            logger.info(
                "%s %s %s %.1fms user=%s",
                scope["method"],
                route_template(scope),
                status,
                (time.perf_counter() - started) * 1000,
                user_id if user_id is not None else "-",
                extra={"request_id": request_id, "user_id": user_id},
            )
            request_user_var.reset(user_token)
            request_id_var.reset(token)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SIGN_IN_PATHS = frozenset({"/sign-in", "/api/auth/session"})


def body_limit_for(settings: Settings) -> Callable[[Scope], int]:
    """The body limit of a request's route family: webhooks, sign-in, forms, the JSON API."""

    def limit_for(scope: Scope) -> int:
        path: str = scope["path"]
        if path.startswith("/webhooks/") or path == "/webhooks":
            return settings.body_limit_webhook_bytes
        if path in SIGN_IN_PATHS:
            return settings.body_limit_sign_in_bytes
        content_type = Headers(scope=scope).get("content-type", "")
        if content_type.startswith(FORM_TYPES):
            return settings.body_limit_form_bytes
        return settings.body_limit_json_bytes

    return limit_for


MAX_VALIDATION_ERRORS = 10


def validation_error(error: RequestValidationError) -> InvalidInputError:
    """FastAPI's validation errors as a domain error naming each field and its problem.

    Never the submitted value (FastAPI echoes `input`, a password included), and bounded:
    at most ten problems, each field path and message cut short, so a huge or deeply nested
    body cannot make a huge answer.
    """
    details: list[dict[str, object]] = []
    for item in error.errors()[:MAX_VALIDATION_ERRORS]:
        location = [part if isinstance(part, int) else str(part)[:40] for part in item["loc"]][:8]
        field = ".".join(str(part) for part in location)
        details.append(
            {
                "field": field,
                "loc": location,
                "message": str(item.get("msg", "Invalid value"))[:160],
            }
        )
    if not details:
        return InvalidInputError("The request is not valid.")
    first = details[0]
    return InvalidInputError(f"{first['field']}: {first['message']}", details=details)


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if database is None:
            app.state.database.dispose()

    app = FastAPI(
        title="Navigator",
        version=__version__,
        description=(
            "Patient navigator call management for NHS outpatient clinics. Risk scores are for "
            "offering help (calls, reminders, support), never for overbooking, discharge or "
            "penalties."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database or Database(settings)
    app.state.clock = clock or SYSTEM_CLOCK

    @app.exception_handler(DomainError)
    async def domain_error_handler(request: Request, error: DomainError) -> Response:
        # JSON for the API, the NHS-style error page (or sign-in redirect) for pages.
        response = domain_error_response(request, error)
        if isinstance(error, TooManyRequestsError):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error_handler(request: Request, error: RequestValidationError) -> Response:
        return domain_error_response(request, validation_error(error))

    if not settings.is_sqlite:
        # Innermost: a request waiting for a slot is already counted, timed and logged.
        app.add_middleware(
            AdmissionMiddleware, limit=settings.database_pool_size + settings.database_max_overflow
        )
    install_ui(app)
    install_metrics_middleware(app)
    app.add_middleware(PublicRedirectMiddleware, public_base_url=settings.public_base_url)
    # Outside everything that could read a body; inside the request log, so 413s are logged.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit_for(settings))
    app.add_middleware(RequestContextMiddleware)

    app.include_router(health_router)
    app.include_router(patients_router)
    app.include_router(patients_pages)
    app.include_router(tasks_router)
    app.include_router(tasks_pages)
    app.include_router(appointments_router)
    app.include_router(auth_router)
    app.include_router(auth_pages)
    app.include_router(ui_pages)
    app.include_router(calls_router)
    app.include_router(calls_pages)
    app.include_router(calls_script_pages)
    app.include_router(bookings_pages)
    app.include_router(sms_router)
    app.include_router(sms_webhooks_router)
    app.include_router(sms_pages)
    app.include_router(feed_router)
    app.include_router(feed_pages)
    app.include_router(risk_router)
    app.include_router(analytics_router)
    app.include_router(analytics_pages)
    app.include_router(risk_pages)
    app.include_router(metrics_router)
    app.include_router(targeting_router)
    app.include_router(targeting_pages)
    install_openapi(app)
    install_database_error_handlers(app)
    return app


def create_production_app() -> FastAPI:
    """Factory for `uvicorn --factory` (several workers each build their own app)."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.env == "production")
    return create_app(settings)
