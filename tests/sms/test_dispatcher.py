"""The dispatcher with the recording fake: sending, quiet hours, retries, permanent errors,
reconciliation of stale claims, and the late callback that re-attaches a SID."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time

from sqlalchemy import select

from app.clock import FixedClock
from app.db.session import Database
from app.patients.tables import Patient
from app.settings import Settings
from app.sms import service
from app.sms.dispatcher import Dispatcher, in_quiet_hours, retry_delay
from app.sms.providers import FakeSender, OutgoingSms, SendError, SendResult
from app.sms.tables import SmsMessage
from app.tasks.tables import NavigatorTask
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment, create_patient
from tests.sms.helpers import DAYTIME, create_message, local_at, spoken


def make_dispatcher(
    database: Database, settings: Settings, sender: FakeSender, clock: FixedClock
) -> Dispatcher:
    fast = settings.model_copy(update={"sms_send_rate_per_second": 0.0})
    return Dispatcher(database, fast, sender, worker_id="test-1", clock=clock, rng=random.Random(1))


def daytime() -> FixedClock:
    return FixedClock(DAYTIME)


def load(database: Database, message_id: int) -> SmsMessage:
    with database.unit_of_work() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        return message


def test_due_messages_are_sent_once_with_a_callback_url_carrying_the_key(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        ids = [create_message(session).id for _ in range(3)]
    sender = FakeSender()
    summary = make_dispatcher(database, settings, sender, daytime()).run_once()
    again = make_dispatcher(database, settings, sender, daytime()).run_once()

    assert summary.submitted == 3
    assert again.submitted == 0
    assert len(sender.sent) == 3
    for message_id, record in zip(ids, sender.sent, strict=True):
        message = load(database, message_id)
        assert message.state == "submitted"
        assert message.provider_sid == record.sid
        assert record.message.status_callback_url == (
            f"https://navigator.test/webhooks/twilio/status?key={message.idempotency_key}"
        )


def test_nothing_is_sent_in_quiet_hours_judged_on_london_time(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        create_message(session)
    sender = FakeSender()
    # 07:30 UTC is 07:30 in London in winter (quiet) but 08:30 in summer (allowed). The
    # rule itself is checked on fixed dates either side of the clock change.
    winter = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert in_quiet_hours(winter, settings)
    assert not in_quiet_hours(summer, settings)
    assert in_quiet_hours(datetime(2026, 7, 1, 19, 30, tzinfo=UTC), settings)  # 20:30 BST

    early = FixedClock(CALENDAR.at(TODAY, time(7, 30)))  # quiet in any season
    summary = make_dispatcher(database, settings, sender, early).run_once()
    assert summary.quiet_hours
    assert sender.sent == []


def test_transient_errors_back_off_with_jitter_then_succeed(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session, to_number="+447700900429").id
    sender = FakeSender()
    sender.fail_next(
        "+447700900429",
        SendError("429", code="20429", retryable=True),
        SendError("500", code="500", retryable=True),
    )
    clock = daytime()
    dispatcher = make_dispatcher(database, settings, sender, clock)

    assert dispatcher.run_once().retried == 1
    first = load(database, message_id)
    assert first.state == "pending"
    assert first.error_code == "20429"
    delay = (first.next_attempt_at - DAYTIME).total_seconds()
    assert 15 <= delay <= 30  # base 30 s, equal jitter: half fixed, half random

    assert dispatcher.run_once().submitted == 0  # not due yet
    clock.set(first.next_attempt_at)
    assert dispatcher.run_once().retried == 1
    second = load(database, message_id)
    assert 30 <= (second.next_attempt_at - clock.now()).total_seconds() <= 60  # doubled

    clock.set(second.next_attempt_at)
    assert dispatcher.run_once().submitted == 1
    assert load(database, message_id).attempts == 3


def test_backoff_is_capped(settings: Settings) -> None:
    rng = random.Random(3)
    delays = [retry_delay(attempt, settings, rng) for attempt in range(1, 20)]
    assert max(delays) <= settings.sms_retry_max_seconds
    assert delays[-1] >= settings.sms_retry_max_seconds / 2


def test_retries_stop_after_the_maximum_attempts(database: Database, settings: Settings) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session, to_number="+447700900500").id
    sender = FakeSender()
    sender.fail_next("+447700900500", *[SendError("5xx", code="500", retryable=True)] * 10)
    clock = daytime()
    dispatcher = make_dispatcher(database, settings, sender, clock)
    for _ in range(settings.sms_max_attempts):
        dispatcher.run_once()
        clock.advance(hours=1)
    message = load(database, message_id)
    assert message.state == "failed"
    assert message.attempts == settings.sms_max_attempts


def test_invalid_number_marks_the_mobile_invalid_and_opens_one_data_quality_task(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        patient = create_patient(session, mobile_phone="+447700900211")
        first = create_message(session, to_number="+447700900211")
        first.patient_id = patient.id
        second = create_message(session, to_number="+447700900211")
        second.patient_id = patient.id
        ids = (first.id, second.id)
    sender = FakeSender()
    sender.fail_next("+447700900211", SendError("bad", code="21211", retryable=False))

    summary = make_dispatcher(database, settings, sender, daytime()).run_once()

    assert summary.failed == 2  # the other message to the same number is stopped too
    assert sender.sent == []
    with database.unit_of_work() as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        assert stored.mobile_phone_invalid
        assert not stored.has_usable_mobile
        tasks = list(session.scalars(select(NavigatorTask)))
        assert [(t.kind, t.patient_id, t.status) for t in tasks] == [
            ("data_quality", patient.id, "open")
        ]
        states = [session.get(SmsMessage, i).state for i in ids]  # type: ignore[union-attr]
        assert states == ["failed", "failed"]


def test_invalid_numbers_found_in_separate_runs_the_same_day_make_one_task_per_patient(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        patient = create_patient(session, mobile_phone="+447700900212")
        first = create_message(session, to_number="+447700900212")
        first.patient_id = patient.id
    sender = FakeSender()
    clock = daytime()
    sender.fail_next("+447700900212", SendError("bad", code="21211", retryable=False))
    make_dispatcher(database, settings, sender, clock).run_once()
    # A later message (queued before the number was flagged) fails the same way an hour on.
    with database.unit_of_work() as session:
        second = create_message(session, to_number="+447700900212")
        second.patient_id = patient.id
        second.next_attempt_at = DAYTIME
        session.flush()
        second_id = second.id
    clock.advance(hours=1)
    sender.fail_next("+447700900212", SendError("bad", code="21211", retryable=False))
    make_dispatcher(database, settings, sender, clock).run_once()

    with database.unit_of_work() as session:
        tasks = list(session.scalars(select(NavigatorTask)))
        assert [(t.kind, t.patient_id, t.status) for t in tasks] == [
            ("data_quality", patient.id, "open")
        ]
        assert "+44" not in tasks[0].detail
        failed = session.get_one(SmsMessage, second_id)
        assert (failed.state, failed.error_code) == ("failed", "21211")


def test_unsubscribed_recipient_marks_the_patient_opted_out(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        patient = create_patient(session, mobile_phone="+447700900610")
        message = create_message(session, to_number="+447700900610")
        message.patient_id = patient.id
    sender = FakeSender()
    sender.fail_next("+447700900610", SendError("unsub", code="21610", retryable=False))
    make_dispatcher(database, settings, sender, daytime()).run_once()
    with database.unit_of_work() as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None
        assert stored.sms_opt_out
        assert session.scalars(select(NavigatorTask)).all() == []


def test_a_stale_claim_found_at_the_provider_is_not_sent_again(
    database: Database, settings: Settings
) -> None:
    """A dispatcher died after the provider accepted the message but before recording it."""
    with database.unit_of_work() as session:
        message_id = create_message(session).id
    clock = daytime()
    sender = FakeSender(clock=clock)
    crashed = make_dispatcher(database, settings, sender, clock)
    claimed = crashed.claim()
    sender.send(  # the provider got it; the crashed process never wrote the SID
        service_outgoing(claimed[0].idempotency_key, claimed[0].to_number, claimed[0].body)
    )
    still_leased = make_dispatcher(database, settings, sender, clock).run_once()
    assert still_leased.submitted == 0
    assert load(database, message_id).state == "claimed"

    clock.advance(seconds=settings.sms_lease_seconds + 1)
    summary = make_dispatcher(database, settings, sender, clock).run_once()

    assert summary.reconciled_found == 1
    assert len(sender.sent) == 1
    message = load(database, message_id)
    assert (message.state, message.provider_sid) == ("submitted", sender.sent[0].sid)


def test_a_stale_claim_the_provider_never_saw_is_sent_after_the_lease(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session).id
    clock = daytime()
    sender = FakeSender(clock=clock)
    make_dispatcher(database, settings, sender, clock).claim()  # then the process dies
    clock.advance(seconds=settings.sms_lease_seconds + 1)
    summary = make_dispatcher(database, settings, sender, clock).run_once()
    assert (summary.reconciled_requeued, summary.submitted) == (1, 1)
    assert len(sender.sent) == 1
    assert load(database, message_id).attempts == 2


def test_a_late_status_callback_reattaches_the_sid_by_idempotency_key(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session).id
    clock = daytime()
    sender = FakeSender(clock=clock)
    claimed = make_dispatcher(database, settings, sender, clock).claim()[0]
    with database.unit_of_work() as session:
        service.record_status(
            session,
            sid="SM" + "1" * 32,
            status="sent",
            error_code=None,
            idempotency_key=claimed.idempotency_key,
            now=clock.now(),
        )
    clock.advance(seconds=settings.sms_lease_seconds + 1)
    make_dispatcher(database, settings, sender, clock).run_once()
    message = load(database, message_id)
    assert (message.state, message.provider_sid, message.delivery_status) == (
        "submitted",
        "SM" + "1" * 32,
        "sent",
    )
    assert sender.sent == []


def service_outgoing(key: str, to: str, body: str) -> OutgoingSms:
    return OutgoingSms(key, to, body, f"https://navigator.test/webhooks/twilio/status?key={key}")


def test_schedule_then_dispatch_end_to_end(
    database: Database, settings: Settings, clock: FixedClock
) -> None:
    clock.set(DAYTIME)
    start = local_at(7, 9, 30)
    with database.unit_of_work() as session:
        create_appointment(session, start_at=start)
        service.schedule_reminders(session, settings, on_date=TODAY, now=clock.now())
    sender = FakeSender(clock=clock)
    assert make_dispatcher(database, settings, sender, clock).run_once().submitted == 1
    assert spoken(start) in sender.sent[0].message.body
    assert sender.sent[0].at == clock.now()


class SameSidSender(FakeSender):
    """A provider that answers every send with the same message SID."""

    def send(self, message: OutgoingSms) -> SendResult:
        super().send(message)
        return SendResult(sid="SM" + "9" * 32, status="queued")


def test_a_duplicate_provider_sid_never_crashes_a_batch(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        ids = [create_message(session).id for _ in range(3)]
    sender = SameSidSender()
    summary = make_dispatcher(database, settings, sender, daytime()).run_once()

    assert (summary.submitted, summary.duplicate_sids) == (3, 2)
    assert len(sender.sent) == 3  # each sent once, none queued again
    stored = [load(database, message_id) for message_id in ids]
    assert [m.state for m in stored] == ["submitted"] * 3
    assert sorted((m.provider_sid or "", m.error_code or "") for m in stored) == [
        ("", "duplicate_sid"),
        ("", "duplicate_sid"),
        ("SM" + "9" * 32, ""),
    ]
