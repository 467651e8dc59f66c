"""Rendering pages: one Jinja2 environment over `app/ui/templates` and every feature's templates.

Feature templates live in `app/<feature>/templates/<feature>/*.html` and extend `base.html`.
`render` adds `request`, the signed-in `user`, the CSRF token and the navigation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from app.auth.roles import Role
from app.localtime import DEFAULT_TIMEZONE, TrustCalendar

APP_DIR = Path(__file__).resolve().parent.parent
UI_TEMPLATES = APP_DIR / "ui" / "templates"
SERVICE_NAME = "Navigator"


@dataclass(frozen=True)
class NavItem:
    text: str
    href: str
    role: Role


# Role-aware navigation: each link shows only to roles that may open it. Features add their
# entry here (one line) when their pages land.
NAVIGATION: list[NavItem] = [
    NavItem("Call queue", "/queue", Role.NAVIGATOR),
    NavItem("My calls", "/history", Role.NAVIGATOR),
    NavItem("Tasks", "/tasks", Role.NAVIGATOR),
    NavItem("Find a patient", "/patients/search", Role.NAVIGATOR),
    NavItem("Dashboard", "/dashboard", Role.MANAGER),
    NavItem("Queues today", "/manage/queues", Role.MANAGER),
    NavItem("Scripts", "/manage/scripts", Role.MANAGER),
    NavItem("SMS", "/sms", Role.MANAGER),
    NavItem("Analytics", "/analytics", Role.MANAGER),
    NavItem("Risk model", "/model", Role.MANAGER),
    NavItem("Audit log", "/audit", Role.MANAGER),
    NavItem("Users", "/admin/users", Role.ADMIN),
]


def template_dirs() -> list[Path]:
    feature_dirs = sorted(
        path for path in APP_DIR.glob("*/templates") if path.is_dir() and path.parent.name != "ui"
    )
    return [UI_TEMPLATES, *feature_dirs]


@functools.cache
def templates() -> Jinja2Templates:
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(path)) for path in template_dirs()]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["service_name"] = SERVICE_NAME
    environment.filters["local_datetime"] = local_datetime
    environment.filters["local_time"] = local_time
    environment.filters["local_date"] = local_date
    return Jinja2Templates(env=environment)


@functools.cache
def _calendar(timezone: str) -> TrustCalendar:
    return TrustCalendar(timezone)


def local_datetime(value: datetime | str | None, timezone: str = DEFAULT_TIMEZONE) -> str:
    """A stored UTC moment (or its ISO 8601 text, as kept in JSON details) as the trust's
    local wall-clock time, e.g. "24 Nov 2026 09:30"; summer time included."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # stored moments are UTC
        moment = moment.replace(tzinfo=UTC)
    return _calendar(timezone).local(moment).strftime("%-d %b %Y %H:%M")


def local_date(value: datetime | str | None, timezone: str = DEFAULT_TIMEZONE) -> str:
    """A stored UTC moment as the trust's local calendar day, e.g. "3 December 2026"."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    day = _calendar(timezone).local(moment)
    return f"{day.day} {day:%B %Y}"


def local_time(value: datetime | str | None, timezone: str = DEFAULT_TIMEZONE) -> str:
    """A stored UTC moment as local wall-clock time of day, e.g. "14:30"."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _calendar(timezone).local(moment).strftime("%H:%M")


def navigation_for(user: Any, path: str) -> list[dict[str, Any]]:
    if user is None:
        return []
    return [
        {"text": item.text, "href": item.href, "current": path.startswith(item.href)}
        for item in NAVIGATION
        if user.has_role(item.role)
    ]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page. The context gains `request`, `user`, `csrf_token` and `navigation`."""
    user = getattr(request.state, "user", None)
    values: dict[str, Any] = {
        "user": user,
        "csrf_token": getattr(request.state, "csrf_token", None) or "",
        "navigation": navigation_for(user, request.url.path),
        "timezone": request.app.state.settings.timezone,
        "page_title": None,
        "errors": {},
        "error_summary": [],
    }
    values.update(context or {})
    response: HTMLResponse = templates().TemplateResponse(
        request, template, values, status_code=status_code, headers=headers
    )
    return response
