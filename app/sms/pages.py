"""HTML pages for managers: SMS volumes and delivery, and editing message templates with a
preview and the segment count (what each text costs to send)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics.periods import Period, custom_range_problems, parse_uk_date, uk_date
from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls.documents import compare as compare_texts
from app.calls.languages import LANGUAGES as INTERPRETER_LANGUAGES
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import InvalidInputError, NotFoundError
from app.settings import Settings
from app.sms import repository, service
from app.sms.error_codes import error_words
from app.sms.providers import delivery_tracked
from app.sms.segments import count_segments
from app.sms.tables import MessageKind
from app.sms.templates import (
    DEFAULT_LANGUAGE,
    DEFAULT_TEMPLATES,
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
RESTORED_NOTICE = (
    "The earlier version was restored as a new version. Texts written from now on use it."
)
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
            "delivery_tracked": delivery_tracked(settings),
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


@dataclass(frozen=True)
class TemplateVersion:
    """One row of a template's history; version 0 is the built-in default."""

    version: int
    body: str
    created_at: datetime | None
    created_by: str | None


def _versions(session: Session, kind: str, language: str) -> list[TemplateVersion]:
    stored = service.template_versions(session, kind, language)
    names = dict(
        session.execute(
            select(User.id, User.username).where(
                User.id.in_({row.created_by for row in stored if row.created_by is not None})
            )
        ).all()
    )
    rows = [
        TemplateVersion(
            row.version,
            row.body,
            row.created_at,
            names.get(row.created_by) if row.created_by is not None else None,
        )
        for row in stored
    ]
    default = DEFAULT_TEMPLATES.get((kind, language))
    if default is not None:
        rows.append(TemplateVersion(0, default, None, None))
    return rows


def _edit_page(
    request: Request,
    session: Session,
    *,
    kind: str,
    language: str,
    body: str,
    version: int,
    problems: list[tuple[str, str]] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    preview = service.preview_template(kind, language, body)
    # Every problem on its own line of the error summary, after a save or a preview.
    if problems is None:
        problems = [("body", problem) for problem in preview.problems]
    body_problems = [message for field, message in problems if field == "body"]
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
            "problems": problems,
            "body_error": " ".join(body_problems) or None,
            "versions": _versions(session, kind, language),
            "timezone": request.app.state.settings.timezone,
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
    notice = RESTORED_NOTICE if request.query_params.get("notice") == "restored" else None
    return _edit_page(
        request, session, kind=kind, language=language, body=body, version=version, notice=notice
    )


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
    # The edit page again, with what was typed, after a preview, a refusal or a no-op save.
    page = partial(
        _edit_page,
        request,
        session,
        kind=kind,
        language=language,
        body=body,
        version=found[1] if found else 0,
    )
    if action != "save":
        return page()
    try:
        template = service.save_template(
            session, kind=kind, language=language, body=body, user_id=user.id, now=clock.now()
        )
    except InvalidInputError as error:
        session.rollback()
        return page(
            problems=[("body", str(item["message"])) for item in error.details]
            or [("body", error.message)],
            status_code=422,
        )
    if not template.changed:
        # Nothing to save: say so on the same page rather than make a version.
        return page(notice=UNCHANGED_NOTICE)
    record_audit(
        session,
        user_id=user.id,
        action="sms.template_saved",
        detail={"kind": kind, "language": language, "version": template.version},
    )
    query = urlencode({"notice": "saved", "kind": kind, "language": language})
    return RedirectResponse(f"/sms?{query}", status_code=303)


@router.post("/sms/templates/{kind}/{language}/restore")
def restore_template(
    request: Request,
    kind: str,
    language: str,
    session: DbSession,
    clock: ClockDep,
    user: Manager,
    version: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """An earlier version (or the built-in default) made current again, as a new version."""
    _check_template_key(kind, language)
    found = service.current_templates(session).get((kind, language))
    body, current = found if found else ("", 0)
    page = partial(
        _edit_page, request, session, kind=kind, language=language, body=body, version=current
    )
    problem = [("version", "Choose a version to restore from the list")]
    if not version.strip().isdigit():
        return page(problems=problem, status_code=422)
    try:
        saved = service.restore_template(
            session,
            kind=kind,
            language=language,
            version=int(version),
            user_id=user.id,
            now=clock.now(),
        )
    except InvalidInputError as error:
        session.rollback()
        return page(
            problems=[(str(item["field"]), str(item["message"])) for item in error.details]
            or problem,
            status_code=422,
        )
    if not saved.changed:
        return page(notice=UNCHANGED_NOTICE)
    record_audit(
        session,
        user_id=user.id,
        action="sms.template_restored",
        detail={
            "kind": kind,
            "language": language,
            "version": saved.version,
            "from_version": int(version),
        },
    )
    return RedirectResponse(f"/sms/templates/{kind}/{language}?notice=restored", status_code=303)


@router.get("/sms/templates/{kind}/{language}/compare")
def compare_template_versions(
    request: Request,
    kind: str,
    language: str,
    session: DbSession,
    _user: Manager,
    old: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    new: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
) -> Response:
    """Two versions side by side: by default the one before the current, and the current."""
    _check_template_key(kind, language)
    versions = _versions(session, kind, language)
    if not versions:
        raise NotFoundError("This template has no versions to compare.")
    by_number = {row.version: row for row in versions}
    if any(number is not None and number not in by_number for number in (old, new)):
        raise NotFoundError("No such version of this template.")
    newer = versions[0] if new is None else by_number[new]
    if old is None:
        earlier = [row for row in versions if row.version < newer.version]
        older = earlier[0] if earlier else newer
    else:
        older = by_number[old]
    return render_page(
        request,
        "sms/template_compare.html",
        {
            "kind": kind,
            "language": language,
            "kind_label": KIND_LABELS.get(MessageKind(kind), kind),
            "language_label": LANGUAGES[language],
            "versions": versions,
            "current": versions[0],
            "older": older,
            "newer": newer,
            "rows": compare_texts(older.body, newer.body),
            "page_title": "Compare SMS template versions",
        },
    )
