"""`navigator worker`: the second process type, beside the web service.

It runs the SMS dispatcher continuously and the daily jobs (the morning call-queue build and
reminder scheduling) at configured local times. A simple loop, no scheduler library:

- a daily job runs once on each local day, at or after its time (a worker started late
  catches up the same day); a failed run is retried on the next tick, a successful one not
  again that day, by this worker or any other: every run is recorded in `job_runs` (who, when,
  how it ended, counts), which `/metrics` reports as the last success of each job;
- the jobs are idempotent per day (a queue build skips appointments already queued, reminders
  are unique per appointment and offset), so a second run, by this or another worker, adds
  nothing;
- with several workers against PostgreSQL each daily job runs under an advisory lock, so two
  workers never build the same queue at the same moment (the second waits, then finds
  nothing left to do); the dispatcher claims messages with `FOR UPDATE SKIP LOCKED` itself.

Jobs are looked up from the features present (calls, SMS), so the worker runs whatever part
of the service is installed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import text

from app.console import JsonFlag, emit, handles_domain_errors
from app.db.session import Database
from app.jobs import service as jobs_service
from app.jobs.tables import RunStatus
from app.settings import Settings, get_settings

logger = logging.getLogger("navigator.worker")

JobFunction = Callable[[Database, Settings, date], dict[str, Any]]


@dataclass(frozen=True)
class DailyJob:
    name: str
    at: clock_time  # local time in settings.timezone
    run: JobFunction


@dataclass
class TickSummary:
    ran: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Due, but another worker (or this one before a restart) already finished it today.
    already_done: list[str] = field(default_factory=list)
    dispatched: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "failed": self.failed,
            "already_done": self.already_done,
            "dispatched": self.dispatched,
        }


def parse_local_time(value: str) -> clock_time:
    hours, minutes = value.split(":")
    return clock_time(int(hours), int(minutes))


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per job name (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"navigator.worker.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def job_lock(database: Database, name: str) -> Iterator[None]:
    """Hold the job's PostgreSQL advisory lock while it runs (no-op on SQLite: one process)."""
    if database.settings.is_sqlite:
        yield
        return
    key = advisory_key(name)
    with database.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


# --- the jobs of the features present -----------------------------------------------------


def _feature_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def build_call_queue(database: Database, settings: Settings, day: date) -> dict[str, Any]:
    calls_cli = importlib.import_module("app.calls.cli")
    result = calls_cli.build_for_day(database, settings, day)
    as_dict: Callable[[], dict[str, Any]] | None = getattr(result, "as_dict", None)
    return as_dict() if as_dict else {"built": True}


def schedule_reminders(database: Database, settings: Settings, day: date) -> dict[str, Any]:
    service = importlib.import_module("app.sms.service")
    with database.unit_of_work() as session:
        service.seed_default_templates(session)
        summary = service.schedule_reminders(session, settings, on_date=day)
    result: dict[str, Any] = summary.as_dict()
    return result


def default_jobs(settings: Settings) -> list[DailyJob]:
    jobs = []
    if _feature_present("app.calls.cli"):
        jobs.append(
            DailyJob(
                "queue_build", parse_local_time(settings.worker_queue_build_time), build_call_queue
            )
        )
    if _feature_present("app.sms.service"):
        jobs.append(
            DailyJob(
                "sms_schedule", parse_local_time(settings.worker_reminder_time), schedule_reminders
            )
        )
    return jobs


def default_dispatch(database: Database, settings: Settings) -> Callable[[], int] | None:
    """One dispatcher pass (returns messages handed to the provider), if SMS is installed."""
    if not _feature_present("app.sms.dispatcher"):
        return None
    # Imported by name: the worker must also run where SMS is not installed.
    dispatcher_module = importlib.import_module("app.sms.dispatcher")
    providers = importlib.import_module("app.sms.providers")
    dispatcher = dispatcher_module.Dispatcher(database, settings, providers.build_sender(settings))

    def dispatch_once() -> int:
        summary = dispatcher.run_once()
        return int(getattr(summary, "submitted", 0))

    return dispatch_once


