"""Benchmark: N SIU/ADT messages over loopback MLLP to a real `navigator feed hl7` process.

Prints one JSON object: for one connection and then four, messages/s applied and the ACK
latency p50/p95, with each connection sending up to --window messages ahead of their ACKs;
the same for a smaller sample sent stop-and-wait (window 1: each message only after the
previous one's ACK, as most integration engines send); a replay of every message (must
change nothing); a run where the listener is SIGKILLed mid-stream and restarted (every
message ACKed once, 0 lost, 0 applied twice); and S15 cancellations of appointments with a
pending reminder (send to ACK, which follows the commit that cancelled the reminders).
Talks only to 127.0.0.1 and stops by itself.
Targets (issue 14): >= 500 messages/s, ACK p95 < 50 ms for 100,000 messages.

    .venv/bin/python scripts/bench_feed.py --messages 2000 --backend sqlite
    .venv/bin/python scripts/bench_feed.py --messages 100000 [--window 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from app.appointments.tables import Appointment, AppointmentChange  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.feed.tables import FeedMessage  # noqa: E402
from app.patients.tables import Patient  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.sms.tables import MessageKind, OutboxState, SmsMessage  # noqa: E402
from tests.databases import temporary_database  # noqa: E402
from tests.feed.helpers import MllpClient, adt, siu  # noqa: E402
from tests.feed.test_restart import IN_FLIGHT_AT_KILL, ListenerProcess  # noqa: E402

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_WINDOW = 8
DEFAULT_STOP_AND_WAIT = 5_000


def build_messages(count: int, prefix: str) -> list[bytes]:
    """One registration per ten messages, then a booking and reschedules of its appointments."""
    messages: list[bytes] = []
    n = 0
    while len(messages) < count:
        patient = f"{prefix}P{n}"
        messages.append(adt("A04", f"{prefix}R{n}", patient_id=patient, sent_at=NOW))
        for a in range(3):
            appointment = f"{prefix}A{n}-{a}"
            start = NOW + timedelta(days=8 + a)
            common: dict[str, Any] = {
                "appointment_id": appointment,
                "patient_id": patient,
                "sent_at": NOW,
            }
            messages.append(siu("S12", f"{prefix}B{n}-{a}", start=start, **common))
            messages.append(
                siu("S13", f"{prefix}M{n}-{a}", start=start + timedelta(hours=1), **common)
            )
            messages.append(siu("S14", f"{prefix}C{n}-{a}", start=start, clinic="X2", **common))
        n += 1
    return messages[:count]


def send_all(port: int, messages: list[bytes], connections: int, window: int) -> dict[str, Any]:
    """Each connection streams its share with up to `window` messages awaiting their ACKs
    (an integration engine's pipelining; window 1 is stop-and-wait). ACK latency is from
    writing a message to reading its ACK, which comes back in order."""
    latencies: list[float] = []
    codes: dict[str, int] = {}
    out_of_order = 0
    lock = threading.Lock()
    # Per patient in order: split by patient block of ten messages, round robin over senders.
    blocks = [messages[i : i + 10] for i in range(0, len(messages), 10)]
    shares: list[list[bytes]] = [[] for _ in range(connections)]
    for index, block in enumerate(blocks):
        shares[index % connections].extend(block)

    def run(share: list[bytes]) -> None:
        nonlocal out_of_order
        client = MllpClient(port, timeout=60)
        sent_at: list[float] = [0.0] * len(share)
        room = threading.Semaphore(window)
        mine: list[float] = []
        seen: dict[str, int] = {}
        wrong = 0

        def receive() -> None:
            nonlocal wrong
            for index, message in enumerate(share):
                ack = client.read_ack()
                mine.append(time.perf_counter() - sent_at[index])
                room.release()
                seen[ack.code] = seen.get(ack.code, 0) + 1
                wrong += ack.control_id != control_id_of(message)

        receiver = threading.Thread(target=receive)
        receiver.start()
        for index, message in enumerate(share):
            room.acquire()
            sent_at[index] = time.perf_counter()
            client.send_raw(b"\x0b" + message + b"\x1c\x0d")
        receiver.join()
        client.close()
        with lock:
            latencies.extend(mine)
            out_of_order += wrong
            for code, number in seen.items():
                codes[code] = codes.get(code, 0) + number

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "connections": connections,
        "window": window,
        "messages": len(messages),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(messages) / elapsed, 1),
        "ack_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "ack_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
        "acks": codes,
        "acks_out_of_order": out_of_order,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def control_id_of(message: bytes) -> str:
    return message.split(b"\r", 1)[0].split(b"|")[9].decode()


def database_counts(database: Database) -> dict[str, int]:
    with database.unit_of_work() as session:
        return {
            "feed_messages": session.scalar(select(func.count()).select_from(FeedMessage)) or 0,
            "appointments": session.scalar(select(func.count()).select_from(Appointment)) or 0,
            "changes": session.scalar(select(func.count()).select_from(AppointmentChange)) or 0,
        }


def kill_and_restart(settings: Settings, messages: list[bytes], log: Path) -> dict[str, Any]:
    """SIGKILL with messages in flight (sent, ACKs unread), restart on the same port, resend."""
    listener = ListenerProcess(settings, NOW, log)
    client = MllpClient(listener.port, timeout=60)
    kill_at, index, resent, acked = len(messages) // 2, 0, 0, 0
    while index < len(messages):
        if index == kill_at and resent == 0:
            for message in messages[index : index + IN_FLIGHT_AT_KILL]:
                client.send_raw(b"\x0b" + message + b"\x1c\x0d")
            listener.kill()
            client.close()
            listener = ListenerProcess(settings, NOW, log, port=listener.port)
            client = MllpClient(listener.port, timeout=60)
            resent = IN_FLIGHT_AT_KILL
            continue
        acked += client.send(messages[index]).code == "AA"
        index += 1
    client.close()
    listener.stop()
    return {"messages": len(messages), "acked_aa": acked, "resent": resent}


def cancellation_latency(database: Database, port: int, count: int) -> dict[str, Any]:
    """S15 for booked appointments that each have a pending reminder: the time from sending it
    to its ACK, which is written only after the commit that cancelled the reminders."""
    with database.unit_of_work() as session:
        booked = session.execute(
            select(Appointment.id, Appointment.pas_appointment_id, Appointment.patient_id)
            .where(Appointment.attendance_code == "0")
            .order_by(Appointment.id)
            .limit(count)
        ).all()
        patients = dict(
            session.execute(
                select(Patient.id, Patient.pas_patient_id).where(
                    Patient.id.in_([row.patient_id for row in booked])
                )
            ).all()
        )
        for row in booked:
            session.add(
                SmsMessage(
                    idempotency_key=f"bench-{row.id}",
                    patient_id=row.patient_id,
                    appointment_id=row.id,
                    kind=MessageKind.REMINDER,
                    language="en",
                    to_number="+447700900123",
                    body="Reminder (synthetic)",
                    state=OutboxState.PENDING,
                    next_attempt_at=NOW,
                )
            )
    client = MllpClient(port, timeout=60)
    latencies: list[float] = []
    for row in booked:
        message = siu(
            "S15",
            f"x-{row.pas_appointment_id}",
            appointment_id=row.pas_appointment_id,
            patient_id=patients[row.patient_id],
            start=NOW + timedelta(days=8),
            sent_at=NOW,
        )
        started = time.perf_counter()
        assert client.send(message).code == "AA"  # noqa: S101 - a benchmark's own check
        latencies.append(time.perf_counter() - started)
    client.close()
    with database.unit_of_work() as session:
        still_pending = session.scalar(
            select(func.count())
            .select_from(SmsMessage)
            .where(
                SmsMessage.appointment_id.in_([row.id for row in booked]),
                SmsMessage.state == OutboxState.PENDING,
            )
        )
    latencies.sort()
    return {
        "cancellations": len(booked),
        "s15_to_reminders_cancelled_p95_ms": round(
            latencies[max(0, int(len(latencies) * 0.95) - 1)] * 1000, 2
        ),
        "s15_to_reminders_cancelled_max_ms": round(latencies[-1] * 1000, 2),
        "reminders_still_pending": still_pending,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW,
        help="messages each connection sends ahead of their ACKs (1: stop-and-wait)",
    )
    parser.add_argument(
        "--stop-and-wait-messages",
        type=int,
        default=DEFAULT_STOP_AND_WAIT,
        help="also send this many (at most --messages) one at a time, each after the last "
        "ACK, on one and on four connections, as most integration engines do (0: skip)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "messages": args.messages,
        "backend": args.backend,
        "window": args.window,
        "cpus": os.cpu_count(),
        "load_average_before": [round(value, 2) for value in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="navigator-feed-bench-") as tmp:
        base = "sqlite://" if args.backend == "sqlite" else args.postgres_url
        with temporary_database(base, Path(tmp)) as url:
            migrate.upgrade(url)
            settings = Settings(_env_file=None, database_url=url)
            database = Database(settings)
            log = Path(tmp) / "listener.log"
            listener = ListenerProcess(settings, NOW, log)
            port = listener.port
            one = build_messages(args.messages, "c1-")
            four = build_messages(args.messages, "c4-")
            results["one_connection"] = send_all(port, one, 1, args.window)
            results["four_connections"] = send_all(port, four, 4, args.window)
            waiting = min(args.messages, args.stop_and_wait_messages)
            if waiting > 0:
                results["stop_and_wait"] = {
                    "one_connection": send_all(port, build_messages(waiting, "s1-"), 1, 1),
                    "four_connections": send_all(port, build_messages(waiting, "s4-"), 4, 1),
                }
            before = database_counts(database)
            replay = send_all(port, one + four, 4, args.window)
            after = database_counts(database)
            results["replay"] = {**replay, "changed_nothing": before == after}
            results["cancellation"] = cancellation_latency(database, port, 50)
            listener.stop()
            killed_messages = build_messages(max(200, args.messages // 10), "k-")
            start_counts = database_counts(database)
            killed = kill_and_restart(settings, killed_messages, log)
            end_counts = database_counts(database)
            stored = end_counts["feed_messages"] - start_counts["feed_messages"]
            killed["stored_once"] = stored == len(killed_messages)
            killed["lost"] = len(killed_messages) - stored
            results["kill_and_restart"] = killed
            database.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
