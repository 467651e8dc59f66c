"""Applying HL7 feed messages: store raw, apply through the import service, decide the ACK.

`FeedProcessor.handle` is called inside the caller's transaction for each message; the
caller commits and only then sends the ACK it returned. A message is stored in
`feed_messages` first; its changes are applied in a savepoint so that a message which cannot
be applied (AE) rolls back alone and stays stored as a dead letter. Nothing from a message
body is logged: log lines carry control ids, message types and ACK codes only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.bookings import service as bookings_service
from app.errors import ConflictError, DomainError, NotFoundError
from app.feed.messages import (
    PATIENT_EVENTS,
    Event,
    MessageRejectedError,
    read_message,
)
from app.feed.messages import (
    FeedMessage as Message,
)
from app.feed.tables import DEAD_LETTER_STATUSES, FeedMessage, FeedStatus
from app.imports.service import RowRejectedError, RowWriter
from app.patients.service import merge_patients, resolve_pas_patient_id
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN
from app.settings import Settings
from app.sms.service import cancel_pending_reminders

logger = logging.getLogger(__name__)

FEED_SOURCE = "hl7_feed"
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


class MessageNotAppliedError(DomainError):
    """Understood, but it cannot be applied (answered AE)."""

    status_code = 422
    code = "not_applied"


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


def _hl7_wording(error: DomainError) -> str:
    if isinstance(error, RowRejectedError):
        return "; ".join(
            f"{_FIELD_NAMES.get(problem.column, problem.column)}: {problem.message}"
            if problem.column
            else problem.message
            for problem in error.problems
        )
    return error.message


# --- applying one message ------------------------------------------------------------------


def apply_message(session: Session, message: Message, writer: RowWriter, *, now: datetime) -> None:
    if message.event is Event.MERGED:
        assert message.merged_patient_id is not None  # noqa: S101 - read_message requires it
        merge_patients(
            session,
            surviving_pas_id=message.patient_id,
            merged_pas_id=message.merged_patient_id,
            source=FEED_SOURCE,
            source_ref=message.control_id,
            now=now,
        )
        _apply_patient(session, message, writer, now=now, require_known=True)
        return
    if message.event in PATIENT_EVENTS:
        _apply_patient(session, message, writer, now=now, require_known=False)
        return
    _apply_schedule(session, message, writer, now=now)


def _apply_patient(
    session: Session, message: Message, writer: RowWriter, *, now: datetime, require_known: bool
) -> None:
    pas_id = resolve_pas_patient_id(session, message.patient_id)
    current = session.execute(select(Patient).where(Patient.pas_patient_id == pas_id)).scalar()
    if current is None and require_known:
        raise MessageNotAppliedError(f"unknown patient '{pas_id}'")
    row = _patient_row(current) if current is not None else {}
    row.update(message.patient)
    row["patient_id"] = pas_id
    if current is not None and len(message.patient) <= 1:
        return  # nothing but the identifier: the record stays as it is
    writer.patient(session, row, now=now)


def _patient_row(patient: Patient) -> dict[str, str]:
    """The patient as a patients.csv row, so fields a message does not carry stay as they are."""

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return {
        "patient_id": patient.pas_patient_id,
        "nhs_number": patient.nhs_number or "",
        "family_name": patient.family_name or "",
        "given_name": patient.given_name or "",
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "ethnic_category": patient.ethnic_category,
        "postcode": patient.postcode or "",
        "lsoa_code": patient.lsoa_code or "",
        "mobile_phone": patient.mobile_phone or "",
        "landline_phone": patient.landline_phone or "",
        "preferred_language": patient.preferred_language,
        "interpreter_needed": flag(patient.interpreter_needed),
        "communication_needs": patient.communication_needs,
        "learning_disability": flag(patient.learning_disability),
        "sms_opt_out": flag(patient.sms_opt_out),
    }


def _apply_schedule(
    session: Session, message: Message, writer: RowWriter, *, now: datetime
) -> None:
    values = dict(message.appointment)
    appointment_key = values["appointment_id"]
    values["patient_id"] = resolve_pas_patient_id(session, values["patient_id"])
    current = session.execute(
        select(
            Appointment.id,
            Appointment.attendance_code,
            Appointment.booked_at,
            Appointment.start_at,
            Appointment.first_attendance,
            Clinic.code,
            Clinic.site,
            Clinic.specialty_code,
        )
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .where(Appointment.pas_appointment_id == appointment_key)
    ).first()
    if current is None and message.event is not Event.BOOKED:
        raise MessageNotAppliedError(
            f"appointment '{appointment_key}' is not known: a {message.event} needs the "
            "booking (SIU^S12) first; replay this message once the booking has arrived"
        )
    row: dict[str, str] = {}
    if current is not None:
        row = {
            "clinic_code": current.code,
            "site": current.site or "",
            "specialty_code": current.specialty_code or "",
            "booked_at": current.booked_at.isoformat(),
            "start_at": current.start_at.isoformat(),
            "first_attendance": ""
            if current.first_attendance is None
            else ("true" if current.first_attendance else "false"),
            "attendance_code": current.attendance_code,
        }
        values.pop("booked_at", None)  # the booking time is the PAS's first booking
    else:
        row["booked_at"] = now.isoformat()
        row["attendance_code"] = NOT_YET_KNOWN
    row.update(values)
    if message.attendance_code is not None:
        row["attendance_code"] = message.attendance_code
    writer.appointment(session, row, now=now)
    was_open = current is None or current.attendance_code == NOT_YET_KNOWN
    if message.attendance_code is not None and was_open:
        appointment_id = session.execute(
            select(Appointment.id).where(Appointment.pas_appointment_id == appointment_key)
        ).scalar_one()
        reason = "no_show" if message.event is Event.NO_SHOW else "cancelled_in_pas"
        cancel_pending_reminders(session, [appointment_id], reason=reason, now=now)


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
