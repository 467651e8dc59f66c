"""A dispatcher process killed mid-run and restarted: every message sent once, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db.session import Database
from app.settings import Settings
from app.sms.tables import SmsMessage
from tests.factories import create_appointment
from tests.sms.fake_twilio import FakeTwilio
from tests.sms.helpers import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, create_message

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 200
LEASE_SECONDS = 2.0


def dispatcher_env(settings: Settings, upstream: FakeTwilio) -> dict[str, str]:
    return {
        **os.environ,
        "NAVIGATOR_DATABASE_URL": settings.database_url,
        "NAVIGATOR_DATA_DIR": str(settings.data_dir),
        "NAVIGATOR_PUBLIC_BASE_URL": "https://navigator.test",
        "NAVIGATOR_SMS_PROVIDER": "twilio",
        "NAVIGATOR_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "NAVIGATOR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "NAVIGATOR_TWILIO_MESSAGING_SERVICE_SID": MESSAGING_SERVICE_SID,
        "NAVIGATOR_TWILIO_API_BASE_URL": upstream.base_url,
        "NAVIGATOR_SMS_LEASE_SECONDS": str(LEASE_SECONDS),
        "NAVIGATOR_SMS_BATCH_SIZE": "10",
        "NAVIGATOR_SMS_SEND_RATE_PER_SECOND": "0",
        "NAVIGATOR_SMS_QUIET_HOURS_START": "00:00",
        "NAVIGATOR_SMS_QUIET_HOURS_END": "00:00",
    }


def start_dispatcher(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "sms", "dispatch", *extra],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_a_killed_dispatcher_restarted_sends_every_message_exactly_once(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        keys = set()
        # The dispatcher runs in its own process on the system clock, so the messages are
        # due, and their appointments ahead, by that clock.
        now = datetime.now(UTC)
        for index in range(MESSAGES):
            appointment = create_appointment(session, start_at=now + timedelta(days=7))
            message = create_message(
                session,
                appointment=appointment,
                to_number=f"+447700900{index % 200:03d}",
                body=f"Reminder {index}",
                next_attempt_at=now - timedelta(minutes=1),
            )
            keys.add(message.idempotency_key)

    with FakeTwilio(latency_seconds=0.01) as upstream:
        env = dispatcher_env(settings, upstream)
        first = start_dispatcher(env)
        deadline = time.monotonic() + 60
        while len(upstream.message_posts()) < MESSAGES // 3 and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()[1].decode()
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # no chance to record what is in flight
        first.wait(timeout=10)
        sent_before_restart = upstream.sent_keys().total()
        assert 0 < sent_before_restart < MESSAGES

        time.sleep(LEASE_SECONDS + 0.5)  # the dead process's claims expire
        second = start_dispatcher(env, "--once", "--json")
        output, errors = second.communicate(timeout=120)
        assert second.returncode == 0, errors.decode()

        sent = upstream.sent_keys()

    assert set(sent) == keys  # none lost
    assert max(sent.values()) == 1  # none twice
    with database.unit_of_work() as session:
        states = dict(
            session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state)).all()
        )
    assert states == {"submitted": MESSAGES}
    assert b'"submitted"' in output
