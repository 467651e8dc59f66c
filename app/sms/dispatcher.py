"""The outbox dispatcher: claims due messages, sends them through an `SmsSender`, records results.

Delivery guarantee (also in the README). Every message in `sms_messages` is submitted to the
provider at most once per claim and is never lost:

1. A dispatcher claims a batch in its own committed transaction (`state = claimed`, a lease
   `lease_until`, `attempts + 1`). On PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so
   several dispatchers never claim the same row; on SQLite `BEGIN IMMEDIATE` serialises claims
   (run one dispatcher there).
2. Only after that commit does it call the provider, passing a status-callback URL that
   carries the message's idempotency key. Errors are committed at once; the SIDs of a batch
   are committed together at the end of the batch (one transaction instead of one per
   message; a crash before that commit is covered by step 3).
3. A dispatcher killed between 1 and the end of 2 leaves the message `claimed`. After the lease
   expires any dispatcher reconciles it: if a status callback already re-attached the SID (via
   the key), it is submitted; otherwise the dispatcher asks the provider whether a message with
   that recipient and text was accepted since the claim (`SmsSender.find_sent`), and records
   that SID; only when the provider has no such message is it queued again.

So, as far as the service can tell, each message is sent exactly once and none is lost, on the
conditions that a lease outlasts one batch, and that the provider lists an accepted message by
the time the lease expires. Twilio filters its list by the date a message was sent, so a message
Twilio accepted but still held in its own queue when the lease ran out is not found and would
be sent a second time (never lost); the lease (default 120 s) bounds that window. The console
demo provider cannot be asked, so after a crash there it may write a message twice.

Retries: 429, 20429, 5xx and timeouts back off exponentially with jitter up to
`sms_max_attempts`; other errors are permanent. After a timeout or a 5xx the provider may have
accepted the message even though the answer was lost, so the retry first asks the provider
(`find_sent`) and only sends when it has no such message. 21211 marks the mobile number
invalid and opens a data-quality task; 21610 marks the patient opted out. Nothing is claimed
in quiet hours.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentChange
from app.bookings.tables import OPEN_STATUSES, BookingRequest
from app.clock import SYSTEM_CLOCK, Clock
from app.db.dialect import skip_locked
from app.db.session import Database
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN
from app.settings import Settings
from app.sms.providers import (
    INVALID_TO_NUMBER,
    UNSUBSCRIBED,
    OutgoingSms,
    SendError,
    SmsSender,
)
from app.sms.repository import status_rank, status_rank_sql
from app.sms.tables import MessageKind, OutboxState, SmsMessage
from app.tasks import service as tasks_service

logger = logging.getLogger("navigator.sms.dispatch")


def in_quiet_hours(moment: datetime, settings: Settings) -> bool:
    """Whether `moment` falls in the no-send window, judged on the trust's local clock."""
    local = settings.calendar.local(moment).time()
    start, end = settings.sms_quiet_hours_start, settings.sms_quiet_hours_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def retry_delay(attempts: int, settings: Settings, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(
        settings.sms_retry_max_seconds, settings.sms_retry_base_seconds * 2 ** (attempts - 1)
    )
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def status_callback_url(settings: Settings, idempotency_key: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/webhooks/twilio/status?key={idempotency_key}"


@dataclass
class DispatchSummary:
    submitted: int = 0
    retried: int = 0
    failed: int = 0
    reconciled_found: int = 0
    reconciled_requeued: int = 0
    # Accepted, but answered with a SID another message already holds: kept without it.
    duplicate_sids: int = 0
    # Reminders withdrawn before sending: the appointment was cancelled, moved, past or asked
    # to be moved (see `withdraw_stale_reminders`).
    withdrawn_stale: int = 0
    quiet_hours: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def human(self) -> str:
        if self.quiet_hours and not self.submitted:
            return "Quiet hours: nothing sent."
        return (
            f"{self.submitted} sent, {self.retried} to retry, {self.failed} failed; "
            f"reconciled {self.reconciled_found} found at the provider and "
            f"{self.reconciled_requeued} queued again."
        )


# Errors after which the provider may have accepted the message anyway (the answer was lost):
# the next attempt asks the provider first instead of sending blindly.
DUPLICATE_SID = "duplicate_sid"
AMBIGUOUS_ERRORS = frozenset({"timeout", "500", "502", "503", "504", "20500", "20503"})


@dataclass(frozen=True)
class _Claimed:
    id: int
    idempotency_key: str
    to_number: str
    body: str
    attempts: int
    patient_id: int
    error_code: str | None
    created_at: datetime


STALE_REASONS = ("cancelled", "past", "moved", "requested")


def withdraw_stale_reminders(
    session: Session, message_ids: list[int], *, now: datetime
) -> dict[int, str]:
    """Re-check, in the claim's transaction, every reminder about to be sent: its appointment
    must still be booked (attendance code 0), in the future, not moved since the text was
    written (no start-time change recorded after it), and not the subject of an open rebook or
    cancel request. Any other reminder is withdrawn (state `cancelled`, the reason in
    `error_code`) and gives up its offset's place, so the next scheduling writes a fresh
    reminder for a moved appointment's new time. Returns {message id: reason}."""
    rows = session.execute(
        select(
            SmsMessage.id,
            SmsMessage.created_at,
            Appointment.id.label("appointment_id"),
            Appointment.attendance_code,
            Appointment.start_at,
        )
        .join(Appointment, Appointment.id == SmsMessage.appointment_id)
        .where(SmsMessage.id.in_(message_ids), SmsMessage.kind == MessageKind.REMINDER)
    ).all()
    if not rows:
        return {}
    appointment_ids = [row.appointment_id for row in rows]
    moved_after = dict(
        session.execute(
            select(AppointmentChange.appointment_id, func.max(AppointmentChange.changed_at))
            .where(
                AppointmentChange.appointment_id.in_(appointment_ids),
                AppointmentChange.field == "start_at",
            )
            .group_by(AppointmentChange.appointment_id)
        ).all()
    )
    requested = set(
        session.scalars(
            select(BookingRequest.appointment_id).where(
                BookingRequest.appointment_id.in_(appointment_ids),
                BookingRequest.status.in_(OPEN_STATUSES),
            )
        )
    )
    stale: dict[int, str] = {}
    for row in rows:
        changed = moved_after.get(row.appointment_id)
        if row.attendance_code != NOT_YET_KNOWN:
            stale[row.id] = "cancelled"
        elif row.start_at <= now:
            stale[row.id] = "past"
        elif changed is not None and changed >= row.created_at:
            stale[row.id] = "moved"
        elif row.appointment_id in requested:
            stale[row.id] = "requested"
    for reason in STALE_REASONS:
        chosen = [message_id for message_id, why in stale.items() if why == reason]
        if chosen:
            session.execute(
                update(SmsMessage)
                .where(SmsMessage.id.in_(chosen))
                .values(
                    state=OutboxState.CANCELLED,
                    error_code=reason,
                    offset_days=None,
                    updated_at=now,
                )
            )
    if stale:
        logger.info("withdrew %d stale reminders before sending", len(stale))
    return stale


class Dispatcher:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        sender: SmsSender,
        *,
        worker_id: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.sender = sender
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock
        self.rng = rng or random.Random()
        self._next_send = 0.0
        self._unreachable_patients: set[int] = set()

    # -- one pass ---------------------------------------------------------------------------

    def run_once(self, *, on_progress: Callable[[int], None] | None = None) -> DispatchSummary:
        """Send everything due now, then return (retries due later are left for later)."""
        summary = DispatchSummary()
        while True:
            if in_quiet_hours(self.clock.now(), self.settings):
                summary.quiet_hours = True
                break
            self.reconcile(summary)
            batch = self.claim(summary)
            if not batch:
                break
            accepted: list[tuple[int, str, str]] = []
            try:
                for message in batch:
                    if message.patient_id in self._unreachable_patients:
                        summary.failed += 1  # stopped with its patient's permanent error
                        continue
                    self._pace()
                    result = self.send_one(message, summary)
                    if result is not None:
                        accepted.append((message.id, *result))
                    if on_progress:
                        on_progress(1)
            finally:
                # One transaction per batch for the SIDs: a crash before it commits leaves
                # these claimed, and reconciliation finds them at the provider.
                self._record_submitted(accepted, summary)
        return summary

    def run_forever(self, *, should_stop: Callable[[], bool] = lambda: False) -> None:
        while not should_stop():
            summary = self.run_once()
            if not summary.submitted and not summary.retried:
                time.sleep(self.settings.sms_poll_seconds)

    # -- steps ------------------------------------------------------------------------------

    def claim(self, summary: DispatchSummary | None = None) -> list[_Claimed]:
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            while True:
                ids = list(
                    session.scalars(
                        skip_locked(
                            select(SmsMessage.id)
                            .where(
                                SmsMessage.state == OutboxState.PENDING,
                                SmsMessage.next_attempt_at <= now,
                            )
                            .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
                            .limit(self.settings.sms_batch_size)
                        )
                    )
                )
                if not ids:
                    return []
                stale = withdraw_stale_reminders(session, ids, now=now)
                if summary is not None:
                    summary.withdrawn_stale += len(stale)
                ids = [message_id for message_id in ids if message_id not in stale]
                if ids:
                    break
            rows = session.execute(
                update(SmsMessage)
                .where(SmsMessage.id.in_(ids))
                .values(
                    state=OutboxState.CLAIMED,
                    claimed_by=self.worker_id,
                    claimed_at=now,
                    lease_until=now + timedelta(seconds=self.settings.sms_lease_seconds),
                    attempts=SmsMessage.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    SmsMessage.id,
                    SmsMessage.idempotency_key,
                    SmsMessage.to_number,
                    SmsMessage.body,
                    SmsMessage.attempts,
                    SmsMessage.patient_id,
                    SmsMessage.error_code,
                    SmsMessage.created_at,
                ),
                execution_options={"synchronize_session": False},
            ).all()
        return sorted((_Claimed(**row._mapping) for row in rows), key=lambda c: c.id)

    def send_one(self, message: _Claimed, summary: DispatchSummary) -> tuple[str, str] | None:
        """Send one claimed message; returns (SID, status) when the provider has it."""
        outgoing = OutgoingSms(
            idempotency_key=message.idempotency_key,
            to=message.to_number,
            body=message.body,
            status_callback_url=status_callback_url(self.settings, message.idempotency_key),
        )
        if message.error_code in AMBIGUOUS_ERRORS:
            since = message.created_at - timedelta(minutes=5)
            found = self.sender.find_sent(to=message.to_number, body=message.body, since=since)
            if found is not None:
                summary.reconciled_found += 1
                return found, "queued"
        try:
            result = self.sender.send(outgoing)
        except SendError as error:
            self._record_error(message, error, summary)
            return None
        summary.submitted += 1
        return result.sid, result.status

    def _record_submitted(
        self, accepted: list[tuple[int, str, str]], summary: DispatchSummary
    ) -> None:
        """Record a batch's SIDs in one statement; when the provider answered two sends with
        one SID (the column is unique), record row by row and keep each duplicate submitted
        without the SID, error code `duplicate_sid`, instead of failing the whole batch."""
        if not accepted:
            return
        table = cast(Table, SmsMessage.__table__)
        current = table.c.delivery_status
        now = self.clock.now()
        statement = (
            table.update()
            .where(
                table.c.id == bindparam("b_id"),
                table.c.state == OutboxState.CLAIMED,
                table.c.claimed_by == self.worker_id,
            )
            .values(
                state=OutboxState.SUBMITTED,
                provider_sid=bindparam("b_sid"),
                submitted_at=now,
                lease_until=None,
                delivery_status=case(
                    (status_rank_sql(current) < bindparam("b_rank"), bindparam("b_status")),
                    else_=current,
                ),
                updated_at=now,
            )
        )
        rows = [
            {"b_id": mid, "b_sid": sid, "b_status": status, "b_rank": status_rank(status)}
            for mid, sid, status in accepted
        ]
        with self.database.unit_of_work() as session:
            try:
                with session.begin_nested():
                    session.execute(statement, rows)
                return
            except IntegrityError:
                pass
            for row in rows:
                try:
                    with session.begin_nested():
                        session.execute(statement, row)
                except IntegrityError:
                    session.execute(
                        update(SmsMessage)
                        .where(
                            SmsMessage.id == row["b_id"],
                            SmsMessage.state == OutboxState.CLAIMED,
                            SmsMessage.claimed_by == self.worker_id,
                        )
                        .values(
                            state=OutboxState.SUBMITTED,
                            error_code=DUPLICATE_SID,
                            submitted_at=now,
                            lease_until=None,
                            updated_at=now,
                        ),
                        execution_options={"synchronize_session": False},
                    )
                    summary.duplicate_sids += 1
                    logger.warning("sms duplicate provider sid for message_id=%s", row["b_id"])

    def reconcile(self, summary: DispatchSummary) -> None:
        """Settle messages whose dispatcher's lease ran out while they were claimed."""
        now = self.clock.now()
        with self.database.unit_of_work() as session:
            expired = (
                select(
                    SmsMessage.id,
                    SmsMessage.to_number,
                    SmsMessage.body,
                    SmsMessage.claimed_at,
                    SmsMessage.provider_sid,
                )
                .where(SmsMessage.state == OutboxState.CLAIMED, SmsMessage.lease_until < now)
                .order_by(SmsMessage.id)
                .limit(self.settings.sms_batch_size)
            )
            stale = session.execute(skip_locked(cast("Select[Any]", expired))).all()
            for message_id, to_number, body, claimed_at, known_sid in stale:
                sid = known_sid
                if sid is None:
                    since = (claimed_at or now) - timedelta(minutes=5)
                    sid = self.sender.find_sent(to=to_number, body=body, since=since)
                if sid is not None:
                    self._mark_submitted(session, message_id, sid, "queued", claimed=False)
                    summary.reconciled_found += 1
                else:
                    session.execute(
                        update(SmsMessage)
                        .where(SmsMessage.id == message_id)
                        .values(
                            state=OutboxState.PENDING,
                            lease_until=None,
                            next_attempt_at=now,
                            updated_at=now,
                        )
                    )
                    summary.reconciled_requeued += 1
            if stale:
                logger.info("sms reconciled %d stale claims", len(stale))

    # -- helpers ----------------------------------------------------------------------------

    def _mark_submitted(
        self, session: Session, message_id: int, sid: str, status: str, *, claimed: bool
    ) -> None:
        conditions = [SmsMessage.id == message_id, SmsMessage.state == OutboxState.CLAIMED]
        if claimed:
            conditions.append(SmsMessage.claimed_by == self.worker_id)
        current = SmsMessage.delivery_status
        now = self.clock.now()
        session.execute(
            update(SmsMessage)
            .where(*conditions)
            .values(
                state=OutboxState.SUBMITTED,
                provider_sid=sid,
                submitted_at=now,
                lease_until=None,
                delivery_status=case(
                    (status_rank_sql(current) < status_rank(status), status), else_=current
                ),
                updated_at=now,
            ),
            execution_options={"synchronize_session": False},
        )

    def _record_error(self, message: _Claimed, error: SendError, summary: DispatchSummary) -> None:
        now = self.clock.now()
        give_up = not error.retryable or message.attempts >= self.settings.sms_max_attempts
        with self.database.unit_of_work() as session:
            values: dict[str, Any] = {
                "error_code": error.code,
                "lease_until": None,
                "updated_at": now,
            }
            if give_up:
                values["state"] = OutboxState.FAILED
            else:
                delay = retry_delay(message.attempts, self.settings, self.rng)
                values["state"] = OutboxState.PENDING
                values["next_attempt_at"] = now + timedelta(seconds=delay)
            session.execute(
                update(SmsMessage)
                .where(
                    SmsMessage.id == message.id,
                    SmsMessage.state == OutboxState.CLAIMED,
                    SmsMessage.claimed_by == self.worker_id,
                )
                .values(**values),
                execution_options={"synchronize_session": False},
            )
            if error.code in (INVALID_TO_NUMBER, UNSUBSCRIBED) and not error.retryable:
                self._apply_permanent_error(session, message, error.code, now)
        if give_up:
            summary.failed += 1
        else:
            summary.retried += 1
        logger.info(
            "sms send error message_id=%s code=%s retryable=%s attempts=%d",
            message.id,
            error.code,
            error.retryable,
            message.attempts,
        )

    def _apply_permanent_error(
        self, session: Session, message: _Claimed, code: str, now: datetime
    ) -> None:
        patient_values: dict[str, Any] = (
            {"mobile_phone_invalid": True} if code == INVALID_TO_NUMBER else {"sms_opt_out": True}
        )
        session.execute(
            update(Patient)
            .where(Patient.id == message.patient_id)
            .values(**patient_values, updated_at=now)
        )
        # Other queued messages to this patient would fail the same way: stop them now,
        # including any this dispatcher has claimed in the same batch.
        self._unreachable_patients.add(message.patient_id)
        session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.patient_id == message.patient_id,
                (SmsMessage.state == OutboxState.PENDING)
                | (
                    (SmsMessage.state == OutboxState.CLAIMED)
                    & (SmsMessage.claimed_by == self.worker_id)
                ),
            )
            .values(state=OutboxState.FAILED, error_code=code, updated_at=now),
            execution_options={"synchronize_session": False},
        )
        if code == INVALID_TO_NUMBER:
            # One task per patient per day, however many of their messages failed.
            tasks_service.open_wrong_number_task(
                session,
                patient_id=message.patient_id,
                day=self.settings.calendar.today(now),
                detail="Twilio rejected the mobile number as invalid (error 21211). "
                "Check the number with the patient and correct it.",
                now=now,
            )

    def _pace(self) -> None:
        rate = self.settings.sms_send_rate_per_second
        if rate <= 0:
            return
        now = time.monotonic()
        if self._next_send > now:
            time.sleep(self._next_send - now)
            now = self._next_send
        self._next_send = now + 1 / rate
