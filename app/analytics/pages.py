"""Managers' analytics pages: the dashboard, CSV downloads of every table, the board pack."""

from __future__ import annotations

from datetime import date
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.analytics import charts, service
from app.analytics.formatting import display, money
from app.analytics.periods import Period, default_period
from app.analytics.router import csv_response
from app.analytics.schemas import Dashboard, Table
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.db.session import SessionDep
from app.errors import DomainError, NotFoundError
from app.settings import Settings
from app.ui.templating import render

router = APIRouter(include_in_schema=False)

Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
# One session per request, shared with the auth dependencies (see app.db.session).
DbSession = SessionDep


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _read_period(request: Request) -> tuple[Period | None, dict[str, str], dict[str, str]]:
    """The period from the GET form, with field errors in words (not a 422 page)."""
    raw = {key: request.query_params.get(key, "").strip() for key in ("from", "to")}
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, label in (("from", "first day"), ("to", "day after the last")):
        if raw[key]:
            try:
                days[key] = date.fromisoformat(raw[key])
            except ValueError:
                errors[key] = f"Enter the {label} as a real date, for example 2026-09-01"
    if errors:
        return None, raw, errors
    if not days:
        period = default_period(service.today(_settings(request)))
        return period, {"from": period.start.isoformat(), "to": period.end.isoformat()}, {}
    if len(days) == 1:
        missing = "to" if "from" in days else "from"
        return (
            None,
            raw,
            {missing: "Enter both days of the period, or neither for the last 12 weeks"},
        )
    try:
        return Period(days["from"], days["to"]), raw, {}
    except DomainError as error:
        return None, raw, {"to": error.message}


def _charts(board: Dashboard) -> dict[str, Any]:
    """Each chart keyed by the slug of the table it is drawn from."""
    tables = {table.slug: table for table in service.all_tables(board)}
    drawn: dict[str, Any] = {}
    for slug, title in (
        ("dna-rate-by-imd-decile", "DNA rate by IMD decile (1 = most deprived)"),
        ("dna-rate-by-ethnic-group", "DNA rate by ethnic group"),
    ):
        if slug in tables:
            drawn[slug] = charts.rate_bars(tables[slug], title=title)
    if "impact-over-time" in tables:
        drawn["impact-over-time"] = charts.arms_over_time(tables["impact-over-time"])
    if "outcome-mix" in tables:
        drawn["outcome-mix"] = charts.outcome_bars(tables["outcome-mix"])
    for slug, unit in (
        ("ethnicity-recording-by-clinic", "clinic"),
        ("ethnicity-recording-by-specialty", "specialty"),
    ):
        if slug in tables:
            drawn[slug] = charts.funnel_plot(tables[slug], unit=unit)
    return drawn


def _context(request: Request, session: Session, template_title: str) -> dict[str, Any]:
    period, values, errors = _read_period(request)
    context: dict[str, Any] = {
        "page_title": template_title,
        "values": values,
        "errors": errors,
        "board": None,
        "message": None,
        "charts": {},
        "display": display,
        "money": money,
        "query": "",
    }
    if period is None:
        return context
    context["period"] = period
    context["query"] = f"from={period.start.isoformat()}&to={period.end.isoformat()}"
    try:
        board = service.dashboard(session, _settings(request), period)
    except DomainError as error:
        context["message"] = error.message
        return context
    context["board"] = board
    context["charts"] = _charts(board)
    return context


@router.get("/analytics")
def dashboard_page(request: Request, _user: Manager, session: DbSession) -> Response:
    return render(request, "analytics/dashboard.html", _context(request, session, "Analytics"))


@router.get("/analytics/board-pack")
def board_pack_page(request: Request, _user: Manager, session: DbSession) -> Response:
    return render(request, "analytics/board_pack.html", _context(request, session, "Board pack"))


@router.get("/analytics/csv/{slug}")
def table_csv(request: Request, slug: str, _user: Manager, session: DbSession) -> Response:
    period, _values, errors = _read_period(request)
    if period is None:
        raise NotFoundError("; ".join(errors.values()))
    board = service.dashboard(session, _settings(request), period)
    for table in service.all_tables(board):
        if table.slug == slug:
            return csv_response(table, period)
    raise NotFoundError(f"There is no table called {slug!r} for this period.")


@router.get("/analytics/assets/analytics.css")
def stylesheet() -> Response:
    """The dashboard's chart and print styles (a file, because the CSP forbids inline style)."""
    css = resources.files("app.analytics").joinpath("static/analytics.css").read_text("utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


__all__ = ["Table", "router"]
