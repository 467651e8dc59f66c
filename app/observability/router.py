"""`GET /metrics`: Prometheus text format, for a bearer token or a signed-in admin."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import current_user
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import Database, SessionDep
from app.observability.metrics import render_metrics
from app.settings import Settings

router = APIRouter(include_in_schema=False)


def _bearer_matches(request: Request, settings: Settings) -> bool:
    expected = settings.metrics_token.get_secret_value()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@router.get("/metrics")
async def metrics(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    settings: Settings = request.app.state.settings
    if not _bearer_matches(request, settings):
        # A scraper is a machine: JSON 401/403, never the sign-in page's redirect.
        if user is None:
            return JSONResponse(
                {
                    "detail": "Send the metrics bearer token or sign in as an admin",
                    "code": "not_signed_in",
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not user.has_role(Role.ADMIN):
            return JSONResponse(
                {"detail": "You do not have permission to do that", "code": "forbidden"},
                status_code=403,
            )
    # End the request's own transaction first (signing in may have written to it): the gauges
    # are read on connections of their own, and on SQLite they would wait on its write lock
    # for the busy timeout, 30 s per gauge, then come back empty.
    await run_in_threadpool(session.commit)
    database: Database = request.app.state.database
    today = settings.calendar.today(clock.now())
    return await run_in_threadpool(render_metrics, database, today)
