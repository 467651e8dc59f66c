"""PostgreSQL restarted under load: each part of the service recovers by itself.

These tests restart the shared local server, so they carry the `faults` marker and run
serially after the main runs (scripts/test.sh); every test waits for `pg_isready` before
it ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from app.worker import DailyJob, Worker
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment
from tests.faults.postgres import require_local_postgres, restart_postgres

pytestmark = [pytest.mark.faults, pytest.mark.postgres_only]


def test_the_web_service_answers_503_during_a_restart_and_recovers_by_itself(
    database: Database, settings: Settings, session: Session
) -> None:
    require_local_postgres(settings.database_url)
    for _ in range(5):
        create_appointment(session)
    create_user(session, username="restart-nav")
    session.commit()
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    # The navigator's client asks 50 times a second: far beyond the per-user read limit (120 a
    # minute), which would answer 429 after the restart when the server comes back quickly.
    unthrottled = settings.model_copy(update={"read_limit_requests_per_minute": 1_000_000})

    with TestClient(create_app(unthrottled, database)) as client:
        sign_in(client, "restart-nav")
        assert client.get("/api/appointments").status_code == 200

        def keep_working() -> None:
            while not stop.is_set():
                statuses[client.get("/api/appointments").status_code] += 1
                time.sleep(0.02)

        worker = threading.Thread(target=keep_working)
        worker.start()
        try:
            time.sleep(0.5)
            restart_postgres()
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(30)

        # Back to normal at once, on the same app and pool: no restart of the service.
        after = [client.get("/api/appointments").status_code for _ in range(10)]
        me = client.get("/api/auth/me")

    assert after == [200] * 10
    assert me.status_code == 200  # the server-side session survived the restart
    assert statuses[200] > 0
    assert set(statuses) <= {200, 503}, statuses  # never a 500 during the outage


class _MovingClock:
    """Real time, shifted to start at `start` (daytime in London: outside quiet hours)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.origin)


def test_the_sms_dispatcher_sends_everything_exactly_once_through_a_restart(
    database: Database, settings: Settings
) -> None:
    from app.sms.dispatcher import Dispatcher
    from app.sms.providers import FakeSender
    from app.sms.tables import SmsMessage
    from tests.sms.helpers import DAYTIME, create_message

    require_local_postgres(settings.database_url)
    count = 60
    with database.unit_of_work() as session:
        ids = [
            create_message(
                session, to_number=f"+4477009002{index:02d}", body=f"Reminder {index}"
            ).id
            for index in range(count)
        ]
    clock = _MovingClock(DAYTIME)
    # Slow enough that the restart lands mid-run; short leases so a batch cut off by the
    # restart is reconciled quickly.
    paced = settings.model_copy(
        update={"sms_send_rate_per_second": 15.0, "sms_lease_seconds": 2.0, "sms_batch_size": 10}
    )
    sender = FakeSender(clock=clock)
    dispatcher = Dispatcher(database, paced, sender, worker_id="restart", clock=clock)
    worker = Worker(database, paced, jobs=[], dispatch=lambda: dispatcher.run_once().submitted)
    stop = threading.Event()

    def keep_dispatching() -> None:
        while not stop.is_set():
            worker.tick()
            time.sleep(0.1)

    thread = threading.Thread(target=keep_dispatching)
    thread.start()
    try:
        time.sleep(1.0)
        sent_before_restart = len(sender.sent)
        restart_postgres()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with database.unit_of_work() as session:
                submitted = session.scalar(
                    select(func.count())
                    .select_from(SmsMessage)
                    .where(SmsMessage.id.in_(ids), SmsMessage.state == "submitted")
                )
            if submitted == count:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)

    assert 0 < sent_before_restart < count  # the restart really hit a dispatcher at work
    assert submitted == count
    per_number = Counter(record.message.to for record in sender.sent)
    assert len(per_number) == count
    assert set(per_number.values()) == {1}, per_number


def test_the_queue_build_cut_off_by_a_restart_is_retried_and_builds_once(
    database: Database, settings: Settings
) -> None:
    from app.calls import documents
    from app.calls.queue import build_queue
    from app.calls.tables import CallAssignment
    from tests.calls.helpers import MORNING, QUEUE_DAY, calls_settings, create_eligible_appointment

    require_local_postgres(settings.database_url)
    with database.unit_of_work() as session:
        for _ in range(40):
            create_eligible_appointment(session)
    started, restarted = threading.Event(), threading.Event()
    runs: list[str] = []

    def morning_build(db: Database, job_settings: Settings, day: date) -> dict[str, Any]:
        with db.unit_of_work() as session:
            documents.ensure_default_documents(session)
            result = build_queue(session, job_settings, day, now=MORNING)
            if not runs:
                runs.append("cut off")
                started.set()
                restarted.wait(60)  # PostgreSQL restarts here, before the commit
        runs.append("built")
        return result.as_dict()

    worker = Worker(
        database,
        calls_settings(settings),
        [DailyJob("queue_build", clock_time(7, 0), morning_build)],
        clock=FixedClock(MORNING),
    )
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(worker.tick()))
    thread.start()
    assert started.wait(30)
    restart_postgres()
    restarted.set()
    thread.join(60)

    assert first[0].failed == ["queue_build"]
    second = worker.tick()
    assert second.ran == ["queue_build"]
    assert worker.tick().ran == []  # once a day
    with database.unit_of_work() as session:
        assignments = session.scalar(select(func.count()).select_from(CallAssignment))
        distinct = session.scalar(select(func.count(func.distinct(CallAssignment.appointment_id))))
        assert assignments == distinct == 40
        # Running the build again (another worker, a manual run) adds nothing.
        again = build_queue(session, calls_settings(settings), QUEUE_DAY, now=MORNING)
    assert again.newly_eligible == 0
