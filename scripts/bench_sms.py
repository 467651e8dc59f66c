"""SMS benchmark on PostgreSQL; prints one JSON object.

1. Scheduling reminders for 40,000 appointments (target < 20 s).
2. Dispatching 10,000 messages through the real Twilio provider to a local Twilio-speaking
   server with two dispatcher processes (target < 60 s, zero duplicates, zero lost), then
   again with one dispatcher killed (SIGKILL) a third of the way through.
3. 1,000 signed status callbacks, with duplicates and out-of-order statuses, posted
   concurrently to a running server: all accepted, final statuses correct.

Usage: .venv/bin/python scripts/bench_sms.py [--server-url postgresql+psycopg://...]
Each part runs in its own throwaway database, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from app.appointments.tables import Appointment, AppointmentContact, Clinic  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.patients.tables import Patient  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.sms import service  # noqa: E402
from app.sms.tables import SmsMessage  # noqa: E402
from tests.databases import temporary_database  # noqa: E402
from tests.sms import fake_twilio  # noqa: E402
from tests.sms.fake_twilio import FakeTwilio  # noqa: E402

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 - a local fake, not a secret
SERVICE_SID = "MG" + "fedcba9876543210" * 2
ON_DATE = date(2026, 11, 24)


def settings_for(url: str, **extra: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, **extra)


def seed_trust(database: Database, appointments: int, rng: random.Random) -> None:
    """Patients, clinics and appointments 7 and 2 days after ON_DATE, inserted in bulk."""
    patients = appointments // 2
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        session.execute(
            insert(Clinic),
            [
                {
                    "code": f"C{i:03d}",
                    "site": "Leicester Royal Infirmary",
                    "specialty_code": rng.choice(["120", "330", "340", "502"]),
                    "sensitive": i % 10 == 0,
                }
                for i in range(50)
            ],
        )
        rows = []
        for i in range(patients):
            no_channel = rng.random()
            rows.append(
                {
                    "pas_patient_id": f"P{i:08d}",
                    "birth_date": date(1970 + i % 40, 1 + i % 12, 1),
                    "sex": "F" if i % 2 else "M",
                    "mobile_phone": None if no_channel < 0.06 else f"+447700900{i % 1000:03d}",
                    "sms_opt_out": 0.06 <= no_channel < 0.09,
                    "preferred_language": rng.choice(["en"] * 8 + ["pl", "gu"]),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(Patient), rows)
        patient_ids = list(session.scalars(select(Patient.id)))
        clinic_ids = list(session.scalars(select(Clinic.id)))
        rows = []
        for i in range(appointments):
            days = 7 if i % 2 else 2
            start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC) + timedelta(
                days=days, minutes=15 * (i % 32)
            )
            rows.append(
                {
                    "pas_appointment_id": f"A{i:09d}",
                    "patient_id": patient_ids[i % len(patient_ids)],
                    "clinic_id": clinic_ids[i % len(clinic_ids)],
                    "booked_at": start - timedelta(days=40),
                    "start_at": start,
                    "attendance_code": "2" if i % 50 == 0 else "0",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(Appointment), rows)


def bench_schedule(server_url: str, workdir: Path) -> dict[str, Any]:
    with temporary_database(server_url, workdir) as url:
        migrate.upgrade(url)
        database = Database(settings_for(url))
        try:
            seed_trust(database, 40_000, random.Random(1))
            settings = settings_for(url)
            started = time.perf_counter()
            with database.unit_of_work() as session:
                summary = service.schedule_reminders(
                    session, settings, on_date=ON_DATE, now=datetime.now(UTC)
                )
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            with database.unit_of_work() as session:
                again = service.schedule_reminders(
                    session, settings, on_date=ON_DATE, now=datetime.now(UTC)
                )
            rerun = time.perf_counter() - started
        finally:
            database.dispose()
    return {
        "appointments": 40_000,
        "seconds": round(elapsed, 2),
        "target_seconds": 20,
        "created": summary.created,
        "no_sms_channel": summary.no_sms_channel,
        "cancelled": summary.cancelled,
        "rerun_seconds": round(rerun, 2),
        "rerun_created": again.created,
    }


def dispatcher_env(url: str, upstream: FakeTwilio, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NAVIGATOR_DATABASE_URL": url,
        "NAVIGATOR_DATA_DIR": str(data_dir),
        "NAVIGATOR_PUBLIC_BASE_URL": "https://navigator.example.nhs.uk",
        "NAVIGATOR_SMS_PROVIDER": "twilio",
        "NAVIGATOR_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "NAVIGATOR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "NAVIGATOR_TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        "NAVIGATOR_TWILIO_API_BASE_URL": upstream.base_url,
        "NAVIGATOR_SMS_SEND_RATE_PER_SECOND": "0",
        "NAVIGATOR_SMS_QUIET_HOURS_START": "00:00",
        "NAVIGATOR_SMS_QUIET_HOURS_END": "00:00",
        "NAVIGATOR_SMS_LEASE_SECONDS": "5",
        "NAVIGATOR_SMS_POLL_SECONDS": "0.5",
        "NAVIGATOR_SMS_BATCH_SIZE": "50",
        "NAVIGATOR_LOG_LEVEL": "WARNING",
    }


def queue_messages(database: Database, count: int) -> set[str]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    # The fake answers some numbers with errors (21211, 21610...): keep clear of them here.
    numbers = [f"+447700900{n:03d}" for n in range(1000)]
    numbers = [n for n in numbers if n not in fake_twilio.ERRORS and n != fake_twilio.SLOW_NUMBER]
    with database.unit_of_work() as session:
        patient_id = session.scalar(select(Patient.id).limit(1))
        rows = [
            {
                "idempotency_key": service.new_idempotency_key(),
                "patient_id": patient_id,
                "appointment_id": None,
                "kind": "confirm_support",
                "offset_days": None,
                "language": "en",
                "to_number": numbers[i % len(numbers)],
                "body": f"Benchmark message {i}",
                "segments": 1,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        session.execute(insert(SmsMessage), rows)
    return {str(row["idempotency_key"]) for row in rows}


def start_dispatcher(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "sms", "dispatch"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def submitted(database: Database) -> int:
    with database.unit_of_work() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(SmsMessage).where(SmsMessage.state == "submitted")
            )
            or 0
        )


def run_dispatch(url: str, workdir: Path, *, kill_one: bool, count: int) -> dict[str, Any]:
    database = Database(settings_for(url))
    with FakeTwilio() as upstream:
        with database.unit_of_work() as session:
            session.execute(text("DELETE FROM sms_messages"))
        keys = queue_messages(database, count)
        env = dispatcher_env(url, upstream, workdir)
        started = time.perf_counter()
        processes = [start_dispatcher(env), start_dispatcher(env)]
        killed_after = None
        deadline = started + 300
        while time.perf_counter() < deadline:
            posted = len(upstream.message_posts())
            if kill_one and killed_after is None and posted >= count // 3:
                processes[0].send_signal(signal.SIGKILL)
                processes[0].wait()
                killed_after = posted
            done = submitted(database)
            if os.environ.get("BENCH_DEBUG"):
                with database.unit_of_work() as session:
                    states = session.execute(
                        select(SmsMessage.state, SmsMessage.error_code, func.count()).group_by(
                            SmsMessage.state, SmsMessage.error_code
                        )
                    ).all()
                print(f"{time.perf_counter() - started:.1f}s posted={posted} {states}")
            if done >= count:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        sent = upstream.sent_keys()
    database.dispose()
    return {
        "messages": count,
        "dispatchers": 2,
        "seconds": round(elapsed, 2),
        "target_seconds": 60,
        "per_second": round(count / elapsed, 1),
        "submitted": sum(1 for key in keys if sent[key] >= 1),
        "duplicates": sum(max(0, n - 1) for n in sent.values()),
        "lost": sum(1 for key in keys if sent[key] == 0),
        "killed_after_posts": killed_after,
    }


def bench_dispatch(server_url: str, workdir: Path) -> dict[str, Any]:
    with temporary_database(server_url, workdir) as url:
        migrate.upgrade(url)
        database = Database(settings_for(url))
        seed_trust(database, 20, random.Random(2))
        database.dispose()
        clean = run_dispatch(url, workdir, kill_one=False, count=10_000)
        killed = run_dispatch(url, workdir, kill_one=True, count=10_000)
    return {"two_dispatchers": clean, "one_killed_midway": killed}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def post_callbacks(base: str, callbacks: list[dict[str, str]]) -> list[int]:
    validator = RequestValidator(AUTH_TOKEN)
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        semaphore = asyncio.Semaphore(50)

        async def post(form: dict[str, str]) -> int:
            path = "/webhooks/twilio/status"
            signature = validator.compute_signature(base + path, form)
            async with semaphore:
                response = await client.post(
                    path,
                    content=urlencode(form),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    },
                )
            return response.status_code

        return await asyncio.gather(*(post(form) for form in callbacks))


def bench_callbacks(server_url: str, workdir: Path) -> dict[str, Any]:
    rng = random.Random(5)
    with temporary_database(server_url, workdir) as url:
        migrate.upgrade(url)
        database = Database(settings_for(url))
        seed_trust(database, 500, rng)
        expected: dict[str, str] = {}
        with database.unit_of_work() as session:
            appointments = list(session.scalars(select(Appointment.id).limit(250)))
            patient_id = session.scalar(select(Patient.id).limit(1))
            now = datetime.now(UTC)
            rows = []
            for index, appointment_id in enumerate(appointments):
                sid = f"SM{index:032x}"
                expected[sid] = rng.choices(["delivered", "undelivered", "failed"], [8, 1.5, 0.5])[
                    0
                ]
                rows.append(
                    {
                        "idempotency_key": service.new_idempotency_key(),
                        "patient_id": patient_id,
                        "appointment_id": appointment_id,
                        "kind": "reminder",
                        "offset_days": 7,
                        "language": "en",
                        "to_number": "+447700900001",
                        "body": "x",
                        "segments": 1,
                        "state": "submitted",
                        "attempts": 1,
                        "provider_sid": sid,
                        "delivery_status": "queued",
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            session.execute(insert(SmsMessage), rows)
        callbacks: list[dict[str, str]] = []
        for sid, final in expected.items():
            # Four per message: a stale "sending", "sent", and the final status twice.
            for status in ["sending", "sent", final, final]:
                form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
                if status in ("undelivered", "failed"):
                    form["ErrorCode"] = "30003"
                callbacks.append(form)
        rng.shuffle(callbacks)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "NAVIGATOR_DATABASE_URL": url,
            "NAVIGATOR_PUBLIC_BASE_URL": base,
            "NAVIGATOR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "NAVIGATOR_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from app.cli import main; main()",
                "serve",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(base + "/health", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            started = time.perf_counter()
            statuses = asyncio.run(post_callbacks(base, callbacks))
            elapsed = time.perf_counter() - started
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        with database.unit_of_work() as session:
            stored: dict[str, str] = {
                str(sid): str(status)
                for sid, status in session.execute(
                    select(SmsMessage.provider_sid, SmsMessage.delivery_status)
                )
            }
            contacts = session.scalar(select(func.count()).select_from(AppointmentContact))
        database.dispose()
    delivered = sum(1 for status in expected.values() if status == "delivered")
    return {
        "callbacks": len(callbacks),
        "concurrency": 50,
        "seconds": round(elapsed, 2),
        "accepted": sum(1 for status in statuses if status == 204),
        "final_status_correct": sum(1 for sid, status in expected.items() if stored[sid] == status),
        "messages": len(expected),
        "contacts_written": contacts,
        "contacts_expected": delivered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "NAVIGATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--only", choices=["schedule", "dispatch", "callbacks"], default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sms-"))
    result: dict[str, Any] = {"database": "postgresql"}
    if args.only in (None, "schedule"):
        result["schedule"] = bench_schedule(args.server_url, workdir)
    if args.only in (None, "dispatch"):
        result["dispatch"] = bench_dispatch(args.server_url, workdir)
    if args.only in (None, "callbacks"):
        result["callbacks"] = bench_callbacks(args.server_url, workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
