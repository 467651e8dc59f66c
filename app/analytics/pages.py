"""Managers' analytics pages: the dashboard, CSV downloads of every table, the board pack."""

from __future__ import annotations

from datetime import date
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.analytics import charts, landing, service
from app.analytics.formatting import display, money
from app.analytics.periods import (
    PRESETS,
    Period,
    custom_range_problems,
    parse_uk_date,
    preset_period,
    uk_date,
)
from app.analytics.router import csv_response
from app.analytics.schemas import Dashboard, Table
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import Clock, ClockDep
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


def _read_period(
    request: Request, clock: Clock
) -> tuple[Period | None, dict[str, str], dict[str, str]]:
    """The period from the GET form, with every field error in words (not a 422 page).

    `period` names a preset (last month, this month so far, last quarter, financial year to
    date, last 12 weeks) or "custom": then `from` and `to` are the first and last days, both
    included, written the UK way (1/9/2026; ISO dates from links are read too). Nothing given
    means the last 12 weeks.
    """
    today = service.today(_settings(request), clock.now())
    raw = {key: request.query_params.get(key, "").strip() for key in ("period", "from", "to")}
    name = raw["period"] or ("custom" if raw["from"] or raw["to"] else "last-12-weeks")
    values = {"period": name, "from": raw["from"], "to": raw["to"]}
    if name not in PRESETS:
        return None, values, {"period": "Choose a period from the list"}
    if name != "custom":
        period = preset_period(name, today)
        return period, values | _shown(period), {}
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, label in (("from", "first day"), ("to", "last day")):
        if not raw[key]:
            errors[key] = f"Enter the {label} of the custom range, for example 1/9/2026"
            continue
        try:
            days[key] = parse_uk_date(raw[key])
        except ValueError:
            errors[key] = f"Enter the {label} as a real date, for example 1/9/2026"
    if len(days) == 2:
        errors |= custom_range_problems(days["from"], days["to"], today)
    if errors:
        return None, values, errors
    period = Period.through(days["from"], days["to"])
    return period, values | _shown(period), {}


def uk_day(iso_day: str | None) -> str:
    """'2026-09-07' as a person reads it here: '7 Sep 2026'."""
    return "" if not iso_day else f"{date.fromisoformat(iso_day):%-d %b %Y}"


def _shown(period: Period) -> dict[str, str]:
    return {"from": uk_date(period.start), "to": uk_date(period.last_day)}


def period_query(period: Period) -> str:
    """The page link of a period: a custom range with its last day included."""
    return f"period=custom&from={period.start.isoformat()}&to={period.last_day.isoformat()}"


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


def cover_figures(board: Dashboard) -> list[dict[str, str]]:
    """The board pack's five headline figures, each taken from the table it summarises."""
    figures: list[dict[str, str]] = []
    estimate = board.impact.estimate if board.impact else None
    if estimate is not None:
        figures.append(
            {
                "label": "DNAs avoided (against the randomised hold-out)",
                "value": f"{max(estimate.avoided_dnas, 0):.0f}",
                "detail": (
                    f"95% confidence interval {estimate.avoided_ci_low:.1f} to "
                    f"{estimate.avoided_ci_high:.1f}"
                ),
            }
        )
        if estimate.avoided_dnas > 0:
            net = (
                f"net of navigator time {money(estimate.net_savings_low)} to "
                f"{money(estimate.net_savings_high)}"
                if estimate.net_savings_low is not None and estimate.net_savings_high is not None
                else "net of navigator time not worked out (no hourly cost set)"
            )
            value = f"{money(estimate.savings_low)} to {money(estimate.savings_high)}"
        else:
            net, value = "the call arm did not have fewer DNAs than the hold-out", "None"
        figures.append({"label": "Savings, gross", "value": value, "detail": net})
    else:
        figures.append(
            {"label": "DNAs avoided", "value": "No estimate", "detail": board.impact_message or ""}
        )
        figures.append({"label": "Savings", "value": "No estimate", "detail": "no impact estimate"})
    overall = board.overall or {}
    if overall.get("dna_rate") is not None:
        figures.append(
            {
                "label": "DNA rate",
                "value": f"{overall['dna_rate'] * 100:.1f}%",
                "detail": (
                    f"{overall['dnas']:,} DNAs of {overall['appointments']:,} appointments with "
                    f"an outcome (95% CI {overall['ci_low'] * 100:.1f}% to "
                    f"{overall['ci_high'] * 100:.1f}%)"
                ),
            }
        )
    rows = {
        row["measure"]: row
        for table in board.outcomes.tables
        if table.slug == "outcome-mix"
        for row in table.rows
    }
    reached = rows.get("Patients reached")
    made = rows.get("Calls made (at least one attempt)")
    if reached and made:
        share = f" ({reached['share'] * 100:.1f}% of calls made)" if reached["share"] else ""
        figures.append(
            {
                "label": "Patients reached by a navigator",
                "value": f"{reached['count']:,}",
                "detail": f"of {made['count']:,} calls made{share}",
            }
        )
    else:
        figures.append(
            {"label": "Patients reached by a navigator", "value": "0", "detail": "no calls"}
        )
    tasks = service.tasks_raised_total(board)
    figures.append(
        {
            "label": "Follow-up tasks raised for navigators",
            "value": "n/a" if tasks is None else f"{tasks:,}",
            "detail": "every kind, from the tasks table (see Data quality)",
        }
    )
    return figures[:5]


def left_behind_groups(board: Dashboard) -> list[str]:
    return [
        f"{row['group']} ({table.columns[0].label.split(' (')[0].lower()})"
        for table in board.reach.tables
        for row in table.rows
        if row.get("left_behind")
    ]


def anyone_reached(board: Dashboard) -> bool:
    """Whether a call reached anyone in the period (otherwise no group can be judged)."""
    return any(row.get("reached_rate") for table in board.reach.tables for row in table.rows)


def _context(
    request: Request, session: Session, clock: Clock, template_title: str
) -> dict[str, Any]:
    period, values, errors = _read_period(request, clock)
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
        "presets": PRESETS,
        "uk_day": uk_day,
    }
    if period is None:
        return context
    context["period"] = period
    context["query"] = period_query(period)
    try:
        board = service.dashboard(session, _settings(request), period)
    except DomainError as error:
        context["message"] = error.message
        return context
    context["board"] = board
    context["charts"] = _charts(board)
    context["cover"] = cover_figures(board)
    context["left_behind"] = left_behind_groups(board)
    context["anyone_reached"] = anyone_reached(board)
    return context


@router.get("/analytics")
def dashboard_page(
    request: Request, _user: Manager, session: DbSession, clock: ClockDep
) -> Response:
    context = _context(request, session, clock, "Analytics")
    return render(request, "analytics/dashboard.html", context)


@router.get("/dashboard")
def landing_page(request: Request, _user: Manager, session: DbSession, clock: ClockDep) -> Response:
    """The manager's landing page: today's queues, last month's headline, alerts."""
    board = landing.landing(session, _settings(request), clock.now())
    return render(
        request,
        "analytics/landing.html",
        {"page_title": "Dashboard", "landing": board, "money": money},
    )


@router.get("/analytics/board-pack")
def board_pack_page(
    request: Request, _user: Manager, session: DbSession, clock: ClockDep
) -> Response:
    context = _context(request, session, clock, "Board pack")
    return render(request, "analytics/board_pack.html", context)


@router.get("/analytics/csv/{slug}")
def table_csv(
    request: Request, slug: str, _user: Manager, session: DbSession, clock: ClockDep
) -> Response:
    period, _values, errors = _read_period(request, clock)
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
