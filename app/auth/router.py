"""JSON API for signing in and out (`/api/auth/...`) and reading the audit log (`/api/audit`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from app.auth import service
from app.auth.audit import AuditFilter, list_audit, record_audit
from app.auth.dependencies import SESSION_COOKIE, require_role
from app.auth.roles import Role
from app.auth.schemas import AuditEventOut, MeOut, SessionOut, SignInIn, UserOut
from app.auth.signin import attempt_sign_in, clear_session_cookie, set_session_cookie
from app.auth.tables import User
from app.clock import get_clock
from app.db.errors import MAX_RECORD_ID
from app.db.session import SessionDep
from app.isodate import IsoDate
from app.pagination import Page, PageParams, page_params
from app.settings import Settings

router = APIRouter(tags=["auth"])


@router.post("/api/auth/session", response_model=SessionOut)
async def sign_in(body: SignInIn, request: Request) -> Response:
    """Sign in: sets the session cookie and returns the CSRF token for unsafe API calls."""
    result = await attempt_sign_in(request, body.username, body.password)
    if result.user is None or result.opened is None:
        return JSONResponse(
            {"detail": service.SIGN_IN_FAILED, "code": "sign_in_failed"}, status_code=401
        )
    payload = SessionOut(
        user=UserOut.model_validate(result.user),
        csrf_token=result.opened.csrf_token,
        expires_at=result.opened.expires_at,
    )
    response = JSONResponse(payload.model_dump(mode="json"))
    set_session_cookie(response, request.app.state.settings, result.opened.token)
    return response


@router.get("/api/auth/me", response_model=MeOut)
def me(request: Request, user: Annotated[User, Depends(require_role(Role.NAVIGATOR))]) -> MeOut:
    return MeOut(user=UserOut.model_validate(user), csrf_token=request.state.csrf_token)


@router.delete("/api/auth/session", status_code=204)
def sign_out(
    request: Request,
    user: Annotated[User, Depends(require_role(Role.NAVIGATOR))],
    session: SessionDep,
) -> Response:
    service.end_session(session, request.cookies.get(SESSION_COOKIE))
    record_audit(session, user_id=user.id, action="sign_out", now=get_clock(request).now())
    response = Response(status_code=204)
    clear_session_cookie(response, request.app.state.settings)
    return response


@router.get("/api/audit", response_model=Page[AuditEventOut])
def audit_log(
    request: Request,
    _manager: Annotated[User, Depends(require_role(Role.MANAGER))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    username: Annotated[str | None, Query(max_length=64)] = None,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    on: Annotated[IsoDate | None, Query(alias="date", description="local day")] = None,
) -> Page[AuditEventOut]:
    settings: Settings = request.app.state.settings
    start, end = settings.calendar.day_bounds(on) if on else (None, None)
    rows, total = list_audit(
        session,
        AuditFilter(
            username=username,
            patient_id=patient_id,
            action=action,
            occurred_from=start,
            occurred_to=end,
        ),
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[
            AuditEventOut(
                id=row.event.id,
                occurred_at=row.event.occurred_at,
                user_id=row.event.user_id,
                username=row.username,
                action=row.event.action,
                patient_id=row.event.patient_id,
                appointment_id=row.event.appointment_id,
                detail=row.event.detail,
            )
            for row in rows
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
