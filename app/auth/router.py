"""JSON API for signing in and out (`/api/auth/...`) and reading the audit log (`/api/audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.auth import audit, service
from app.auth.audit import AuditFilter, record_audit
from app.auth.audit_words import action_words
from app.auth.dependencies import SESSION_COOKIE, require_role
from app.auth.pages import csv_attachment
from app.auth.roles import Role
from app.auth.schemas import (
    AuditEventOut,
    AuditPageIn,
    AuditSearchIn,
    MeOut,
    SessionOut,
    SignInIn,
    UserOut,
)
from app.auth.signin import attempt_sign_in, clear_session_cookie, set_session_cookie
from app.auth.tables import User
from app.clock import get_clock
from app.db.errors import MAX_RECORD_ID
from app.db.session import SessionDep
from app.errors import InvalidInputError
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


def _audit_page(
    session: Session, manager: User, now: datetime, filters: AuditFilter, limit: int, offset: int
) -> Page[AuditEventOut]:
    rows, total = audit.search_audit(
        session, filters, reader_id=manager.id, now=now, limit=limit, offset=offset
    )
    return Page(
        items=[
            AuditEventOut(
                id=row.event.id,
                occurred_at=row.event.occurred_at,
                user_id=row.event.user_id,
                username=row.username,
                action=row.event.action,
                action_in_words=action_words(row.event.action),
                patient_id=row.event.patient_id,
                appointment_id=row.event.appointment_id,
                detail=row.event.detail,
            )
            for row in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


ManagerDep = Annotated[User, Depends(require_role(Role.MANAGER))]


def _checked(request: Request, session: Session, body: AuditSearchIn) -> audit.CheckedSearch:
    settings: Settings = request.app.state.settings
    search = audit.AuditSearch(
        user_id=body.user_id,
        nhs_number=body.nhs_number,
        action=body.action,
        first_day=body.date_from,
        last_day=body.date_to,
    )
    return audit.check_search(session, search, settings.calendar)


@router.get("/api/audit", response_model=Page[AuditEventOut])
def audit_log(
    request: Request,
    manager: ManagerDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    user_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    on: Annotated[IsoDate | None, Query(alias="date", description="one local day")] = None,
    date_from: Annotated[IsoDate | None, Query(alias="from", description="first day")] = None,
    date_to: Annotated[
        IsoDate | None, Query(alias="to", description="last day, included; not before from")
    ] = None,
) -> Page[AuditEventOut]:
    """Audit entries, newest first, with each action as a code and in words. To filter by
    NHS number use `POST /api/audit/search`: an NHS number is refused in a web address."""
    if "nhs_number" in request.query_params:
        raise InvalidInputError(
            "The audit log was not searched.",
            details=[
                {
                    "field": "nhs_number",
                    "message": "Send the NHS number in the body of POST /api/audit/search, "
                    "not in the web address",
                }
            ],
        )
    settings: Settings = request.app.state.settings
    checked = audit.check_search(
        session,
        audit.AuditSearch(
            user_id=user_id,
            username=username,
            patient_id=patient_id,
            action=action,
            first_day=date_from or on,
            last_day=date_to or on,
        ),
        settings.calendar,
    )
    now = get_clock(request).now()
    return _audit_page(session, manager, now, checked.filters, page.limit, page.offset)


@router.post("/api/audit/search", response_model=Page[AuditEventOut])
def search_audit_log(
    request: Request, body: AuditPageIn, manager: ManagerDep, session: SessionDep
) -> Page[AuditEventOut]:
    """The audit log filtered by user, NHS number, action and days (every problem with the
    filters is listed in one 422, by field). Looking up a patient's trail is itself audited."""
    checked = _checked(request, session, body)
    now = get_clock(request).now()
    return _audit_page(session, manager, now, checked.filters, body.limit, body.offset)


@router.post(
    "/api/audit/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The filtered entries (CSV)."}},
)
def export_audit_log(
    request: Request, body: AuditSearchIn, manager: ManagerDep, session: SessionDep
) -> Response:
    """The filtered entries as CSV, newest first (at most 50,000; a cut-off export has an
    `X-Navigator-Truncated` header). The export is itself recorded in the audit log."""
    settings: Settings = request.app.state.settings
    export = audit.export_audit(
        session,
        _checked(request, session, body),
        reader_id=manager.id,
        now=get_clock(request).now(),
        calendar=settings.calendar,
    )
    return csv_attachment(export)
