"""The managers' targeting page (`/targeting`): the call's effect by subgroup, the benefit
model's validation and which policy the queue runs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import DomainError, InvalidInputError
from app.settings import Settings
from app.targeting import service
from app.targeting.periods import report_period
from app.targeting.policy import GROUP_LABELS
from app.ui.templating import render

router = APIRouter(include_in_schema=False)


def day_in_words(iso_day: str | None) -> str:
    """A card's ISO queue date as the pages show dates: 24 Nov 2025."""
    if not iso_day:
        return "not recorded"
    return f"{date.fromisoformat(iso_day[:10]):%-d %b %Y}"


Manager = Annotated[User, Depends(require_role(Role.MANAGER))]


@router.get("/targeting")
def targeting_page(
    request: Request, session: SessionDep, clock: ClockDep, _user: Manager
) -> Response:
    settings: Settings = request.app.state.settings
    raw = {key: request.query_params.get(key, "").strip() for key in ("from", "to")}
    context: dict[str, Any] = {
        "day": day_in_words,
        "page_title": "Whom a call helps",
        "values": raw,
        "errors": {},
        "report": None,
        "message": None,
        "group_labels": GROUP_LABELS,
        "decision": service.queue_decision(session, settings),
    }
    try:
        first, after, start_at, end_at = report_period(
            settings, clock.now(), raw["from"] or None, raw["to"] or None
        )
    except InvalidInputError as error:
        field = "from" if "--from" in error.message else "to"
        context["errors"] = {field: error.message.replace("--from", "From").replace("--to", "To")}
        return render(request, "targeting/report.html", context)
    context["values"] = {"from": first.isoformat(), "to": after.isoformat()}
    try:
        context["report"] = service.targeting_report(session, settings, start=start_at, end=end_at)
    except DomainError as error:
        context["message"] = error.message
    return render(request, "targeting/report.html", context)
