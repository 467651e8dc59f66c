"""HTML pages for managers: SMS volumes and delivery, and editing message templates with a
preview and the segment count (what each text costs to send)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.analytics.periods import Period, custom_range_problems, parse_uk_date, uk_date
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls.languages import LANGUAGES as INTERPRETER_LANGUAGES
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import InvalidInputError, NotFoundError
from app.settings import Settings
from app.sms import repository, service
from app.sms.error_codes import error_words
from app.sms.segments import count_segments
from app.sms.tables import MessageKind
from app.sms.templates import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    NEEDS_TRANSLATOR_CHECK,
    PLACEHOLDERS,
    example_values,
    render,
)
from app.ui.templating import render as render_page

router = APIRouter(include_in_schema=False)
DbSession = SessionDep
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
DEFAULT_DAYS = 30
# Providers that never hear back about delivery: their "delivered" is unknown, not zero.
UNTRACKED_PROVIDERS = frozenset({"console"})
SAVED_NOTICE = "The template was saved as a new version. Texts written from now on use it."
UNCHANGED_NOTICE = "Nothing was saved: the text is the same as the current version."

KIND_LABELS = {
    MessageKind.REMINDER: "Appointment reminder",
    MessageKind.CONFIRM_REBOOKED: "Confirmation: appointment rearranged",
    MessageKind.CONFIRM_SUPPORT: "Confirmation: support arranged",
    MessageKind.CONFIRM_CANCELLED: "Confirmation: appointment cancelled",
    MessageKind.REPLY_ACK: "Answer to a reply",
    MessageKind.HELP: "Help text",
}


def _read_period(
    request: Request, today: date
) -> tuple[Period | None, dict[str, str], dict[str, str]]:
    """The period of the statistics: `from` and `to` are the first and last days (both
    included, UK dates such as 1/11/2026); nothing given means the last 30 days to today."""
    raw = {key: request.query_params.get(key, "").strip()[:32] for key in ("from", "to")}
    if not raw["from"] and not raw["to"]:
        period = Period.through(today - timedelta(days=DEFAULT_DAYS - 1), today)
        return period, {"from": uk_date(period.start), "to": uk_date(period.last_day)}, {}
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, label in (("from", "first day"), ("to", "last day")):
        if not raw[key]:
            errors[key] = f"Enter the {label}, for example 1/11/2026"
            continue
        try:
            days[key] = parse_uk_date(raw[key])
        except ValueError:
            errors[key] = f"Enter the {label} as a real date, for example 1/11/2026"
    if len(days) == 2:
        errors |= custom_range_problems(days["from"], days["to"], today)
    if errors:
        return None, raw, errors
    return Period.through(days["from"], days["to"]), raw, {}


def _saved_notice(request: Request) -> str | None:
    """The banner after a save, naming the template when the address says which one."""
    params = request.query_params
    if params.get("notice") != "saved":
        return None
    kind, language = params.get("kind", ""), params.get("language", "")
    if kind in set(MessageKind) and language in LANGUAGES:
        name = f"{KIND_LABELS.get(MessageKind(kind), kind)} ({LANGUAGES[language]})"
        return SAVED_NOTICE.replace("The template", f"The template {name}", 1)
    return SAVED_NOTICE


@router.get("/sms")
def overview(request: Request, session: DbSession, clock: ClockDep, _user: Manager) -> Response:
    settings: Settings = request.app.state.settings
    now = clock.now()
    period, values, errors = _read_period(request, settings.calendar.today(now))
    stats: dict[str, Any] | None = None
    languages: dict[str, Any] | None = None
    if period is not None:
        since, until = period.bounds(settings.calendar)
        stats = repository.message_stats(session, since=since, until=until)
        for failure in stats["failures_by_reason"]:
            failure["words"] = error_words(failure["error_code"])
        languages = repository.language_stats(
            session, since=since, until=until, default_language=DEFAULT_LANGUAGE
        )
    rows = []
    current = service.current_templates(session)
    for kind in MessageKind:
        for language in LANGUAGES:
            found = current.get((str(kind), language))
            fallback = found is None
            body, version = found if found else current.get((str(kind), DEFAULT_LANGUAGE), ("", 0))
            rows.append(
                {
                    "kind": str(kind),
                    "kind_label": KIND_LABELS.get(kind, str(kind)),
                    "language": language,
                    "language_label": LANGUAGES[language],
                    "version": version,
                    "fallback": fallback,
                    "needs_check": language in NEEDS_TRANSLATOR_CHECK,
                    "segments": count_segments(render(body, example_values(language))),
                }
            )
    return render_page(
        request,
        "sms/overview.html",
        {
            "stats": stats,
            "languages": languages,
            "language_names": {**INTERPRETER_LANGUAGES, **LANGUAGES},
            "period": period,
            "values": values,
            "errors": errors,
            "templates": rows,
            "missing_texts": sum(1 for row in rows if row["fallback"]),
            "delivery_tracked": settings.sms_provider not in UNTRACKED_PROVIDERS,
            "provider": settings.sms_provider,
            "kind_labels": {str(kind): label for kind, label in KIND_LABELS.items()},
            "notice": _saved_notice(request),
            "page_title": "SMS",
        },
        status_code=422 if errors else 200,
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
    problems: list[str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    preview = service.preview_template(kind, language, body)
    # Every problem on its own line of the error summary, after a save or a preview.
    problems = preview.problems if problems is None else problems
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
            "problems": [("body", problem) for problem in problems],
            "body_error": " ".join(problems) or None,
            "needs_check": language in NEEDS_TRANSLATOR_CHECK,
            "notice": notice,
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
        session.rollback()
        return _edit_page(
            request,
            kind=kind,
            language=language,
            body=body,
            version=version,
            problems=[str(item["message"]) for item in error.details] or [error.message],
            status_code=422,
        )
    if not template.changed:
        # Nothing to save: say so on the same page rather than make a version.
        return _edit_page(
            request,
            kind=kind,
            language=language,
            body=body,
            version=version,
            notice=UNCHANGED_NOTICE,
        )
    record_audit(
        session,
        user_id=user.id,
        action="sms.template_saved",
        detail={"kind": kind, "language": language, "version": template.version},
    )
    query = urlencode({"notice": "saved", "kind": kind, "language": language})
    return RedirectResponse(f"/sms?{query}", status_code=303)
