"""JSON API for SMS: message history (navigators), statistics and template editing with preview
and segment counts (managers). Viewing a patient's messages and saving a template are audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.appointments.tables import Appointment
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.isodate import IsoDate
from app.patients.repository import can_see_patient
from app.sms import repository, service
from app.sms.schemas import MessageOut, PreviewOut, SegmentsOut, StatsOut, TemplateIn, TemplateOut
from app.sms.segments import count_segments
from app.sms.templates import example_values, render

router = APIRouter(prefix="/api/sms", tags=["sms"])
DbSession = SessionDep
Navigator = Annotated[User, Depends(require_role(Role.NAVIGATOR))]
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]


@router.get("/patients/{patient_id}/messages", response_model=list[MessageOut])
def patient_messages(
    patient_id: RecordId, session: DbSession, user: Navigator, clock: ClockDep
) -> list[MessageOut]:
    # The patients feature's read scope: a patient outside it is the same 404 as no patient.
    if not can_see_patient(session, user, patient_id, clock.now()):
        raise NotFoundError("No patient with that id.")
    rows = repository.messages_for(session, patient_id=patient_id)
    record_audit(session, user_id=user.id, action="sms.history_viewed", patient_id=patient_id)
    return [MessageOut.model_validate(row) for row in rows]


@router.get("/appointments/{appointment_id}/messages", response_model=list[MessageOut])
def appointment_messages(
    appointment_id: RecordId, session: DbSession, user: Navigator, clock: ClockDep
) -> list[MessageOut]:
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or not can_see_patient(
        session, user, appointment.patient_id, clock.now()
    ):
        raise NotFoundError("No appointment with that id.")
    rows = repository.messages_for(session, appointment_id=appointment_id)
    record_audit(
        session,
        user_id=user.id,
        action="sms.history_viewed",
        patient_id=appointment.patient_id,  # whose messages these are, even when there are none
        appointment_id=appointment_id,
    )
    return [MessageOut.model_validate(row) for row in rows]


@router.get("/stats", response_model=StatsOut)
def stats(
    request: Request,
    session: DbSession,
    clock: ClockDep,
    _user: Manager,
    date_from: Annotated[IsoDate | None, Query(alias="from")] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to")] = None,
) -> StatsOut:
    """Messages created from the start of local day `from` to the start of local day `to`
    (default: the 30 days up to now)."""
    calendar = request.app.state.settings.calendar
    until = calendar.day_start(date_to) if date_to else clock.now()
    since = calendar.day_start(date_from) if date_from else until - timedelta(days=30)
    return StatsOut.model_validate(repository.message_stats(session, since=since, until=until))


@router.get("/templates", response_model=list[TemplateOut])
def list_templates(session: DbSession, _user: Manager) -> list[TemplateOut]:
    templates = service.current_templates(session)
    return [
        TemplateOut(
            kind=kind,
            language=language,
            version=version,
            body=body,
            segments=SegmentsOut(**count_segments(render(body, example_values())).as_dict()),
        )
        for (kind, language), (body, version) in sorted(templates.items())
    ]


@router.post("/templates/{kind}/{language}/preview", response_model=PreviewOut)
def preview(kind: str, language: str, payload: TemplateIn, _user: Manager) -> PreviewOut:
    result = service.preview_template(kind, language, payload.body)
    return PreviewOut(
        kind=kind,
        language=language,
        preview=result.preview,
        segments=SegmentsOut(**result.segments.as_dict()),
        problems=result.problems,
    )


@router.put("/templates/{kind}/{language}", response_model=TemplateOut)
def save(
    kind: str,
    language: str,
    payload: TemplateIn,
    session: DbSession,
    clock: ClockDep,
    user: Manager,
) -> TemplateOut:
    template = service.save_template(
        session,
        kind=kind,
        language=language,
        body=payload.body,
        user_id=user.id,
        now=clock.now(),
    )
    if template.changed:  # an unchanged save makes no version and records nothing
        record_audit(
            session,
            user_id=user.id,
            action="sms.template_saved",
            detail={"kind": kind, "language": language, "version": template.version},
        )
    return TemplateOut(
        kind=template.kind,
        language=template.language,
        version=template.version,
        body=template.body,
        segments=SegmentsOut(**count_segments(render(template.body, example_values())).as_dict()),
    )
