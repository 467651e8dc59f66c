"""JSON API of benefit targeting: the report (409 while the trial cannot answer) and the
queue's policy decision."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.clock import ClockDep
from app.db.session import SessionDep
from app.isodate import IsoDate
from app.settings import Settings
from app.targeting import service
from app.targeting.periods import report_period

router = APIRouter(
    prefix="/api/targeting",
    tags=["targeting"],
    dependencies=[Depends(require_role(Role.MANAGER))],
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/report")
def report(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    start: Annotated[IsoDate | None, Query(alias="from", description="First day.")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Day after the last.")] = None,
) -> dict[str, Any]:
    """Effects by subgroup (call arm minus hold-out), the benefit model, the queue policy."""
    settings = _settings(request)
    _first, _after, start_at, end_at = report_period(
        settings,
        clock.now(),
        start.isoformat() if start else None,
        end.isoformat() if end else None,
    )
    return service.targeting_report(session, settings, start=start_at, end=end_at)


@router.get("/policy")
def policy(request: Request, session: SessionDep) -> dict[str, Any]:
    decision = service.queue_decision(session, _settings(request))
    return {
        "requested": decision.requested,
        "effective": decision.effective,
        "message": decision.message,
    }
