"""The dispatcher with the recording fake: sending, quiet hours, retries, permanent errors,
reconciliation of stale claims, and the late callback that re-attaches a SID."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.db.session import Database
from app.patients.tables import Patient
from app.settings import Settings
from app.sms import service
from app.sms.dispatcher import Dispatcher, in_quiet_hours, retry_delay
from app.sms.providers import FakeSender, OutgoingSms, SendError
from app.sms.tables import SmsMessage
from app.tasks.tables import NavigatorTask
from tests.factories import create_patient
from tests.sms.helpers import DAYTIME, create_message


def make_dispatcher(
    database: Database, settings: Settings, sender: FakeSender, now: list[datetime]
) -> Dispatcher:
    fast = settings.model_copy(update={"sms_send_rate_per_second": 0.0})
    return Dispatcher(
        database, fast, sender, worker_id="test-1", clock=lambda: now[0], rng=random.Random(1)
    )


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
    summary = make_dispatcher(database, settings, sender, [DAYTIME]).run_once()
    again = make_dispatcher(database, settings, sender, [DAYTIME]).run_once()

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
    # 07:30 UTC is 07:30 in London in winter (quiet) but 08:30 in summer (allowed).
    winter = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert in_quiet_hours(winter, settings)
    assert not in_quiet_hours(summer, settings)
    assert in_quiet_hours(datetime(2026, 7, 1, 19, 30, tzinfo=UTC), settings)  # 20:30 BST

    summary = make_dispatcher(database, settings, sender, [winter]).run_once()
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
    now = [DAYTIME]
    dispatcher = make_dispatcher(database, settings, sender, now)

    assert dispatcher.run_once().retried == 1
    first = load(database, message_id)
    assert first.state == "pending"
    assert first.error_code == "20429"
    delay = (first.next_attempt_at - DAYTIME).total_seconds()
    assert 15 <= delay <= 30  # base 30 s, equal jitter: half fixed, half random

    assert dispatcher.run_once().submitted == 0  # not due yet
    now[0] = first.next_attempt_at
    assert dispatcher.run_once().retried == 1
    second = load(database, message_id)
    assert 30 <= (second.next_attempt_at - now[0]).total_seconds() <= 60  # doubled

    now[0] = second.next_attempt_at
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
    now = [DAYTIME]
    dispatcher = make_dispatcher(database, settings, sender, now)
    for _ in range(settings.sms_max_attempts):
        dispatcher.run_once()
        now[0] += timedelta(hours=1)
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

    summary = make_dispatcher(database, settings, sender, [DAYTIME]).run_once()

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


def test_unsubscribed_recipient_marks_the_patient_opted_out(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        patient = create_patient(session, mobile_phone="+447700900610")
        message = create_message(session, to_number="+447700900610")
        message.patient_id = patient.id
    sender = FakeSender()
    sender.fail_next("+447700900610", SendError("unsub", code="21610", retryable=False))
    make_dispatcher(database, settings, sender, [DAYTIME]).run_once()
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
    now = [DAYTIME]
    sender = FakeSender(clock=lambda: now[0])
    crashed = make_dispatcher(database, settings, sender, now)
    claimed = crashed.claim()
    sender.send(  # the provider got it; the crashed process never wrote the SID
        service_outgoing(claimed[0].idempotency_key, claimed[0].to_number, claimed[0].body)
    )
    still_leased = make_dispatcher(database, settings, sender, now).run_once()
    assert still_leased.submitted == 0
    assert load(database, message_id).state == "claimed"

    now[0] += timedelta(seconds=settings.sms_lease_seconds + 1)
    summary = make_dispatcher(database, settings, sender, now).run_once()

    assert summary.reconciled_found == 1
    assert len(sender.sent) == 1
    message = load(database, message_id)
    assert (message.state, message.provider_sid) == ("submitted", sender.sent[0].sid)


def test_a_stale_claim_the_provider_never_saw_is_sent_after_the_lease(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session).id
    sender = FakeSender()
    now = [DAYTIME]
    make_dispatcher(database, settings, sender, now).claim()  # then the process dies
    now[0] += timedelta(seconds=settings.sms_lease_seconds + 1)
    summary = make_dispatcher(database, settings, sender, now).run_once()
    assert (summary.reconciled_requeued, summary.submitted) == (1, 1)
    assert len(sender.sent) == 1
    assert load(database, message_id).attempts == 2


def test_a_late_status_callback_reattaches_the_sid_by_idempotency_key(
    database: Database, settings: Settings
) -> None:
    with database.unit_of_work() as session:
        message_id = create_message(session).id
    sender = FakeSender()
    now = [DAYTIME]
    claimed = make_dispatcher(database, settings, sender, now).claim()[0]
    with database.unit_of_work() as session:
        service.record_status(
            session,
            sid="SM" + "1" * 32,
            status="sent",
            error_code=None,
            idempotency_key=claimed.idempotency_key,
        )
    now[0] += timedelta(seconds=settings.sms_lease_seconds + 1)
    make_dispatcher(database, settings, sender, now).run_once()
    message = load(database, message_id)
    assert (message.state, message.provider_sid, message.delivery_status) == (
        "submitted",
        "SM" + "1" * 32,
        "sent",
    )
    assert sender.sent == []


def service_outgoing(key: str, to: str, body: str) -> OutgoingSms:
    return OutgoingSms(key, to, body, f"https://navigator.test/webhooks/twilio/status?key={key}")


def test_schedule_then_dispatch_end_to_end(database: Database, settings: Settings) -> None:
    from tests.factories import create_appointment

    with database.unit_of_work() as session:
        create_appointment(session, start_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        service.schedule_reminders(session, settings, on_date=date(2026, 11, 24))
    sender = FakeSender()
    assert make_dispatcher(database, settings, sender, [DAYTIME]).run_once().submitted == 1
    assert "Tue 1 Dec 2026 at 09:30" in sender.sent[0].message.body
