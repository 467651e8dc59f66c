"""A record of every daily-job run: which job, for which local day, by which worker, and how it
ended. The worker reads it to skip a job another worker already finished today; operators read
it (and `/metrics`) to see that the morning queue build and the reminders really ran."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class RunStatus(StrEnum):
    RUNNING = "running"  # started; a run left like this died with its worker
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)  # the local day the run was for
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Counts only (appointments queued, reminders scheduled): never patient data.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The exception's class name when it failed; the traceback is in the worker's log.
    error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_job_runs_name_day", "name", "day"),)
