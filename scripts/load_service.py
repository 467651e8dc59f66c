"""Bounded loopback load test of the whole service on PostgreSQL; prints one JSON object.

    .venv/bin/python scripts/load_service.py [--minutes 3] [--workers 4] [--navigators 50]
        [--callbacks-per-second 100] [--manager-every 5] [--patients 3000]
        [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

It creates a throwaway database on the server, prepares it as the demo does (migrate,
synthesise and import a trust, train, score, build today's queue, schedule reminders), adds
navigator and manager accounts, starts `navigator serve` with several uvicorn workers on a
loopback port, then for the given minutes:

- each navigator works the call queue (take the next call, open it, record an attempt, record
  outcomes and complete when answered; reads appointments when the queue is empty), with a
  second of thinking time between steps;
- a manager opens the dashboard every few seconds;
- Twilio status callbacks arrive at a steady rate, correctly signed (`X-Twilio-Signature`)
  for messages of the outbox.

It reports the error rate (5xx and transport errors; 4xx that the flow expects, such as a
call taken by someone else, are counted apart), p50/p95 per route, throughput and the RSS of
the server's processes sampled every few seconds. The database is dropped at the end.
Only loopback traffic; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "load-test-secret-key-" + "x" * 32  # loopback test only
TWILIO_TOKEN = "load-test-twilio-auth-token-0123456789"  # noqa: S105 - loopback test only
PASSWORD = "correct horse battery staple load"  # noqa: S105 - loopback test only


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.transport_errors: dict[str, int] = defaultdict(int)

    async def call(
        self, client: httpx.AsyncClient, label: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError:
            self.transport_errors[label] += 1
            return None
        self.latencies[label].append(time.perf_counter() - started)
        self.statuses[label][response.status_code] += 1
        return response

    def report(self, seconds: float) -> dict[str, Any]:
        routes = {}
        total = errors = client_errors = 0
        for label in sorted(set(self.latencies) | set(self.transport_errors)):
            samples = sorted(self.latencies.get(label, []))
            statuses = self.statuses.get(label, {})
            route_errors = sum(n for code, n in statuses.items() if code >= 500)
            route_errors += self.transport_errors.get(label, 0)
            count = len(samples) + self.transport_errors.get(label, 0)
            total += count
            errors += route_errors
            client_errors += sum(n for code, n in statuses.items() if 400 <= code < 500)
            routes[label] = {
                "requests": count,
                "errors": route_errors,
                "statuses": {str(code): n for code, n in sorted(statuses.items())},
                "p50_ms": round(statistics.median(samples) * 1000, 1) if samples else None,
                "p95_ms": round(samples[int(0.95 * (len(samples) - 1))] * 1000, 1)
                if samples
                else None,
            }
        return {
            "requests": total,
            "errors": errors,
            "error_rate": round(errors / total, 5) if total else None,
            "client_errors_4xx": client_errors,
            "throughput_rps": round(total / seconds, 1),
            "routes": routes,
        }


def process_tree_rss_mb(root_pid: int) -> float:
    """RSS of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry))
    total_kb, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return round(total_kb / 1024, 1)


def prepare_database(server_url: str, patients: int, navigators: int) -> tuple[str, dict[str, Any]]:
    url = make_url(server_url)
    name = f"navigator_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    database_url = url.set(database=name).render_as_string(hide_password=False)

    from app.auth.passwords import hash_password
    from app.auth.tables import User
    from app.db.session import Database
    from app.demo import prepare_demo
    from app.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key=SECRET_KEY,
        data_dir=ROOT / "var" / "load",
        sms_provider="fake",
    )
    started = time.perf_counter()
    summary = prepare_demo(settings, patients=patients, show_progress=False)
    database = Database(settings)
    password_hash = hash_password(PASSWORD)
    with database.unit_of_work() as session:
        for index in range(navigators):
            session.add(
                User(username=f"load-nav-{index}", role="navigator", password_hash=password_hash)
            )
        session.add(User(username="load-manager", role="manager", password_hash=password_hash))
    database.dispose()
    return database_url, {
        "prepare_seconds": round(time.perf_counter() - started, 1),
        "demo": summary.as_dict(),
    }


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def outbox_sids(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT provider_sid FROM sms_messages WHERE provider_sid IS NOT NULL")
            )
            return [row[0] for row in rows]
    except Exception:
        return []
    finally:
        engine.dispose()


