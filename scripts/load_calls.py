"""Load test: many navigators working the call queue at once over loopback HTTP.

Serves the app (`navigator serve`, several workers) on 127.0.0.1 and runs N navigators for a
bounded time, each signing in through the API (cookie + CSRF) and looping take next -> call
detail -> answered attempt -> identity confirmed -> outcome + complete, sending the call
screen's lease heartbeat (`--heartbeat-seconds`, 0 for none) while a call is open. A
navigator pauses before every request, the first included, for `think` seconds on average
(0.5x to 1.5x, so 50 navigators are not in lockstep): a person reads the screen and talks to
the patient between clicks. With `--think-seconds 0` the loop is closed (every navigator as
fast as the server answers), which measures throughput, not what a navigator waits. Prints
one JSON object: calls completed, request latencies per route, errors, and whether any call
was handed to two navigators.

Run on its own it queues one call per synthetic patient for today in a throwaway PostgreSQL
database; `scripts/bench_queue.py` runs the same load against the queue it built for a
trust-sized database.

    .venv/bin/python scripts/load_calls.py [--navigators 50] [--seconds 60] [--calls 3000]
        [--workers 2] [--think-seconds 2] [--heartbeat-seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadkit import Recorder, client_session, serving, sign_in  # noqa: E402

from app.auth.passwords import hash_password  # noqa: E402
from app.auth.roles import Role  # noqa: E402
from app.auth.tables import User  # noqa: E402
from app.calls.queue import build_queue  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.databases import temporary_database  # noqa: E402

LOAD_PASSWORD = "load test navigator password"  # noqa: S105 - throwaway database only


def seed(url: str, calls: int, navigators: int) -> Settings:
    """A small database of its own: one patient and one appointment per call, queued today."""
    settings = Settings(
        _env_file=None,
        database_url=url,
        calls_holdout_share=0.0,
        calls_navigators_on_duty=navigators,
        calls_per_navigator_per_day=max(1, calls // navigators + 1),
    )
    migrate.upgrade(url)
    zone = ZoneInfo(settings.timezone)
    today = datetime.now(UTC).astimezone(zone).date()
    start = datetime.combine(today + timedelta(days=7), datetime.min.time(), zone)
    database = Database(settings)
    try:
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patients (pas_patient_id, birth_date, sex, ethnic_category, "
                    "family_name, given_name, mobile_phone, core20, preferred_language, "
                    "communication_needs, source_hash, created_at, updated_at) "
                    "SELECT 'LP' || g, DATE '1970-01-01' + g, 'F', 'A', 'Load' || g, 'Pat', "
                    "'+447700900' || lpad((g % 1000)::text, 3, '0'), true, 'en', '', '', "
                    "now(), now() FROM generate_series(1, :n) AS g"
                ),
                {"n": calls},
            )
            connection.execute(
                text(
                    "INSERT INTO clinics (code, site, specialty_code) VALUES ('LC1', 'Main', '120')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO appointments (pas_appointment_id, patient_id, clinic_id, "
                    "booked_at, start_at, attendance_code, source_hash, created_at, updated_at) "
                    "SELECT 'LA' || g, g, 1, :start - interval '30 days', "
                    ":start + interval '9 hours' + (g % 480) * interval '1 minute', '0', '', "
                    "now(), now() FROM generate_series(1, :n) AS g"
                ),
                {"n": calls, "start": start},
            )
        with database.engine.connect() as connection:
            # A live database has statistics (autovacuum keeps them); a freshly seeded one
            # does not, and the planner would guess the tables are empty.
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        with database.unit_of_work() as session:
            build_queue(session, settings, today, now=datetime.now(UTC))
    finally:
        database.dispose()
    return settings


def create_navigators(settings: Settings, count: int) -> None:
    """Accounts loadnav1..loadnavN (one argon2 hash shared: hashing is slow on purpose)."""
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            password_hash = hash_password(LOAD_PASSWORD)
            session.add_all(
                User(
                    username=f"loadnav{n}",
                    role=Role.NAVIGATOR.value,
                    password_hash=password_hash,
                    active=True,
                    failed_attempts=0,
                )
                for n in range(1, count + 1)
            )
    finally:
        database.dispose()


class Navigators:
    """N navigators working the queue until the deadline (each stops when it is empty)."""

    def __init__(
        self, base: str, count: int, seconds: float, think: float, heartbeat: float = 0.0
    ) -> None:
        self.base, self.count, self.seconds, self.think = base, count, seconds, think
        # The call screen's lease heartbeat while a call is open (0: none). The page sends it
        # every minute; a shorter interval here makes it part of every call at this pace.
        self.heartbeat = heartbeat
        self.recorder = Recorder()
        self.taken: list[tuple[int, int]] = []
        self.sign_in_failures = 0

    async def run(self) -> float:
        clients = [client_session(self.base, connections=2) for _ in range(self.count)]
        try:
            # Everyone signs in first (argon2 is slow on purpose); the clock starts after.
            tokens = await asyncio.gather(
                *(
                    sign_in(client, f"loadnav{n}", LOAD_PASSWORD)
                    for n, client in enumerate(clients, start=1)
                ),
                return_exceptions=True,
            )
            started = time.perf_counter()
            deadline = started + self.seconds
            await asyncio.gather(
                *(
                    self.work(client, n, token, deadline)
                    for n, (client, token) in enumerate(zip(clients, tokens, strict=True), 1)
                    if isinstance(token, str)
                )
            )
            self.sign_in_failures = sum(1 for token in tokens if not isinstance(token, str))
            return time.perf_counter() - started
        finally:
            await asyncio.gather(*(client.close() for client in clients))

    async def request(
        self, client: aiohttp.ClientSession, label: str, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any] | None:
        if self.think:
            # A person reads the screen and talks to the patient between clicks; the pause
            # varies (0.5x to 1.5x) so the navigators are not in lockstep.
            await asyncio.sleep(self.think * random.uniform(0.5, 1.5))
        return await self.recorder.call(client, label, method, path, **kwargs)

    async def keep_alive(
        self, client: aiohttp.ClientSession, call_id: int, headers: dict[str, str]
    ) -> None:
        """The open call screen's heartbeat, until the call is saved (then cancelled)."""
        while True:
            await asyncio.sleep(self.heartbeat * random.uniform(0.8, 1.2))
            await self.recorder.call(
                client,
                "POST /api/calls/{call_id}/heartbeat",
                "POST",
                f"/api/calls/{call_id}/heartbeat",
                headers=headers,
            )

    async def work(
        self, client: aiohttp.ClientSession, number: int, csrf: str, deadline: float
    ) -> None:
        headers = {"X-CSRF-Token": csrf}
        while time.perf_counter() < deadline:
            taken = await self.request(
                client, "POST /api/calls/next", "POST", "/api/calls/next", headers=headers
            )
            if taken is None or taken[0] != 200:
                continue
            if taken[1] is None:
                return  # the queue is empty
            call_id = taken[1]["id"]
            self.taken.append((call_id, number))
            beating = (
                asyncio.create_task(self.keep_alive(client, call_id, headers))
                if self.heartbeat
                else None
            )
            try:
                await self.work_call(client, call_id, headers)
            finally:
                if beating is not None:
                    beating.cancel()
                    await asyncio.gather(beating, return_exceptions=True)

    async def work_call(
        self, client: aiohttp.ClientSession, call_id: int, headers: dict[str, str]
    ) -> None:
        """One call: read it, answered, identity confirmed, outcome saved and completed."""
        detail = await self.request(
            client, "GET /api/calls/{call_id}", "GET", f"/api/calls/{call_id}"
        )
        if detail is None or detail[0] != 200:
            return
        await self.request(
            client,
            "POST /api/calls/{call_id}/attempts",
            "POST",
            f"/api/calls/{call_id}/attempts",
            json={"result": "answered"},
            headers=headers,
        )
        await self.request(
            client,
            "POST /api/calls/{call_id}/identity",
            "POST",
            f"/api/calls/{call_id}/identity",
            json={"confirmed": True},
            headers=headers,
        )
        await self.request(
            client,
            "POST /api/calls/{call_id}/outcomes",
            "POST",
            f"/api/calls/{call_id}/outcomes",
            json={
                "outcomes": [
                    {"kind": "confirmed", "appointment_id": detail[1]["appointments"][0]["id"]}
                ],
                "complete": True,
            },
            headers=headers,
        )


