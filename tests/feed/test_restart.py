"""The listener killed (SIGKILL) in the middle of a stream and started again loses nothing:
every ACKed message is applied once, the unACKed one is applied after the sender resends."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.appointments.tables import Appointment, AppointmentChange
from app.clock import FixedClock
from app.db.session import Database
from app.feed.tables import FeedMessage
from app.settings import Settings
from tests.feed.helpers import MllpClient, adt, siu

ROOT = Path(__file__).resolve().parents[2]
# Generous bounds for a loaded shared machine; the test waits on events, never on time.
START_TIMEOUT = 180.0
ACK_TIMEOUT = 60.0
IN_FLIGHT_AT_KILL = 5


class ListenerProcess:
    """`tests.feed.listener_process` started and waited on: ready once it prints its port."""

    def __init__(self, settings: Settings, now: datetime, log: Path, port: int = 0) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.feed.listener_process", settings.database_url,
             str(port), now.isoformat()],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )  # fmt: skip
        self.port = self._wait_until_ready(log)

    def _wait_until_ready(self, log: Path) -> int:
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"the listener did not start: {log.read_text()}") from None
        if not line.startswith(b"ready "):
            self.kill()
            raise AssertionError(f"the listener did not start: {log.read_text()}")
        return int(line.split()[1])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(ACK_TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(ACK_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def test_a_killed_listener_loses_nothing_and_applies_nothing_twice(
    database: Database, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    now = clock.now()
    messages = [adt("A04", f"R{n}", patient_id=f"P{n}", sent_at=now) for n in range(10)]
    for n in range(30):
        start = now + timedelta(days=8)
        common = {"appointment_id": f"A{n}", "patient_id": f"P{n % 10}", "sent_at": now}
        messages.append(siu("S12", f"B{n}", start=start, **common))  # type: ignore[arg-type]
        for step in (1, 2):
            moved = start + timedelta(hours=step)
            messages.append(siu("S13", f"M{n}-{step}", start=moved, **common))  # type: ignore[arg-type]
    kill_at = len(messages) // 2
    log = tmp_path / "listener.log"
    listener = ListenerProcess(settings, now, log)
    client = MllpClient(listener.port, timeout=ACK_TIMEOUT)
    acked: list[str] = []
    resent = 0
    try:
        index = 0
        killed = False
        while index < len(messages):
            if index == kill_at and not killed:
                # Several messages in flight, none of their ACKs read, then SIGKILL: the
                # sender never saw them acknowledged, so it must resend them all.
                for message in messages[index : index + IN_FLIGHT_AT_KILL]:
                    client.send_raw(b"\x0b" + message + b"\x1c\x0d")
                listener.kill()
                killed = True
                client.close()
                listener = ListenerProcess(settings, now, log, port=listener.port)
                client = MllpClient(listener.port, timeout=ACK_TIMEOUT)
                resent += IN_FLIGHT_AT_KILL
                continue
            ack = client.send(messages[index])
            assert ack.code == "AA", ack.text
            acked.append(ack.control_id)
            index += 1
    finally:
        client.close()
        listener.stop()

    assert resent >= 1
    assert len(acked) == len(messages)
    with database.unit_of_work() as session:
        stored = session.scalar(select(func.count()).select_from(FeedMessage))
        appointments = session.scalar(select(func.count()).select_from(Appointment))
        changes = session.scalar(select(func.count()).select_from(AppointmentChange))
        final = set(session.scalars(select(Appointment.start_at)))
    assert stored == len(messages)  # every message once
    assert appointments == 30
    assert changes == 60  # each reschedule recorded once, none twice
    assert final == {(now + timedelta(days=8, hours=2)).replace(microsecond=0)}
