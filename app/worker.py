"""`navigator worker`: the second process type, beside the web service.

It runs the SMS dispatcher continuously and the daily jobs (the morning call-queue build,
reminder scheduling, booking-request follow-up, and the monthly risk review, a daily job that
works once a month) at configured local times. A simple loop, no scheduler library:

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

Every feature is always installed, so the jobs and the dispatcher are plain imports. The
worker's `Clock` (the system clock in production) decides the local day and time of day
through `settings.calendar`, and every job and dispatch pass is stamped by it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from datetime import time as clock_time
from typing import Annotated, Any

import typer

from app.bookings import service as bookings_service
from app.calls.cli import build_for_day
from app.clock import SYSTEM_CLOCK, Clock, current_clock
from app.console import JsonFlag, emit, handles_domain_errors
from app.db.dialect import advisory_lock
from app.db.session import Database
from app.jobs import service as jobs_service
from app.jobs.tables import RunStatus
from app.risk import repository as risk_repository
from app.risk.review import retrain_and_decide
from app.settings import Settings, get_settings
from app.sms import service as sms_service
from app.sms.dispatcher import Dispatcher
from app.sms.providers import build_sender

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


# --- the jobs --------------------------------------------------------------------------------


def queue_job(clock: Clock) -> JobFunction:
    """The morning queue build, stamped by the worker's clock."""

    def build_call_queue(database: Database, settings: Settings, day: date) -> dict[str, Any]:
        return build_for_day(database, settings, day, clock=clock).as_dict()

    return build_call_queue


def reminder_job(clock: Clock) -> JobFunction:
    """Reminder scheduling for a day, its rows stamped by the worker's clock."""

    def schedule_reminders(database: Database, settings: Settings, day: date) -> dict[str, Any]:
        now = clock.now()
        with database.unit_of_work() as session:
            sms_service.seed_default_templates(session, now=now)
            summary = sms_service.schedule_reminders(session, settings, on_date=day, now=now)
        return summary.as_dict()

    return schedule_reminders


def booking_requests_job(clock: Clock) -> JobFunction:
    """Reconcile booking requests with the PAS and escalate the overdue ones (app/bookings)."""

    def follow_up_requests(database: Database, settings: Settings, day: date) -> dict[str, Any]:
        now = clock.now()
        with database.unit_of_work() as session:
            result = bookings_service.reconcile(session, settings, now=now).as_dict()
            result["escalated"] = bookings_service.escalate_overdue(session, settings, now=now)
        return result

    return follow_up_requests


def risk_review_job(clock: Clock) -> JobFunction:
    """The monthly risk review (app/risk/review.py: drift, challenger, recorded decision).

    A daily job that does its work once a local month: on the first day of the month the
    worker runs at or after its time, unless a review is already recorded this month (by this
    or another worker, or `navigator model review`), in which case it returns at once.
    """

    def review_risk_model(database: Database, settings: Settings, day: date) -> dict[str, Any]:
        month_start = settings.calendar.day_start(day.replace(day=1))
        with database.unit_of_work() as session:
            if risk_repository.decided_since(session, month_start):
                return {"reviewed_earlier_this_month": 1}
            decision = retrain_and_decide(session, settings, now=clock.now())
            return {
                "promoted": int(decision.outcome == "promoted"),
                "kept": int(decision.outcome == "kept"),
                "not_trained": int(decision.outcome == "not_trained"),
                "drift_alerts": len(decision.drift.get("alerts") or []),
            }

    return review_risk_model


def default_jobs(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> list[DailyJob]:
    return [
        DailyJob(
            "queue_build", parse_local_time(settings.worker_queue_build_time), queue_job(clock)
        ),
        DailyJob(
            "sms_schedule", parse_local_time(settings.worker_reminder_time), reminder_job(clock)
        ),
        DailyJob(
            "booking_requests",
            parse_local_time(settings.worker_queue_build_time),
            booking_requests_job(clock),
        ),
        DailyJob(
            "risk_review",
            parse_local_time(settings.worker_risk_review_time),
            risk_review_job(clock),
        ),
    ]


def default_dispatch(
    database: Database, settings: Settings, clock: Clock = SYSTEM_CLOCK
) -> Callable[[], int]:
    """One dispatcher pass; returns how many messages were handed to the provider."""
    dispatcher = Dispatcher(database, settings, build_sender(settings, clock), clock=clock)

    def dispatch_once() -> int:
        return dispatcher.run_once().submitted

    return dispatch_once


# --- the loop --------------------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        jobs: list[DailyJob],
        dispatch: Callable[[], int] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.database = database
        self.settings = settings
        self.jobs = jobs
        self.dispatch = dispatch
        self.clock = clock
        self.calendar = settings.calendar
        self.done: dict[str, date] = {}
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def due(self) -> tuple[date, list[DailyJob]]:
        now = self.clock.now()
        today = self.calendar.today(now)
        time_of_day = self.calendar.local(now).time()
        return today, [
            job for job in self.jobs if time_of_day >= job.at and self.done.get(job.name) != today
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
        with advisory_lock(self.database.engine, job.name):
            with self.database.unit_of_work() as session:
                if jobs_service.succeeded_on(session, job.name, today):
                    return "already_done"
                # Committed before the job starts: a run left "running" died with its worker.
                run_id = jobs_service.start(
                    session, job.name, today, self.worker_id, now=self.clock.now()
                )
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
                jobs_service.finish(session, run_id, status=status, now=self.clock.now(), **details)
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


def build_worker(database: Database, settings: Settings, clock: Clock) -> Worker:
    return Worker(
        database,
        settings,
        default_jobs(settings, clock),
        default_dispatch(database, settings, clock),
        clock=clock,
    )


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
        loop = build_worker(database, settings, current_clock())
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
