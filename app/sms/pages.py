"""HTML pages for managers: SMS volumes and delivery, and editing message templates with a
preview and the segment count (what each text costs to send)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import InvalidInputError, NotFoundError
from app.sms import repository, service
from app.sms.segments import count_segments
from app.sms.tables import MessageKind
from app.sms.templates import LANGUAGES, PLACEHOLDERS, example_values, render
from app.ui.templating import render as render_page

router = APIRouter(include_in_schema=False)
DbSession = SessionDep
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]

KIND_LABELS = {
    MessageKind.REMINDER: "Appointment reminder",
    MessageKind.CONFIRM_REBOOKED: "Confirmation: appointment rearranged",
    MessageKind.CONFIRM_SUPPORT: "Confirmation: support arranged",
    MessageKind.CONFIRM_CANCELLED: "Confirmation: appointment cancelled",
    MessageKind.REPLY_ACK: "Answer to a reply",
    MessageKind.HELP: "Help text",
}


@router.get("/sms")
def overview(request: Request, session: DbSession, clock: ClockDep, _user: Manager) -> Response:
    until = clock.now()
    stats = repository.message_stats(session, since=until - timedelta(days=30), until=until)
    rows = []
    for (kind, language), (body, version) in sorted(service.current_templates(session).items()):
        rows.append(
            {
                "kind": kind,
                "kind_label": KIND_LABELS.get(MessageKind(kind), kind),
                "language": language,
                "language_label": LANGUAGES.get(language, language),
                "version": version,
                "segments": count_segments(render(body, example_values())),
            }
        )
    return render_page(
        request, "sms/overview.html", {"stats": stats, "templates": rows, "page_title": "SMS"}
    )


def _check_template_key(kind: str, language: str) -> None:
    if kind not in set(MessageKind) or language not in LANGUAGES:
        raise NotFoundError("No such message template.")


def _edit_page(
    request: Request,
    *,
    kind: str,
    language: str,
    body: str,
    version: int,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    preview = service.preview_template(kind, language, body)
    return render_page(
        request,
        "sms/template_edit.html",
        {
            "kind": kind,
            "kind_label": KIND_LABELS.get(MessageKind(kind), kind),
            "language": language,
            "language_label": LANGUAGES[language],
            "body": body,
            "version": version,
            "preview": preview,
            "placeholders": sorted(PLACEHOLDERS),
            "errors": errors or {},
            "page_title": "Edit SMS template",
        },
        status_code=status_code,
    )


@router.get("/sms/templates/{kind}/{language}")
def edit_template(
    request: Request, kind: str, language: str, session: DbSession, _user: Manager
) -> Response:
    _check_template_key(kind, language)
    found = service.current_templates(session).get((kind, language))
    body, version = found if found else ("", 0)
    return _edit_page(request, kind=kind, language=language, body=body, version=version)


@router.post("/sms/templates/{kind}/{language}")
def save_template(
    request: Request,
    kind: str,
    language: str,
    session: DbSession,
    clock: ClockDep,
    user: Manager,
    body: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "preview",
) -> Response:
    _check_template_key(kind, language)
    found = service.current_templates(session).get((kind, language))
    version = found[1] if found else 0
    if action != "save":
        return _edit_page(request, kind=kind, language=language, body=body, version=version)
    try:
        template = service.save_template(
            session, kind=kind, language=language, body=body, user_id=user.id, now=clock.now()
        )
    except InvalidInputError as error:
        message = "; ".join(d["message"] for d in error.details) or error.message
        return _edit_page(
            request,
            kind=kind,
            language=language,
            body=body,
            version=version,
            errors={"body": message},
            status_code=422,
        )
    record_audit(
        session,
        user_id=user.id,
        action="sms.template_saved",
        detail={"kind": kind, "language": language, "version": template.version},
    )
    return RedirectResponse("/sms", status_code=303)
