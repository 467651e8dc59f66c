"""The SMS provider failing for a while: messages wait and go out later, each exactly once.

A recording fake provider is "down" for the first part of the test clock: it times out
(sometimes after accepting the message, as a real timeout can), answers 429 (rate limited)
or 500. The dispatcher, driven by the worker loop, keeps retrying with backoff; once the
provider is back every message is delivered, none twice.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from app.clock import FixedClock
from app.db.session import Database
from app.settings import Settings
from app.sms.dispatcher import Dispatcher
from app.sms.providers import FakeSender, OutgoingSms, SendError, SendResult
from app.sms.tables import SmsMessage
from app.worker import Worker
from tests.factories import create_appointment
from tests.sms.helpers import DAYTIME, create_message, local_at

FAILURES = [
    SendError("timed out", code="timeout", retryable=True),
    SendError("Too Many Requests", code="20429", retryable=True),
    SendError("Internal Server Error", code="20500", retryable=True),
]


@dataclass
class FlakyProvider:
    """Down until `down_until` on the shared clock; every third timeout happened after the
    provider had already accepted the message (the hard case for exactly-once)."""

    clock: FixedClock
    down_until: datetime
    inner: FakeSender = field(default_factory=FakeSender)
    failures: int = 0

    def send(self, message: OutgoingSms) -> SendResult:
        if self.clock.now() < self.down_until:
            error = FAILURES[self.failures % len(FAILURES)]
            self.failures += 1
            if error.code == "timeout" and self.failures % 2 == 1:
                self.inner.send(message)  # accepted, but the answer never arrived
            raise error
        return self.inner.send(message)

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        return self.inner.find_sent(to=to, body=body, since=since)


def test_messages_wait_out_an_outage_and_go_out_exactly_once(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        ids = []
        for index in range(12):
            appointment = create_appointment(session, start_at=local_at(7, 9, 30))
            ids.append(
                create_message(
                    session,
                    appointment=appointment,
                    to_number=f"+4477009001{index:02d}",
                    body=f"Reminder {index}",
                ).id
            )
    clock = FixedClock(DAYTIME)
    provider = FlakyProvider(
        clock, down_until=DAYTIME + timedelta(minutes=10), inner=FakeSender(clock=clock)
    )
    fast = settings.model_copy(update={"sms_send_rate_per_second": 0.0})
    dispatcher = Dispatcher(
        database, fast, provider, worker_id="outage", clock=clock, rng=random.Random(3)
    )
    worker = Worker(
        database, fast, jobs=[], dispatch=lambda: dispatcher.run_once().submitted, clock=clock
    )

    during = 0
    while clock.now() < provider.down_until:
        during += worker.tick().dispatched
        clock.advance(seconds=30)
    for _ in range(40):  # after the outage: retries come due with backoff
        worker.tick()
        clock.advance(minutes=2)

    assert during == 0
    assert provider.failures >= len(ids)
    with database.unit_of_work() as session:
        states = Counter(session.scalars(select(SmsMessage.state).where(SmsMessage.id.in_(ids))))
    assert states == Counter({"submitted": len(ids)})
    sent_per_number = Counter(record.message.to for record in provider.inner.sent)
    assert len(sent_per_number) == len(ids)
    assert set(sent_per_number.values()) == {1}, sent_per_number
