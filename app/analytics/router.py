"""JSON API for managers' analytics under /api/analytics (Role.MANAGER and above)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from app.analytics import service
from app.analytics.formatting import to_csv
from app.analytics.periods import PRESETS, Period, parse_period
from app.analytics.schemas import Dashboard, DnaRatesReport, ImpactReport, Section, Table
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import NotFoundError
from app.isodate import IsoDate
from app.settings import Settings

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
# One session per request, shared with the auth dependencies (see app.db.session).
DbSession = SessionDep
FromDay = Annotated[IsoDate | None, Query(alias="from", description="First day (local date).")]
ToDay = Annotated[IsoDate | None, Query(alias="to", description="Day after the last day.")]
Preset = Annotated[
    str | None,
    Query(
        alias="period",
        description="A named period instead of from/to: " + ", ".join(PRESETS),
    ),
]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _period(
    request: Request,
    clock: ClockDep,
    start: FromDay = None,
    end: ToDay = None,
    preset: Preset = None,
) -> Period:
    """The period of `?period=` or `?from=&to=`; with neither, the last 12 weeks up to the
    clock's today."""
    return parse_period(start, end, service.today(_settings(request), clock.now()), preset)


PeriodDep = Annotated[Period, Depends(_period)]


@router.get("/dashboard", response_model=Dashboard, response_model_by_alias=True)
def get_dashboard(
    request: Request, _user: Manager, session: DbSession, period: PeriodDep
) -> Dashboard:
    """Everything on the managers' dashboard; 409 with a message when the period has no data."""
    return service.dashboard(session, _settings(request), period)


@router.get("/dna-rates", response_model=DnaRatesReport, response_model_by_alias=True)
def get_dna_rates(
    request: Request, _user: Manager, session: DbSession, period: PeriodDep
) -> DnaRatesReport:
    return service.dna_rates(session, _settings(request), period)


@router.get("/impact", response_model=ImpactReport, response_model_by_alias=True)
def get_impact(
    request: Request, _user: Manager, session: DbSession, period: PeriodDep
) -> ImpactReport:
    """Avoided DNAs against the randomised hold-out. 409 with the reason when no honest
    estimate is possible (no data, before the programme, no hold-out, arms too small)."""
    return service.impact(session, _settings(request), period)


@router.get("/outcomes", response_model=Section)
def get_outcomes(
    request: Request, _user: Manager, session: DbSession, period: PeriodDep
) -> Section:
    return service.outcome_mix(session, _settings(request), period)


@router.get("/reach", response_model=Section)
def get_reach(request: Request, _user: Manager, session: DbSession, period: PeriodDep) -> Section:
    return service.reach(session, _settings(request), period)


@router.get("/data-quality", response_model=Section)
def get_data_quality(
    request: Request, _user: Manager, session: DbSession, period: PeriodDep
) -> Section:
    return service.data_quality(session, _settings(request), period)


@router.get("/tables/{slug}", response_model=Table)
def get_table(
    request: Request,
    slug: str,
    _user: Manager,
    session: DbSession,
    period: PeriodDep,
) -> Table:
    """One dashboard table by its slug (as listed in the dashboard's tables)."""
    return _find_table(session, _settings(request), period, slug)


@router.get("/csv/{slug}", response_class=PlainTextResponse)
def get_table_csv(
    request: Request,
    slug: str,
    _user: Manager,
    session: DbSession,
    period: PeriodDep,
) -> PlainTextResponse:
    table = _find_table(session, _settings(request), period, slug)
    return csv_response(table, period)


def _find_table(session: Session, settings: Settings, period: Period, slug: str) -> Table:
    board = service.dashboard(session, settings, period)
    for table in service.all_tables(board):
        if table.slug == slug:
            return table
    raise NotFoundError(f"No table called {slug!r} for this period.")


def csv_response(table: Table, period: Period) -> PlainTextResponse:
    filename = f"navigator-{table.slug}-{period.start.isoformat()}-to-{period.last_day.isoformat()}"
    return PlainTextResponse(
        to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
