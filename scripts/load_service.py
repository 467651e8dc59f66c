"""Bounded loopback load test of the whole service on PostgreSQL; prints one JSON object.

    .venv/bin/python scripts/load_service.py [--minutes 3] [--workers 4] [--navigators 50]
        [--callbacks-per-second 100] [--manager-every 5] [--think 1] [--patients 12000]
        [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

It creates a throwaway database on the server and prepares it as the demo does (migrate,
synthesise and import a trust, train, score, schedule reminders). Then it queues calls for
today from a wider window (1-21 days ahead, so 50 navigators have work for the whole run),
sends the reminder outbox through the fake provider so every message has a provider SID, adds
navigator and manager accounts, and starts `navigator serve` with several uvicorn workers on a
loopback port. For the given minutes:

- each navigator works the call queue (queue view, take the next call, open it, record an
  attempt, record outcomes and complete when answered; reads appointments when the queue is
  empty), pausing about `--think` seconds before each step;
- a manager opens the dashboard, the queue overview, SMS figures and the audit log every few
  seconds;
- Twilio status callbacks for the real message SIDs arrive at a steady rate, correctly signed
  (`X-Twilio-Signature`), duplicated and out of order as Twilio's are. They come from a second
  process, so the callback clock never waits on the navigators' event loop.

It reports the error rate (5xx and transport errors; 4xx that the flow expects, such as a
call taken by someone else, are counted apart), p50/p95 per route, throughput, the CPU time of
the server and of the load generator, and the RSS of the server's processes sampled every few
seconds. The database is dropped at the end. Only loopback traffic; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadkit import Recorder, client_session, free_port, serving, sign_in  # noqa: E402

from tests.databases import temporary_database  # noqa: E402

SECRET_KEY = "load-test-secret-key-" + "x" * 32  # loopback test only
TWILIO_TOKEN = "load-test-twilio-auth-token-0123456789"  # noqa: S105 - loopback test only
PASSWORD = "correct horse battery staple load"  # noqa: S105 - loopback test only


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


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its live descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = fields
            children[int(fields[1])].append(int(entry))
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if pid in stats:
            total += int(stats[pid][11]) + int(stats[pid][12])
    return round(total / ticks, 1)


def prepare(database_url: str, patients: int, navigators: int) -> tuple[list[str], dict[str, Any]]:
    """The demo's data, a day's queue with work for everyone, sent reminders and accounts."""
    from sqlalchemy import update

    from app.auth.passwords import hash_password
    from app.auth.tables import User
    from app.calls.queue import build_queue
    from app.calls.service import local_today
    from app.clock import FixedClock
    from app.db.session import Database
    from app.demo import prepare_demo
    from app.settings import Settings
    from app.sms.dispatcher import Dispatcher
    from app.sms.providers import FakeSender
    from app.sms.tables import OutboxState, SmsMessage

    settings = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key=SECRET_KEY,
        data_dir=ROOT / "var" / "load",
        sms_provider="fake",
        sms_send_rate_per_second=0,
        calls_window_start_days=1,
        calls_window_end_days=21,
        calls_navigators_on_duty=navigators,
        calls_per_navigator_per_day=200,
    )
    started = time.perf_counter()
    # The demo's own settings for its programme history (calls a week ahead, two navigators),
    # so today's wider build below finds appointments 8-21 days ahead still to queue.
    demo_settings = settings.model_copy(
        update={
            "calls_window_start_days": 7,
            "calls_window_end_days": 7,
            "calls_navigators_on_duty": 2,
            "calls_per_navigator_per_day": 40,
        }
    )
    summary = prepare_demo(demo_settings, patients=patients, show_progress=False)
    database = Database(settings)
    try:
        now = datetime.now(UTC)
        with database.unit_of_work() as session:
            queue = build_queue(session, settings, local_today(settings, now), now=now)
            # Every queued reminder becomes due, and is sent at midday (outside quiet hours).
            session.execute(
                update(SmsMessage)
                .where(SmsMessage.state == OutboxState.PENDING)
                .values(next_attempt_at=now)
            )
        zone = ZoneInfo(settings.timezone)
        midday = datetime.combine(now.astimezone(zone).date(), clock_time(12), zone)
        dispatched = Dispatcher(
            database, settings, FakeSender(), clock=FixedClock(midday)
        ).run_once()
        password_hash = hash_password(PASSWORD)
        with database.unit_of_work() as session:
            session.add_all(
                User(username=f"load-nav-{index}", role="navigator", password_hash=password_hash)
                for index in range(navigators)
            )
            session.add(User(username="load-manager", role="manager", password_hash=password_hash))
        with database.engine.connect() as connection:
            sids = [
                row[0]
                for row in connection.execute(
                    text("SELECT provider_sid FROM sms_messages WHERE provider_sid IS NOT NULL")
                )
            ]
    finally:
        database.dispose()
    return sids, {
        "prepare_seconds": round(time.perf_counter() - started, 1),
        "demo": summary.as_dict(),
        "queue_build": queue.as_dict(),
        "sms_sent_before_load": dispatched.submitted,
    }


async def navigator(
    base: str, index: int, recorder: Recorder, deadline: float, think: float
) -> None:
    async def pause() -> None:
        await asyncio.sleep(think * random.uniform(0.5, 1.5))

    async with client_session(base, connections=2) as client:
        headers = {"X-CSRF-Token": await sign_in(client, f"load-nav-{index}", PASSWORD)}
        while time.monotonic() < deadline:
            await pause()
            await recorder.call(client, "GET /api/calls/queue", "GET", "/api/calls/queue")
            await pause()
            taken = await recorder.call(
                client, "POST /api/calls/next", "POST", "/api/calls/next", headers=headers
            )
            call = taken[1] if taken is not None and taken[0] == 200 else None
            if not call:
                await pause()
                await recorder.call(
                    client, "GET /api/appointments", "GET", "/api/appointments?limit=20"
                )
                continue
            call_id = call["id"]
            await pause()
            detail = await recorder.call(
                client, "GET /api/calls/{call_id}", "GET", f"/api/calls/{call_id}"
            )
            if detail is None or detail[0] != 200:
                continue
            answered = random.random() < 0.6
            await pause()
            await recorder.call(
                client,
                "POST /api/calls/{call_id}/attempts",
                "POST",
                f"/api/calls/{call_id}/attempts",
                json={"result": "answered" if answered else "no_answer"},
                headers=headers,
            )
            if answered:
                await pause()
                await recorder.call(
                    client,
                    "POST /api/calls/{call_id}/outcomes",
                    "POST",
                    f"/api/calls/{call_id}/outcomes",
                    json={
                        "outcomes": [
                            {"kind": "confirmed", "appointment_id": appointment["id"]}
                            for appointment in detail[1]["appointments"]
                            if appointment["covered_by_this_call"]
                        ],
                        "complete": True,
                    },
                    headers=headers,
                )


MANAGER_PAGES = ("/api/analytics/dashboard", "/api/calls/overview", "/api/sms/stats", "/api/audit")


async def manager(base: str, recorder: Recorder, deadline: float, every: float) -> None:
    async with client_session(base, connections=2) as client:
        await sign_in(client, "load-manager", PASSWORD)
        while time.monotonic() < deadline:
            for path in MANAGER_PAGES:
                await recorder.call(client, f"GET {path}", "GET", path)
            await asyncio.sleep(every)


async def sample_memory(pid: int, deadline: float, every: float, samples: list[float]) -> None:
    while time.monotonic() < deadline:
        samples.append(process_tree_rss_mb(pid))
        await asyncio.sleep(every)


async def send_callbacks(base: str, seconds: float, rate: float, sids: list[str]) -> Recorder:
    """Signed status callbacks at a steady rate (an open loop: one every 1/rate seconds,
    whatever the server's answer time, as Twilio sends them)."""
    recorder = Recorder()
    validator = RequestValidator(TWILIO_TOKEN)
    url = base + "/webhooks/twilio/status"
    pending: set[asyncio.Task[Any]] = set()
    async with client_session(base, connections=200) as client:
        started = time.monotonic()
        sent = 0
        while time.monotonic() < started + seconds:
            form = {
                "MessageSid": random.choice(sids),
                "MessageStatus": random.choice(("sent", "delivered")),
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
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if pending:
            await asyncio.gather(*pending)
    return recorder


def callback_process(base: str, seconds: float, rate: float, sids: list[str], results: Any) -> None:
    recorder = asyncio.run(send_callbacks(base, seconds, rate, sids))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((recorder.dump(), usage.ru_utime + usage.ru_stime))


async def run_load(
    args: argparse.Namespace, base: str, server_pid: int, sids: list[str]
) -> dict[str, Any]:
    recorder = Recorder()
    memory: list[float] = []
    seconds = args.minutes * 60
    results: Any = multiprocessing.get_context("spawn").Queue()
    callbacks = multiprocessing.get_context("spawn").Process(
        target=callback_process,
        args=(base, seconds, args.callbacks_per_second, sids, results),
    )
    cpu_before = process_tree_cpu_seconds(server_pid)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + seconds
    callbacks.start()
    await asyncio.gather(
        *(
            navigator(base, index, recorder, deadline, args.think)
            for index in range(args.navigators)
        ),
        manager(base, recorder, deadline, args.manager_every),
        sample_memory(server_pid, deadline, 5.0, memory),
    )
    callback_dump, callback_cpu = await asyncio.to_thread(results.get)
    callbacks.join()
    elapsed = time.monotonic() - started
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    recorder.merge(callback_dump)
    result = recorder.report(elapsed)
    third = max(1, len(memory) // 3)
    result["seconds"] = round(elapsed, 1)
    result["cpu_seconds"] = {
        "server": round(process_tree_cpu_seconds(server_pid) - cpu_before, 1),
        "navigator_and_manager_clients": round(
            own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime, 1
        ),
        "callback_client": round(callback_cpu, 1),
    }
    result["server_rss_mb"] = {
        "samples": memory,
        "first_third_mean": round(statistics.mean(memory[:third]), 1) if memory else None,
        "last_third_mean": round(statistics.mean(memory[-third:]), 1) if memory else None,
        "max": max(memory) if memory else None,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--navigators", type=int, default=50)
    parser.add_argument("--callbacks-per-second", type=float, default=100.0)
    parser.add_argument("--manager-every", type=float, default=5.0)
    parser.add_argument("--think", type=float, default=1.0, help="seconds before each step")
    parser.add_argument("--patients", type=int, default=12000)
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    with temporary_database(args.server_url, ROOT) as database_url:
        sids, prepared = prepare(database_url, args.patients, args.navigators)
        port = free_port()
        env = {
            # Twilio signs the public URL: the server must believe it is this one.
            "NAVIGATOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "NAVIGATOR_SECRET_KEY": SECRET_KEY,
            "NAVIGATOR_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "NAVIGATOR_SMS_PROVIDER": "fake",
            "NAVIGATOR_DATA_DIR": str(ROOT / "var" / "load"),
            "NAVIGATOR_LOGIN_FAILURE_DELAY_MS": "0",
        }
        with serving(database_url, args.workers, env, port) as (base, pid):
            result = asyncio.run(run_load(args, base, pid, sids))
    result["config"] = {
        "minutes": args.minutes,
        "uvicorn_workers": args.workers,
        "navigators": args.navigators,
        "think_seconds": args.think,
        "callbacks_per_second": args.callbacks_per_second,
        "manager_every_seconds": args.manager_every,
        "patients": args.patients,
        "message_sids": len(sids),
        "cpu_cores": os.cpu_count(),
    }
    result["prepare"] = prepared
    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
