"""Load test: many navigators working the call queue at once over loopback HTTP.

Creates a throwaway PostgreSQL database, queues one call per synthetic patient for today and
creates one navigator account per thread (each signs in through the API, cookie + CSRF),
serves the app with uvicorn on 127.0.0.1, and runs N navigator threads for a bounded time,
each looping take next -> call detail -> answered attempt -> outcome + complete. Prints one
JSON object: calls completed, request latencies, errors, and whether any call was taken
twice. The database is dropped afterwards.

    .venv/bin/python scripts/load_calls.py [--navigators 50] [--seconds 30] [--calls 3000]
        [--workers 2] [--think-seconds 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.auth.passwords import hash_password
from app.auth.roles import Role
from app.auth.tables import User
from app.calls.queue import build_queue
from app.db import migrate
from app.db.session import Database
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LOAD_PASSWORD = "load test navigator password"  # noqa: S105 - throwaway database only


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seed(url: str, calls: int, navigators: int) -> Settings:
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
        with database.unit_of_work() as session:
            build_queue(session, settings, today)
            password_hash = hash_password(LOAD_PASSWORD)
            session.add_all(
                User(
                    username=f"loadnav{n}",
                    role=Role.NAVIGATOR.value,
                    password_hash=password_hash,
                    active=True,
                    failed_attempts=0,
                )
                for n in range(1, navigators + 1)
            )
        with database.engine.connect() as connection:
            # A live database has statistics (autovacuum keeps them); a freshly seeded one
            # does not, and the planner would guess the tables are empty.
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    finally:
        database.dispose()
    return settings


def navigator(
    base: str,
    user_id: int,
    seconds: float,
    ready: threading.Barrier,
    latencies: dict[str, list[float]],
    taken: list[tuple[int, int]],
    errors: list[str],
    lock: threading.Lock,
    think: float = 0.0,
) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        signed_in = client.post(
            "/api/auth/session",
            json={"username": f"loadnav{user_id}", "password": LOAD_PASSWORD},
        )
        # Everyone signs in first (argon2 is slow on purpose); the clock starts after.
        ready.wait()
        if signed_in.status_code != 200:
            with lock:
                errors.append(f"sign_in {signed_in.status_code}")
            return
        client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        deadline = time.perf_counter() + seconds

        def call(name: str, method: str, path: str, **kwargs: object) -> httpx.Response:
            started = time.perf_counter()
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies[name].append(elapsed)
                if response.status_code >= 400:
                    errors.append(f"{name} {response.status_code}")
            if think:
                # A person reads the screen and talks to the patient between requests; the
                # pause varies (0.5x to 1.5x) so 50 navigators do not stay in lockstep.
                time.sleep(think * random.uniform(0.5, 1.5))
            return response

        while time.perf_counter() < deadline:
            taken_response = call("take_next", "POST", "/api/calls/next")
            if taken_response.status_code != 200:
                continue
            next_call = taken_response.json()
            if next_call is None:
                return
            call_id = next_call["id"]
            with lock:
                taken.append((call_id, user_id))
            detail = call("detail", "GET", f"/api/calls/{call_id}")
            if detail.status_code != 200:
                continue
            appointment_id = detail.json()["appointments"][0]["id"]
            call("attempt", "POST", f"/api/calls/{call_id}/attempts", json={"result": "answered"})
            call(
                "outcomes",
                "POST",
                f"/api/calls/{call_id}/outcomes",
                json={
                    "outcomes": [{"kind": "confirmed", "appointment_id": appointment_id}],
                    "complete": True,
                },
            )


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--navigators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--think-seconds",
        type=float,
        default=0.0,
        help="pause after each request (0: closed loop, every navigator as fast as possible)",
    )
    args = parser.parse_args()

    server = make_url(args.server_url)
    name = f"navigator_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    process = None
    try:
        settings = seed(url, args.calls, args.navigators)
        port = _free_port()
        env = {
            **os.environ,
            "NAVIGATOR_DATABASE_URL": url,
            "NAVIGATOR_CALLS_HOLDOUT_SHARE": "0",
            "NAVIGATOR_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_production_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        latencies: dict[str, list[float]] = defaultdict(list)
        taken: list[tuple[int, int]] = []
        errors: list[str] = []
        lock = threading.Lock()
        ready = threading.Barrier(args.navigators + 1)
        threads = [
            threading.Thread(
                target=navigator,
                args=(
                    base,
                    user,
                    args.seconds,
                    ready,
                    latencies,
                    taken,
                    errors,
                    lock,
                    args.think_seconds,
                ),
            )
            for user in range(1, args.navigators + 1)
        ]
        for thread in threads:
            thread.start()
        ready.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    requests = sum(len(values) for values in latencies.values())
    takers: dict[int, set[int]] = defaultdict(set)
    for call_id, user_id in taken:
        takers[call_id].add(user_id)
    taken_by_two = [call_id for call_id, users in takers.items() if len(users) > 1]
    result = {
        "benchmark": "navigator_load",
        "backend": "postgresql",
        "navigators": args.navigators,
        "server_workers": args.workers,
        "think_seconds": args.think_seconds,
        "seconds": round(elapsed, 1),
        "calls_queued": args.calls,
        "calls_taken": len({call_id for call_id, _ in taken}),
        # The property under test: a call handed to two different navigators.
        "calls_taken_by_two_navigators": len(taken_by_two),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "latency": {name: _summary(values) for name, values in sorted(latencies.items())},
        "capacity": settings.calls_navigators_on_duty * settings.calls_per_navigator_per_day,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
