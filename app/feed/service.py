"""The feed inbox: store each message raw, apply it through the import service, decide the ACK.

Both entry points run inside the caller's transaction; the caller commits and only then
sends the ACKs returned. `FeedProcessor.handle_batch` stores and applies the messages that
queued together, set-based (`app/feed/batch.py`), and raises when any of them cannot be
applied: the caller rolls back and gives each message a transaction of its own with
`FeedProcessor.handle`, which stores the message in `feed_messages` first and applies it in a
savepoint, so that a message which cannot be applied (AE) rolls back alone and stays stored
as a dead letter. Nothing from a message body is logged: log lines carry control ids,
message types and ACK codes only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, func, insert, select, update
from sqlalchemy.orm import Session

from app.bookings import service as bookings_service
from app.db.dialect import bulk_insert, one_of_strings_bound
from app.errors import ConflictError, DomainError, NotFoundError
from app.feed.apply import apply_message
from app.feed.batch import apply_messages
from app.feed.messages import PATIENT_EVENTS, MessageRejectedError, read_message
from app.feed.messages import FeedMessage as Message
from app.feed.tables import DEAD_LETTER_STATUSES, FeedMessage, FeedStatus
from app.imports.service import RowRejectedError, RowWriter
from app.settings import Settings

logger = logging.getLogger(__name__)

RAW_KEPT_WHEN_OVERSIZED = 65_536
# The extract's column names as the HL7 fields they come from, for AE texts.
_FIELD_NAMES = {
    "appointment_id": "SCH-2 (filler appointment id)",
    "patient_id": "PID-3 (patient id)",
    "clinic_code": "AIL-3 (clinic)",
    "specialty_code": "PV1-10 (treatment function)",
    "site": "AIL-3.4 (site)",
    "booked_at": "MSH-7 (booked at)",
    "start_at": "SCH-11.4 (start)",
    "first_attendance": "SCH-8 (appointment type)",
    "attendance_code": "attendance code",
    "nhs_number": "PID-3 (NHS number)",
    "birth_date": "PID-7 (birth date)",
    "sex": "PID-8 (sex)",
    "ethnic_category": "PID-22 (ethnic group)",
    "preferred_language": "PID-15 (language)",
    "postcode": "PID-11.5 (postcode)",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    ack_code: str  # AA, AE or AR
    control_id: str | None
    text: str = ""
    duplicate: bool = False
    message_id: int | None = None


class FeedProcessor:
    """One per listener process (it keeps the import service's clinic cache)."""

    def __init__(self, settings: Settings) -> None:
        self.zone = ZoneInfo(settings.timezone)
        self.max_bytes = settings.feed_max_message_bytes
        self.writer = RowWriter(settings.timezone)
        self.settings = settings

    def forget(self) -> None:
        """After a rolled-back transaction: drop cached ids that may no longer exist."""
        self.writer.forget()

    def handle(self, session: Session, data: bytes, *, now: datetime) -> Outcome:
        try:
            message = read_message(data, zone=self.zone, max_bytes=self.max_bytes)
        except MessageRejectedError as rejected:
            message_id = self._store_rejected(session, data, rejected, now=now)
            logger.warning(
                "feed: rejected a message (AR), control id %s", rejected.control_id or "-"
            )
            return Outcome("AR", rejected.control_id, rejected.reason, message_id=message_id)
        stored = session.execute(
            select(FeedMessage.id, FeedMessage.status, FeedMessage.error).where(
                FeedMessage.control_id == message.control_id
            )
        ).first()
        if stored is not None:
            # A repeat (the sender missed our ACK): answer as before, apply nothing again.
            if stored.status == FeedStatus.ERROR:
                return Outcome("AE", message.control_id, stored.error or "", True, stored.id)
            return Outcome("AA", message.control_id, "", True, stored.id)
        message_id = session.execute(
            insert(FeedMessage)
            .values(
                control_id=message.control_id,
                message_type=str(message.event),
                status=FeedStatus.APPLIED,
                ack_code="AA",
                patient_key=message.patient_id[:64],
                appointment_key=(message.appointment.get("appointment_id") or None),
                raw=data.decode("utf-8"),
                size_bytes=len(data),
                attempts=1,
                received_at=now,
                processed_at=now,
            )
            .returning(FeedMessage.id)
        ).scalar_one()
        return self._apply_stored(session, message_id, message, now=now)

    def handle_batch(
        self, session: Session, frames: list[bytes], *, now: datetime
    ) -> list[Outcome]:
        """Store every frame and apply the new ones; raises (nothing to commit) when any message
        cannot be applied."""
        parsed: list[Message | MessageRejectedError] = []
        for data in frames:
            try:
                parsed.append(read_message(data, zone=self.zone, max_bytes=self.max_bytes))
            except MessageRejectedError as rejected:
                parsed.append(rejected)
        control_ids = [item.control_id for item in parsed if isinstance(item, Message)]
        earlier = self._stored_answers(session, control_ids)
        outcomes: list[Outcome] = []
        inbox: list[dict[str, Any]] = []
        fresh: list[Message] = []
        in_batch: set[str] = set()
        for data, item in zip(frames, parsed, strict=True):
            if isinstance(item, MessageRejectedError):
                inbox.append(_rejected_row(data, item, self.max_bytes, now))
                logger.warning(
                    "feed: rejected a message (AR), control id %s", item.control_id or "-"
                )
                outcomes.append(Outcome("AR", item.control_id, item.reason))
            elif item.control_id in earlier:
                # A repeat (the sender missed our ACK): answer as before, apply nothing again.
                outcomes.append(earlier[item.control_id])
            elif item.control_id in in_batch:
                # A repeat within the batch: the first is applied (or the batch fails as a whole).
                outcomes.append(Outcome("AA", item.control_id, "", True))
            else:
                in_batch.add(item.control_id)
                inbox.append(_stored_row(data, item, now))
                fresh.append(item)
                outcomes.append(Outcome("AA", item.control_id))
        # Stored first; the unique index on the control id refuses a second copy (the batch is
        # then rolled back and applied one message at a time).
        bulk_insert(session, FeedMessage, inbox)
        if fresh:
            apply_messages(session, fresh, self.writer, now=now)
        if any(message.event not in PATIENT_EVENTS for message in fresh):
            # A PAS booking or cancellation (or a merge, which moves appointments) may honour an
            # open rebook or cancel request: once per batch, as a file import does once per
            # file (it is safe to repeat). A registration or update alone cannot.
            bookings_service.reconcile(session, self.settings, now=now)
        return outcomes

    def _stored_answers(self, session: Session, control_ids: list[str]) -> dict[str, Outcome]:
        """The answer already given to each of these control ids (they are in the inbox)."""
        if not control_ids:
            return {}
        answers: dict[str, Outcome] = {}
        statement = _stored_answers_query(session.get_bind().dialect.name)
        for row in session.connection().execute(statement, {"keys": control_ids}):
            if row.status == FeedStatus.ERROR:
                answers[row.control_id] = Outcome("AE", row.control_id, row.error or "", True)
            else:
                answers[row.control_id] = Outcome("AA", row.control_id, "", True)
        return answers

    def replay(self, session: Session, message_id: int, *, now: datetime, user_id: int) -> Outcome:
        """Try a dead letter again (after the patient or appointment it needed arrived)."""
        row = session.get(FeedMessage, message_id)
        if row is None:
            raise NotFoundError("No such feed message.")
        if row.status not in DEAD_LETTER_STATUSES:
            raise ConflictError("Only a message that was not applied can be replayed.")
        data = row.raw.encode("utf-8")
        values: dict[str, Any] = {"attempts": row.attempts + 1, "processed_at": now}
        values["handled_by"] = user_id
        try:
            message = read_message(data, zone=self.zone, max_bytes=self.max_bytes)
        except MessageRejectedError as rejected:
            session.execute(
                update(FeedMessage)
                .where(FeedMessage.id == message_id)
                .values(**values, error=rejected.reason)
            )
            return Outcome("AR", rejected.control_id, rejected.reason, message_id=message_id)
        taken = session.execute(
            select(FeedMessage.id).where(
                FeedMessage.control_id == message.control_id, FeedMessage.id != message_id
            )
        ).first()
        if taken is not None:
            session.execute(
                update(FeedMessage)
                .where(FeedMessage.id == message_id)
                .values(
                    **values,
                    status=FeedStatus.DISMISSED,
                    error="a message with the same control id was received since",
                )
            )
            return Outcome("AA", message.control_id, "", True, message_id)
        session.execute(
            update(FeedMessage)
            .where(FeedMessage.id == message_id)
            .values(
                **values,
                control_id=message.control_id,
                message_type=str(message.event),
                patient_key=message.patient_id[:64],
                status=FeedStatus.APPLIED,
                ack_code="AA",
                error=None,
            )
        )
        return self._apply_stored(session, message_id, message, now=now)

    def _apply_stored(
        self, session: Session, message_id: int, message: Message, *, now: datetime
    ) -> Outcome:
        savepoint = session.begin_nested()
        try:
            apply_message(session, message, self.writer, now=now)
            # A PAS booking or cancellation may honour an open rebook or cancel request.
            bookings_service.reconcile(session, self.settings, now=now)
        except DomainError as error:
            savepoint.rollback()
            self.writer.forget()
            text = _hl7_wording(error)
            session.execute(
                update(FeedMessage)
                .where(FeedMessage.id == message_id)
                .values(status=FeedStatus.ERROR, ack_code="AE", error=text)
            )
            logger.info("feed: %s %s not applied (AE)", message.event, message.control_id)
            return Outcome("AE", message.control_id, text, message_id=message_id)
        savepoint.commit()
        return Outcome("AA", message.control_id, message_id=message_id)

    def _store_rejected(
        self, session: Session, data: bytes, rejected: MessageRejectedError, *, now: datetime
    ) -> int:
        kept = data[:RAW_KEPT_WHEN_OVERSIZED] if len(data) > self.max_bytes else data
        return int(
            session.execute(
                insert(FeedMessage)
                .values(
                    control_id=None,
                    status=FeedStatus.REJECTED,
                    ack_code="AR",
                    error=rejected.reason
                    + (f" (MSH-10 {rejected.control_id})" if rejected.control_id else ""),
                    raw=kept.decode("utf-8", "replace"),
                    size_bytes=len(data),
                    attempts=1,
                    received_at=now,
                    processed_at=now,
                )
                .returning(FeedMessage.id)
            ).scalar_one()
        )


@cache
def _stored_answers_query(dialect: str) -> Executable:
    """Built once per dialect (see `one_of_strings_bound`)."""
    return select(FeedMessage.control_id, FeedMessage.status, FeedMessage.error).where(
        one_of_strings_bound(dialect, FeedMessage.control_id)
    )


def _stored_row(data: bytes, message: Message, now: datetime) -> dict[str, Any]:
    return {
        "control_id": message.control_id,
        "message_type": str(message.event),
        "status": FeedStatus.APPLIED,
        "ack_code": "AA",
        "error": None,
        "patient_key": message.patient_id[:64],
        "appointment_key": message.appointment.get("appointment_id") or None,
        "raw": data.decode("utf-8"),
        "size_bytes": len(data),
        "attempts": 1,
        "received_at": now,
        "processed_at": now,
    }


def _rejected_row(
    data: bytes, rejected: MessageRejectedError, max_bytes: int, now: datetime
) -> dict[str, Any]:
    kept = data[:RAW_KEPT_WHEN_OVERSIZED] if len(data) > max_bytes else data
    return {
        "control_id": None,
        "message_type": None,
        "status": FeedStatus.REJECTED,
        "ack_code": "AR",
        "error": rejected.reason
        + (f" (MSH-10 {rejected.control_id})" if rejected.control_id else ""),
        "patient_key": None,
        "appointment_key": None,
        "raw": kept.decode("utf-8", "replace"),
        "size_bytes": len(data),
        "attempts": 1,
        "received_at": now,
        "processed_at": now,
    }


def _hl7_wording(error: DomainError) -> str:
    if isinstance(error, RowRejectedError):
        return "; ".join(
            f"{_FIELD_NAMES.get(problem.column, problem.column)}: {problem.message}"
            if problem.column
            else problem.message
            for problem in error.problems
        )
    return error.message


# --- the dead-letter list -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    control_id: str | None
    message_type: str | None
    ack_code: str
    error: str | None
    patient_key: str | None
    appointment_key: str | None
    size_bytes: int
    attempts: int
    received_at: datetime
    processed_at: datetime


def dead_letters(session: Session, *, limit: int = 200) -> list[DeadLetter]:
    rows = session.execute(
        select(
            FeedMessage.id,
            FeedMessage.control_id,
            FeedMessage.message_type,
            FeedMessage.ack_code,
            FeedMessage.error,
            FeedMessage.patient_key,
            FeedMessage.appointment_key,
            FeedMessage.size_bytes,
            FeedMessage.attempts,
            FeedMessage.received_at,
            FeedMessage.processed_at,
        )
        .where(FeedMessage.status.in_(list(DEAD_LETTER_STATUSES)))
        .order_by(FeedMessage.id)
        .limit(limit)
    )
    return [DeadLetter(**row._mapping) for row in rows]


def feed_counts(session: Session) -> dict[str, int]:
    return {
        str(status): int(count)
        for status, count in session.execute(
            select(FeedMessage.status, func.count()).group_by(FeedMessage.status)
        )
    }


def dismiss(session: Session, message_id: int, *, now: datetime, user_id: int) -> None:
    row = session.get(FeedMessage, message_id)
    if row is None:
        raise NotFoundError("No such feed message.")
    if row.status not in DEAD_LETTER_STATUSES:
        raise ConflictError("Only a message that was not applied can be dismissed.")
    row.status = FeedStatus.DISMISSED
    row.handled_by = user_id
    row.processed_at = now
    session.flush()
