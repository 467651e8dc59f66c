"""Recording daily-job runs (see `app.jobs.tables`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs.tables import JobRun, RunStatus


def counts_only(result: dict[str, Any]) -> dict[str, int | float]:
    """The numbers of a job's result: all that may be logged or stored (never patient data)."""
    return {
        key: value
        for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def succeeded_on(session: Session, name: str, day: date) -> bool:
    """Whether a run of this job for this day has already succeeded (by any worker)."""
    return (
        session.scalar(
            select(JobRun.id)
            .where(JobRun.name == name, JobRun.day == day, JobRun.status == RunStatus.SUCCEEDED)
            .limit(1)
        )
        is not None
    )


def start(session: Session, name: str, day: date, worker: str, *, now: datetime) -> int:
    run = JobRun(name=name, day=day, worker=worker[:120], status=RunStatus.RUNNING, started_at=now)
    session.add(run)
    session.flush()
    return run.id


def finish(
    session: Session,
    run_id: int,
    *,
    status: RunStatus,
    now: datetime,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    run = session.get_one(JobRun, run_id)
    run.status = status
    run.finished_at = now
    run.summary = counts_only(summary or {})
    run.error = error[:200] if error else None
    session.flush()