def run_navigators(
    base: str, navigators: int, seconds: float, think: float, heartbeat: float = 0.0
) -> dict[str, Any]:
    """Run the navigators against a served app; the figures as a JSON-ready dict."""
    crowd = Navigators(base, navigators, seconds, think, heartbeat)
    elapsed = asyncio.run(crowd.run())
    report = crowd.recorder.report(elapsed)
    takers: dict[int, set[int]] = defaultdict(set)
    for call_id, number in crowd.taken:
        takers[call_id].add(number)
    routes = report["routes"]
    p95 = [
        routes.get(label, {}).get("p95_ms")
        for label in ("POST /api/calls/next", "POST /api/calls/{call_id}/outcomes")
    ]
    heartbeat_p95 = routes.get("POST /api/calls/{call_id}/heartbeat", {}).get("p95_ms")
    # Any 4xx is an error here too: nothing in this flow should be refused.
    errors = report["errors"] + report["client_errors_4xx"] + crowd.sign_in_failures
    # The property under test: a call handed to two different navigators.
    taken_twice = sum(1 for users in takers.values() if len(users) > 1)
    return {
        **report,
        "navigators": navigators,
        "think_seconds": think,
        "seconds": round(elapsed, 1),
        "sign_in_failures": crowd.sign_in_failures,
        "calls_taken": len(takers),
        "calls_taken_by_two_navigators": taken_twice,
        "errors": errors,
        "heartbeat_seconds": heartbeat,
        "target_p95_ms": 150,
        "target_heartbeat_p95_ms": 50,
        "within_target": errors == 0
        and taken_twice == 0
        and all(value is not None and value < 150 for value in p95)
        and (not heartbeat or (heartbeat_p95 is not None and heartbeat_p95 < 50)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--navigators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--think-seconds",
        type=float,
        default=2.0,
        help="average pause before each request (0: closed loop, as fast as possible)",
    )
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=3.0,
        help="lease heartbeat interval while a call is open (0: none; the page uses 60)",
    )
    args = parser.parse_args()
    with temporary_database(args.server_url, ROOT) as url:
        settings = seed(url, args.calls, args.navigators)
        create_navigators(settings, args.navigators)
        with serving(url, args.workers, {"NAVIGATOR_CALLS_HOLDOUT_SHARE": "0"}) as (base, _pid):
            load = run_navigators(
                base, args.navigators, args.seconds, args.think_seconds, args.heartbeat_seconds
            )
    result = {
        "benchmark": "navigator_load",
        "backend": "postgresql",
        "server_workers": args.workers,
        "cpu_cores": os.cpu_count(),
        "calls_queued": args.calls,
        **load,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