async def sign_in(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/api/auth/session", json={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    csrf: str = response.json()["csrf_token"]
    return csrf


async def navigator(
    base: str, index: int, recorder: Recorder, deadline: float, think: float, routes: set[str]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        csrf = await sign_in(client, f"load-nav-{index}")
        headers = {"X-CSRF-Token": csrf}
        has_calls = "/api/calls/next" in routes
        await asyncio.sleep(random.random() * think)
        while time.monotonic() < deadline:
            call = None
            if has_calls:
                await recorder.call(client, "GET /api/calls/queue", "GET", "/api/calls/queue")
                taken = await recorder.call(
                    client, "POST /api/calls/next", "POST", "/api/calls/next", headers=headers
                )
                call = taken.json() if taken is not None and taken.status_code == 200 else None
            if call:
                call_id = call["id"]
                await asyncio.sleep(think)
                await recorder.call(
                    client, "GET /api/calls/{call_id}", "GET", f"/api/calls/{call_id}"
                )
                answered = random.random() < 0.6
                await recorder.call(
                    client,
                    "POST /api/calls/{call_id}/attempts",
                    "POST",
                    f"/api/calls/{call_id}/attempts",
                    json={"result": "answered" if answered else "no_answer"},
                    headers=headers,
                )
                if answered:
                    await asyncio.sleep(think)
                    await recorder.call(
                        client,
                        "POST /api/calls/{call_id}/outcomes",
                        "POST",
                        f"/api/calls/{call_id}/outcomes",
                        json={"outcomes": [{"kind": "confirmed"}], "complete": True},
                        headers=headers,
                    )
            else:
                await recorder.call(
                    client,
                    "GET /api/appointments",
                    "GET",
                    "/api/appointments",
                    params={"limit": 20},
                )
            await asyncio.sleep(think)


async def manager(
    base: str, recorder: Recorder, deadline: float, every: float, routes: set[str]
) -> None:
    pages = [
        path
        for path in (
            "/api/analytics/dashboard",
            "/api/calls/overview",
            "/api/sms/stats",
            "/api/audit",
        )
        if path in routes
    ]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await sign_in(client, "load-manager")
        while time.monotonic() < deadline:
            for path in pages:
                await recorder.call(client, f"GET {path}", "GET", path)
            await asyncio.sleep(every)


async def callbacks(
    base: str, public_base: str, recorder: Recorder, deadline: float, rate: float, sids: list[str]
) -> None:
    validator = RequestValidator(TWILIO_TOKEN)
    url = public_base.rstrip("/") + "/webhooks/twilio/status"
    statuses = ["sent", "delivered"]
    pending: set[asyncio.Task[Any]] = set()
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=50)
    ) as client:
        started = time.monotonic()
        sent = 0
        while time.monotonic() < deadline:
            sid = random.choice(sids) if sids else "SM" + uuid.uuid4().hex
            form = {
                "MessageSid": sid,
                "MessageStatus": random.choice(statuses),
                "AccountSid": "AC" + "0" * 32,
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            task = asyncio.create_task(
                recorder.call(
                    client,
                    "POST /webhooks/twilio/status",
                    "POST",
                    "/webhooks/twilio/status",
                    data=form,
                    headers=headers,
                )
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
            # Keep a steady rate: sleep until this callback's slot.
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if pending:
            await asyncio.gather(*pending)


async def sample_memory(pid: int, deadline: float, every: float, samples: list[float]) -> None:
    while time.monotonic() < deadline:
        samples.append(process_tree_rss_mb(pid))
        await asyncio.sleep(every)


async def run_load(
    args: argparse.Namespace, base: str, server_pid: int, sids: list[str]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as client:
        routes = set((await client.get("/openapi.json")).json()["paths"])
    recorder = Recorder()
    memory: list[float] = []
    seconds = args.minutes * 60
    started = time.monotonic()
    deadline = started + seconds
    tasks = [
        navigator(base, index, recorder, deadline, args.think, routes)
        for index in range(args.navigators)
    ]
    tasks.append(manager(base, recorder, deadline, args.manager_every, routes))
    tasks.append(callbacks(base, base, recorder, deadline, args.callbacks_per_second, sids))
    tasks.append(sample_memory(server_pid, deadline, 5.0, memory))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    result = recorder.report(elapsed)
    third = max(1, len(memory) // 3)
    result["seconds"] = round(elapsed, 1)
    result["server_rss_mb"] = {
        "samples": memory,
        "first_third_mean": round(statistics.mean(memory[:third]), 1) if memory else None,
        "last_third_mean": round(statistics.mean(memory[-third:]), 1) if memory else None,
        "max": max(memory) if memory else None,
    }
    return result


def wait_for_health(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--navigators", type=int, default=50)
    parser.add_argument("--callbacks-per-second", type=float, default=100.0)
    parser.add_argument("--manager-every", type=float, default=5.0)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between steps")
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()

    database_url, prepared = prepare_database(args.server_url, args.patients, args.navigators)
    base = f"http://127.0.0.1:{args.port}"
    env = {
        **os.environ,
        "NAVIGATOR_DATABASE_URL": database_url,
        "NAVIGATOR_SECRET_KEY": SECRET_KEY,
        "NAVIGATOR_PUBLIC_BASE_URL": base,
        "NAVIGATOR_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "NAVIGATOR_SMS_PROVIDER": "fake",
        "NAVIGATOR_DATA_DIR": str(ROOT / "var" / "load"),
        "NAVIGATOR_LOG_LEVEL": "WARNING",
        "NAVIGATOR_LOGIN_FAILURE_DELAY_MS": "0",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "navigator"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        wait_for_health(base)
        sids = outbox_sids(database_url)
        result = asyncio.run(run_load(args, base, server.pid, sids))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        drop_database(database_url)
    result["config"] = {
        "minutes": args.minutes,
        "uvicorn_workers": args.workers,
        "navigators": args.navigators,
        "callbacks_per_second": args.callbacks_per_second,
        "manager_every_seconds": args.manager_every,
        "patients": args.patients,
        "outbox_sids": len(sids),
        "cpu_cores": os.cpu_count(),
    }
    result["prepare"] = prepared
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
