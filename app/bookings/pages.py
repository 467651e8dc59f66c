"""The booking team's worklist: open rebook and cancel requests, their CSV export, and closing
one the PAS will not honour. For managers (the booking-team lead's role; see the README)."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.bookings import service
from app.bookings.tables import RequestKind
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import DomainError
from app.settings import Settings
from app.ui.templating import render as render_page

router = APIRouter(include_in_schema=False)
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
PAGE_SIZE = 50
EXPORT_LIMIT = 5_000
StatusFilter = Annotated[str, Query(pattern="^(open|escalated|closed|all)$")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _agreed(row: service.WorklistRow, settings: Settings) -> str:
    request = row.request
    if request.kind == RequestKind.CANCEL:
        return "Cancel"
    if request.preferred_start_at is None:
        return "First available"
    return settings.calendar.local(request.preferred_start_at).strftime("%a %-d %b %Y %H:%M")


@router.get("/bookings")
def worklist_page(
    request: Request,
    session: SessionDep,
    user: Manager,
    status: StatusFilter = "open",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    settings = _settings(request)
    rows, total = service.worklist(
        session, status=status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    record_audit(
        session,
        user_id=user.id,
        action="booking_requests.viewed",
        detail={
            "status": status,
            "page": page,
            "request_ids": [r.request.id for r in rows],
            "patient_ids": sorted({r.patient.id for r in rows}),  # for the unusual-access report
        },
    )
    return render_page(
        request,
        "bookings/worklist.html",
        {
            "page_title": "Booking requests",
            "rows": rows,
            "agreed": {row.request.id: _agreed(row, settings) for row in rows},
            "status": status,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "timezone": settings.timezone,
            "withdrawn": request.query_params.get("withdrawn"),
        },
    )


@router.get("/bookings.csv")
def worklist_csv(
    request: Request, session: SessionDep, user: Manager, status: StatusFilter = "open"
) -> Response:
    settings = _settings(request)
    rows, _total = service.worklist(session, status=status, limit=EXPORT_LIMIT)
    record_audit(
        session,
        user_id=user.id,
        action="booking_requests.exported",
        detail={
            "status": status,
            "request_ids": [r.request.id for r in rows],
            "patient_ids": sorted({r.patient.id for r in rows}),
        },
    )
    calendar = settings.calendar
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "request_id",
            "kind",
            "status",
            "requested_at_local",
            "patient_id",
            "nhs_number",
            "appointment_id",
            "clinic_code",
            "appointment_start_local",
            "agreed",
            "target_clinic_code",
            "reason",
            "matched_appointment_id",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.request.id,
                row.request.kind,
                row.request.status,
                calendar.local(row.request.requested_at).strftime("%Y-%m-%d %H:%M"),
                row.patient.pas_patient_id,
                row.patient.nhs_number or "",
                row.appointment.pas_appointment_id,
                row.original_clinic.code,
                calendar.local(row.appointment.start_at).strftime("%Y-%m-%d %H:%M"),
                _agreed(row, settings),
                row.target_clinic.code if row.target_clinic else "",
                row.request.reason,
                row.matched.pas_appointment_id if row.matched else "",
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="booking-requests-{status}.csv"'},
    )


@router.post("/bookings/{request_id}/withdraw")
def withdraw_request(
    request: Request,
    request_id: RecordId,
    session: SessionDep,
    user: Manager,
    clock: ClockDep,
    note: Annotated[str, Form(max_length=600)] = "",
) -> Response:
    try:
        service.withdraw(session, request_id, user_id=user.id, note=note, now=clock.now())
    except DomainError as error:
        if error.status_code != 422:
            raise
        session.rollback()
        rows, total = service.worklist(session, status="open", limit=PAGE_SIZE)
        settings = _settings(request)
        return render_page(
            request,
            "bookings/worklist.html",
            {
                "page_title": "Booking requests",
                "rows": rows,
                "agreed": {row.request.id: _agreed(row, settings) for row in rows},
                "status": "open",
                "total": total,
                "page": 1,
                "pages": max(1, -(-total // PAGE_SIZE)),
                "timezone": settings.timezone,
                "errors": {f"note-{request_id}": error.message},
            },
            status_code=422,
        )
    return RedirectResponse(f"/bookings?withdrawn={request_id}", status_code=303)