# --- the loop --------------------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        jobs: list[DailyJob],
        dispatch: Callable[[], int] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.settings = settings
        self.jobs = jobs
        self.dispatch = dispatch
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.done: dict[str, date] = {}
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def due(self) -> tuple[date, list[DailyJob]]:
        local = self.clock().astimezone(self.zone)
        today = local.date()
        return today, [
            job for job in self.jobs if local.time() >= job.at and self.done.get(job.name) != today
        ]

    def tick(self) -> TickSummary:
        summary = TickSummary()
        today, jobs = self.due()
        for job in jobs:
            try:
                outcome = self.run_job(job, today)
            except Exception:
                # The database was unreachable for the lock or the run record: next tick.
                logger.exception("daily job %s could not start for %s", job.name, today)
                outcome = "failed"
            if outcome != "failed":
                self.done[job.name] = today
            getattr(summary, outcome).append(job.name)
        if self.dispatch is not None:
            try:
                summary.dispatched = self.dispatch()
            except Exception:
                logger.exception("SMS dispatch pass failed; retrying on the next tick")
        return summary

    def run_job(self, job: DailyJob, today: date) -> str:
        """Run one daily job under its lock, recorded in `job_runs`: "ran", "failed" or
        "already_done" (a run for today had already succeeded)."""
        started = time.perf_counter()
        with job_lock(self.database, job.name):
            with self.database.unit_of_work() as session:
                if jobs_service.succeeded_on(session, job.name, today):
                    return "already_done"
                # Committed before the job starts: a run left "running" died with its worker.
                run_id = jobs_service.start(session, job.name, today, self.worker_id)
            try:
                result = job.run(self.database, self.settings, today)
            except Exception as error:
                # Logged with the job name only; the next tick tries again.
                logger.exception("daily job %s failed for %s", job.name, today.isoformat())
                self._finish(run_id, RunStatus.FAILED, error=type(error).__name__)
                return "failed"
            self._finish(run_id, RunStatus.SUCCEEDED, summary=result)
        logger.info(
            "daily job %s done for %s in %.1fs: %s",
            job.name,
            today.isoformat(),
            time.perf_counter() - started,
            jobs_service.counts_only(result),
        )
        return "ran"

    def _finish(self, run_id: int, status: RunStatus, **details: Any) -> None:
        try:
            with self.database.unit_of_work() as session:
                jobs_service.finish(session, run_id, status=status, **details)
        except Exception:
            # The job's own work is committed; a lost record only means a later tick may run
            # the (idempotent) job again.
            logger.exception("could not record the end of daily job run %s", run_id)

    def run_forever(self, should_stop: Callable[[], bool]) -> None:
        while not should_stop():
            summary = self.tick()
            if not summary.dispatched:
                deadline = time.monotonic() + self.settings.worker_poll_seconds
                while time.monotonic() < deadline and not should_stop():
                    time.sleep(0.2)


def build_worker(database: Database, settings: Settings) -> Worker:
    return Worker(database, settings, default_jobs(settings), default_dispatch(database, settings))


def register(app: typer.Typer) -> None:
    @app.command("worker")
    @handles_domain_errors
    def worker(
        once: Annotated[
            bool, typer.Option("--once", help="Run what is due now once, then exit.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Run the SMS dispatcher and the daily jobs (queue build, reminders)."""
        from app.logging_setup import configure_logging

        settings = get_settings()
        configure_logging(settings.log_level, json_lines=settings.env == "production")
        database = Database(settings)
        loop = build_worker(database, settings)
        try:
            if once:
                summary = loop.tick()
                emit(
                    summary.as_dict(),
                    f"Ran {', '.join(summary.ran) or 'no daily job'}; "
                    f"sent {summary.dispatched} SMS"
                    + (f"; failed: {', '.join(summary.failed)}" if summary.failed else ""),
                    as_json=as_json,
                )
                if summary.failed:
                    raise typer.Exit(1)
                return
            stopping = {"now": False}

            def _stop(*_args: Any) -> None:
                stopping["now"] = True

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            logger.info("worker started with jobs %s", [job.name for job in loop.jobs])
            loop.run_forever(should_stop=lambda: stopping["now"])
            emit({"stopped": True}, "Worker stopped.", as_json=as_json)
        finally:
            database.dispose()
