"""The worker: daily jobs once per local day at their time, retried after a failure, and
serialised across workers by a PostgreSQL advisory lock; the dispatcher every tick."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.clock import FixedClock
from app.db.dialect import advisory_key, advisory_lock
from app.db.session import Database
from app.jobs.tables import JobRun
from app.settings import Settings
from app.sms.tables import SmsMessage
from app.worker import DailyJob, JobFunction, Worker, default_dispatch, default_jobs
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment

TOMORROW = TODAY + timedelta(days=1)


def local(day: date, hour: int, minute: int = 0) -> FixedClock:
    """A clock at a local wall-clock time on `day` (whatever the season)."""
    return FixedClock(CALENDAR.at(day, clock_time(hour, minute)))


def recording_job(name: str, at: clock_time, runs: list[tuple[str, date]]) -> DailyJob:
    def run(_database: Database, _settings: Settings, day: date) -> dict[str, Any]:
        runs.append((name, day))
        return {"count": 1}

    return DailyJob(name, at, run)


def failing_once(error: Exception, result: dict[str, Any]) -> JobFunction:
    """A job that raises `error` on its first run and returns `result` after."""
    attempts: list[int] = []

    def run(_database: Database, _settings: Settings, _day: date) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise error
        return result

    return run


def test_a_daily_job_runs_once_a_day_at_or_after_its_local_time(
    database: Database, settings: Settings
) -> None:
    runs: list[tuple[str, date]] = []
    clock = local(TODAY, 6, 59)
    worker = Worker(
        database, settings, [recording_job("build", clock_time(7, 0), runs)], clock=clock
    )

    assert worker.tick().ran == []
    clock.advance(minutes=1)
    assert worker.tick().ran == ["build"]
    clock.set(CALENDAR.at(TODAY, clock_time(15, 0)))
    assert worker.tick().ran == []
    clock.set(CALENDAR.at(TOMORROW, clock_time(7, 30)))
    assert worker.tick().ran == ["build"]

    assert runs == [("build", TODAY), ("build", TOMORROW)]


def test_local_time_follows_british_summer_time(database: Database, settings: Settings) -> None:
    runs: list[tuple[str, date]] = []
    # A day in July, after the test's day: 06:00 UTC is 07:00 in London (BST).
    july = date(TODAY.year + 1, 7, 1)
    clock = FixedClock(datetime.combine(july, clock_time(5, 59), UTC))
    worker = Worker(
        database, settings, [recording_job("build", clock_time(7, 0), runs)], clock=clock
    )

    assert worker.tick().ran == []
    clock.advance(minutes=1)
    assert worker.tick().ran == ["build"]
    assert runs == [("build", july)]


def test_a_failed_job_is_retried_on_the_next_tick_and_dispatch_still_runs(
    database: Database, settings: Settings
) -> None:
    flaky = failing_once(RuntimeError("database went away"), {})
    sent = iter([2, 0])
    worker = Worker(
        database,
        settings,
        [DailyJob("flaky", clock_time(0, 0), flaky)],
        dispatch=lambda: next(sent),
        clock=local(TODAY, 9),
    )

    first = worker.tick()
    second = worker.tick()

    assert (first.failed, first.dispatched) == (["flaky"], 2)
    assert (second.ran, second.dispatched) == (["flaky"], 0)
    assert worker.tick().ran == []


def test_advisory_keys_are_stable_and_distinct() -> None:
    assert advisory_key("queue_build") == advisory_key("queue_build")
    assert advisory_key("queue_build") != advisory_key("sms_schedule")
    assert -(2**63) <= advisory_key("queue_build") < 2**63


@pytest.mark.postgres_only
def test_two_workers_never_run_the_same_job_at_once(database: Database) -> None:
    if database.settings.is_sqlite:
        pytest.skip("advisory locks are PostgreSQL's")
    key = advisory_key("queue_build")
    held = threading.Event()
    release = threading.Event()

    def first_worker() -> None:
        with advisory_lock(database.engine, "queue_build"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert held.wait(10)
        with database.engine.connect() as other:
            taken = other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            assert taken is False
    finally:
        release.set()
        thread.join(10)
    with database.engine.connect() as other:
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def test_navigator_worker_once_runs_what_is_due(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAVIGATOR_SMS_PROVIDER", "fake")
    monkeypatch.setenv("NAVIGATOR_WORKER_QUEUE_BUILD_TIME", "23:59")
    monkeypatch.setenv("NAVIGATOR_WORKER_REMINDER_TIME", "23:59")
    monkeypatch.setenv("NAVIGATOR_WORKER_RISK_REVIEW_TIME", "23:59")
    from app.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["worker", "--once", "--json"], obj=clock)
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert '"failed": []' in result.output


def test_the_real_daily_jobs_run_through_the_worker(database: Database, settings: Settings) -> None:
    clock = local(TODAY, 12)
    with database.unit_of_work() as session:
        appointment_id = create_appointment(
            session, start_at=CALENDAR.at(TODAY + timedelta(days=7), clock_time(9, 30))
        ).id
    jobs = default_jobs(settings, clock)
    worker = Worker(database, settings, jobs, default_dispatch(database, settings, clock), clock)

    summary = worker.tick()

    names = ["queue_build", "sms_schedule", "booking_requests", "risk_review"]
    assert [job.name for job in jobs] == names
    assert summary.ran == names
    assert summary.failed == []
    assert summary.dispatched == 1  # the week-ahead reminder, scheduled and sent at midday
    assert worker.tick().ran == []
    with database.unit_of_work() as session:
        sent = session.scalars(select(SmsMessage)).one()
        assert (sent.appointment_id, sent.state, sent.created_at, sent.submitted_at) == (
            appointment_id,
            "submitted",
            clock.now(),
            clock.now(),
        )
    _queue_run, sms_run, _bookings_run, review_run = _runs(database)
    # One appointment is too little to train on: the review says so and changes nothing.
    assert review_run.summary == {"promoted": 0, "kept": 0, "not_trained": 1, "drift_alerts": 0}
    assert (sms_run.day, sms_run.started_at, sms_run.finished_at) == (
        TODAY,
        clock.now(),
        clock.now(),
    )


def _runs(database: Database) -> list[JobRun]:
    with database.unit_of_work() as session:
        runs = list(session.scalars(select(JobRun).order_by(JobRun.id)))
        session.expunge_all()
    return runs


def test_every_run_is_recorded_and_a_failure_keeps_only_the_error_class(
    database: Database, settings: Settings
) -> None:
    flaky = failing_once(
        RuntimeError("patient Ada Lovelace 07700 900123 broke it"),
        {"calls_created": 12, "note": "text is not kept"},
    )
    worker = Worker(
        database,
        settings,
        [DailyJob("queue_build", clock_time(7, 0), flaky)],
        clock=local(TODAY, 9),
    )
    worker.tick()
    worker.tick()

    failed, succeeded = _runs(database)
    assert (failed.name, failed.day, failed.status) == ("queue_build", TODAY, "failed")
    assert failed.error == "RuntimeError"  # the message (which could name a patient) is not
    assert failed.finished_at is not None
    assert succeeded.status == "succeeded"
    assert succeeded.summary == {"calls_created": 12}


def test_a_second_worker_does_not_rerun_a_job_another_finished_today(
    database: Database, settings: Settings
) -> None:
    runs: list[tuple[str, date]] = []
    clock = local(TODAY, 9)
    first = Worker(
        database, settings, [recording_job("build", clock_time(7, 0), runs)], clock=clock
    )
    # A second worker process, or this one restarted: it has no memory of the first's run.
    second = Worker(
        database, settings, [recording_job("build", clock_time(7, 0), runs)], clock=clock
    )

    assert first.tick().ran == ["build"]
    assert second.tick().already_done == ["build"]
    assert second.tick().already_done == []  # remembered for the rest of the day
    clock.set(CALENDAR.at(TOMORROW, clock_time(9, 0)))
    assert second.tick().ran == ["build"]

    assert runs == [("build", TODAY), ("build", TOMORROW)]
    assert [run.status for run in _runs(database)] == ["succeeded", "succeeded"]


def test_the_risk_review_works_once_a_local_month(database: Database, settings: Settings) -> None:
    from app.risk.tables import RiskModelDecision
    from app.worker import risk_review_job

    first_of_month = TODAY.replace(day=1)
    clock = local(first_of_month, 3)
    worker = Worker(
        database, settings, [DailyJob("risk_review", clock_time(2, 0), risk_review_job(clock))],
        clock=clock,
    )  # fmt: skip

    assert worker.tick().ran == ["risk_review"]
    clock.set(CALENDAR.at(first_of_month + timedelta(days=1), clock_time(3)))
    assert worker.tick().ran == ["risk_review"]  # due daily, but this month is done
    next_month = (first_of_month + timedelta(days=32)).replace(day=1)
    clock.set(CALENDAR.at(next_month, clock_time(3)))
    worker.tick()

    runs = _runs(database)
    assert [run.summary for run in runs] == [
        {"promoted": 0, "kept": 0, "not_trained": 1, "drift_alerts": 0},
        {"reviewed_earlier_this_month": 1},
        {"promoted": 0, "kept": 0, "not_trained": 1, "drift_alerts": 0},
    ]
    with database.unit_of_work() as session:
        decisions = list(session.scalars(select(RiskModelDecision)))
        assert len(decisions) == 2
        assert all("No challenger could be trained" in d.reason for d in decisions)
