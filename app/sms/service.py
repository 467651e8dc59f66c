"""SMS reminders: scheduling into the outbox, templates, status callbacks and inbound replies.

Everything here takes a Session and flushes; the caller owns the transaction. That is what
lets `queue_confirmation` be called inside the calls feature's own transaction: the message
is written to the outbox atomically with the rebooking that caused it, and is sent only by
the dispatcher (app/sms/dispatcher.py) after that transaction commits.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.db.dialect import insert_ignoring_conflicts
from app.errors import InvalidInputError, NotFoundError
from app.localtime import TrustCalendar
from app.patients.tables import Patient
from app.reference.codes import CANCELLED_CODES, NOT_YET_KNOWN
from app.settings import Settings
from app.sms import templates as texts
from app.sms.repository import status_rank, status_rank_sql
from app.sms.segments import SegmentInfo, count_segments
from app.sms.tables import (
    CONFIRMATION_KINDS,
    MessageKind,
    OutboxState,
    SmsInbound,
    SmsMessage,
    SmsStatusEvent,
    SmsTemplate,
)
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

logger = logging.getLogger("navigator.sms")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


# --- templates -------------------------------------------------------------------------------


def seed_default_templates(session: Session, *, now: datetime) -> int:
    """Store version 1 of every built-in text that has no version yet; returns how many."""
    existing = set(session.execute(select(SmsTemplate.kind, SmsTemplate.language).distinct()))
    missing = [
        {"kind": kind, "language": language, "version": 1, "body": body, "created_at": now}
        for (kind, language), body in texts.DEFAULT_TEMPLATES.items()
        if (kind, language) not in existing
    ]
    if missing:
        session.execute(insert_ignoring_conflicts(session, SmsTemplate.__table__), missing)
        session.flush()
    return len(missing)


def current_templates(session: Session) -> dict[tuple[str, str], tuple[str, int]]:
    """(kind, language) -> (body, version): the latest stored version, else the built-in."""
    result: dict[tuple[str, str], tuple[str, int]] = {
        key: (body, 0) for key, body in texts.DEFAULT_TEMPLATES.items()
    }
    latest = (
        select(SmsTemplate.kind, SmsTemplate.language, func.max(SmsTemplate.version).label("v"))
        .group_by(SmsTemplate.kind, SmsTemplate.language)
        .subquery()
    )
    rows = session.execute(
        select(SmsTemplate.kind, SmsTemplate.language, SmsTemplate.body, SmsTemplate.version).join(
            latest,
            and_(
                SmsTemplate.kind == latest.c.kind,
                SmsTemplate.language == latest.c.language,
                SmsTemplate.version == latest.c.v,
            ),
        )
    )
    for kind, language, body, version in rows:
        result[(kind, language)] = (body, version)
    return result


def pick_template(
    templates: dict[tuple[str, str], tuple[str, int]], kind: str, language: str
) -> tuple[str, int, str]:
    """The text for a kind in the patient's language, falling back to English."""
    for candidate in (language, texts.DEFAULT_LANGUAGE):
        found = templates.get((kind, candidate))
        if found is not None:
            return found[0], found[1], candidate
    raise NotFoundError(f"No text for message kind {kind!r}.")


@dataclass(frozen=True)
class TemplatePreview:
    kind: str
    language: str
    body: str
    preview: str
    segments: SegmentInfo
    problems: list[str]


def preview_template(kind: str, language: str, body: str) -> TemplatePreview:
    problems = texts.placeholder_problems(body)
    preview = "" if problems else texts.render(body, texts.example_values(language))
    return TemplatePreview(kind, language, body, preview, count_segments(preview or body), problems)


@dataclass(frozen=True)
class SavedTemplate:
    """A template after a save: its current version, and whether the save made it
    (`changed` is False when the text was the same as the current version's)."""

    kind: str
    language: str
    version: int  # 0 = the built-in default, never edited
    body: str
    changed: bool


def _same_text(first: str, second: str) -> bool:
    """The same message once a browser's line endings and trailing spaces are set aside."""

    def plain(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()

    return plain(first) == plain(second)


def save_template(
    session: Session,
    *,
    kind: str,
    language: str,
    body: str,
    user_id: int | None,
    now: datetime,
) -> SavedTemplate:
    """Store a new version of a template after checking its placeholders. Text that is the
    same as the current version's (or the built-in default's) saves nothing."""
    if kind not in set(MessageKind):
        raise InvalidInputError(f"Unknown message kind {kind!r}.")
    if language not in texts.LANGUAGES:
        raise InvalidInputError(f"Unsupported language {language!r}.")
    problems = texts.placeholder_problems(body)
    if problems:
        raise InvalidInputError(
            "The template cannot be saved.",
            details=[{"field": "body", "message": p} for p in problems],
        )
    current = session.scalar(
        select(SmsTemplate)
        .where(SmsTemplate.kind == kind, SmsTemplate.language == language)
        .order_by(SmsTemplate.version.desc())
        .limit(1)
    )
    current_body = current.body if current else texts.DEFAULT_TEMPLATES.get((kind, language))
    if current_body is not None and _same_text(current_body, body):
        return SavedTemplate(
            kind, language, current.version if current else 0, current_body, changed=False
        )
    template = SmsTemplate(
        kind=kind,
        language=language,
        version=(current.version if current else 0) + 1,
        body=body,
        created_by=user_id,
        created_at=now,
    )
    session.add(template)
    session.flush()
    return SavedTemplate(kind, language, template.version, body, changed=True)


def template_versions(session: Session, kind: str, language: str) -> list[SmsTemplate]:
    """Every stored version of one template, newest first (the built-in default is not
    stored: `texts.DEFAULT_TEMPLATES` has it)."""
    return list(
        session.scalars(
            select(SmsTemplate)
            .where(SmsTemplate.kind == kind, SmsTemplate.language == language)
            .order_by(SmsTemplate.version.desc())
        )
    )


def restore_template(
    session: Session,
    *,
    kind: str,
    language: str,
    version: int,
    user_id: int | None,
    now: datetime,
) -> SavedTemplate:
    """Make an earlier version (0 = the built-in default) current again, as a new version:
    history only grows. Restoring the text that is already current saves nothing."""
    if version == 0:
        body = texts.DEFAULT_TEMPLATES.get((kind, language))
    else:
        body = session.scalar(
            select(SmsTemplate.body).where(
                SmsTemplate.kind == kind,
                SmsTemplate.language == language,
                SmsTemplate.version == version,
            )
        )
    if body is None:
        raise InvalidInputError(
            "The version was not restored.",
            details=[{"field": "version", "message": "Choose a version to restore from the list"}],
        )
    return save_template(session, kind=kind, language=language, body=body, user_id=user_id, now=now)


# --- scheduling ------------------------------------------------------------------------------


@dataclass
class ScheduleSummary:
    date: date
    created: int = 0
    already_scheduled: int = 0
    no_sms_channel: int = 0
    cancelled: int = 0
    not_booked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def human(self) -> str:
        return (
            f"Reminders for {self.date.isoformat()}: {self.created} queued, "
            f"{self.already_scheduled} already scheduled, {self.no_sms_channel} with no SMS "
            f"channel (left to navigator calls), {self.cancelled} cancelled, "
            f"{self.not_booked} with an outcome already."
        )


def reminder_windows(
    on_date: date, offsets: list[int], calendar: TrustCalendar
) -> list[tuple[int, datetime, datetime]]:
    """For each offset, the appointments (by start) whose reminder at that offset is due.

    Offset k covers appointments whose local date is after the next smaller offset and at
    most k days ahead, so a day the job did not run, or a late booking, is caught up the next
    day instead of being missed, and each offset is still sent at most once.
    """
    ordered = sorted({offset for offset in offsets if offset > 0}, reverse=True)
    windows = []
    for index, offset in enumerate(ordered):
        lower = ordered[index + 1] if index + 1 < len(ordered) else 0
        windows.append(
            (
                offset,
                calendar.day_start(on_date + timedelta(days=lower + 1)),
                calendar.day_start(on_date + timedelta(days=offset + 1)),
            )
        )
    return windows


def schedule_reminders(
    session: Session, settings: Settings, *, on_date: date, now: datetime
) -> ScheduleSummary:
    """Queue the reminders due on `on_date` in one query and one batched insert per offset;
    `now` (the caller's clock) stamps the rows and makes them due at once."""
    calendar = settings.calendar
    summary = ScheduleSummary(date=on_date)
    templates = current_templates(session)
    for offset, start, end in reminder_windows(
        on_date, settings.sms_reminder_offsets_days, calendar
    ):
        already = exists().where(
            SmsMessage.appointment_id == Appointment.id,
            SmsMessage.kind == MessageKind.REMINDER,
            SmsMessage.offset_days == offset,
        )
        rows = session.execute(
            select(
                Appointment.id,
                Appointment.patient_id,
                Appointment.start_at,
                Appointment.attendance_code,
                Patient.mobile_phone,
                Patient.mobile_phone_invalid,
                Patient.sms_opt_out,
                Patient.preferred_language,
                Clinic.site,
                Clinic.specialty_code,
                Clinic.sensitive,
                already.label("already"),
            )
            .join(Patient, Patient.id == Appointment.patient_id)
            .join(Clinic, Clinic.id == Appointment.clinic_id)
            .where(Appointment.start_at >= start, Appointment.start_at < end)
        ).all()
        values = []
        for row in rows:
            if row.attendance_code in CANCELLED_CODES:
                summary.cancelled += 1
            elif row.attendance_code != NOT_YET_KNOWN:
                summary.not_booked += 1
            elif not row.mobile_phone or row.mobile_phone_invalid or row.sms_opt_out:
                summary.no_sms_channel += 1
            elif row.already:
                summary.already_scheduled += 1
            else:
                facts = texts.AppointmentFacts(
                    row.start_at, row.site, row.specialty_code, row.sensitive
                )
                body, version, language = pick_template(
                    templates, MessageKind.REMINDER, row.preferred_language
                )
                text = texts.render(body, texts.template_values(facts, calendar, language))
                values.append(
                    {
                        "idempotency_key": new_idempotency_key(),
                        "patient_id": row.patient_id,
                        "appointment_id": row.id,
                        "kind": str(MessageKind.REMINDER),
                        "offset_days": offset,
                        "language": language,
                        "template_version": version,
                        "to_number": row.mobile_phone,
                        "body": text,
                        "segments": count_segments(text).segments,
                        "state": str(OutboxState.PENDING),
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        if values:
            # The unique constraint, not this code, is what guarantees one reminder per
            # appointment and offset: a concurrent run's rows are skipped, not duplicated.
            statement = insert_ignoring_conflicts(session, SmsMessage.__table__).returning(
                SmsMessage.__table__.c.id
            )
            created = session.execute(statement, values).all()
            summary.created += len(created)
            summary.already_scheduled += len(values) - len(created)
    session.flush()
    logger.info(
        "sms schedule date=%s created=%d already=%d no_channel=%d",
        on_date,
        summary.created,
        summary.already_scheduled,
        summary.no_sms_channel,
    )
    return summary


def queue_confirmation(
    session: Session,
    *,
    appointment_id: int,
    kind: str,
    timezone: str = "Europe/London",
    now: datetime | None = None,
) -> SmsMessage | None:
    """Put a confirmation for `appointment_id` in the outbox, in the caller's transaction.

    `kind` is one of `confirm_rebooked`, `confirm_support`, `confirm_cancelled`. Returns None
    (and writes nothing) when the patient has no SMS channel: the navigator already spoke to
    them, so nothing else is needed. Sent by the dispatcher only after the caller commits.
    Callers pass `now` from their clock; without it the columns' defaults stamp the row.
    """
    if kind not in CONFIRMATION_KINDS:
        raise InvalidInputError(f"{kind!r} is not a confirmation message kind.")
    row = session.execute(
        select(Appointment, Patient, Clinic)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .where(Appointment.id == appointment_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError("No appointment with that id.")
    appointment, patient, clinic = row
    if not patient.has_usable_mobile or patient.sms_opt_out or patient.mobile_phone is None:
        return None
    body, version, language = pick_template(
        current_templates(session), kind, patient.preferred_language
    )
    facts = texts.AppointmentFacts(
        appointment.start_at, clinic.site, clinic.specialty_code, clinic.sensitive
    )
    text = texts.render(body, texts.template_values(facts, TrustCalendar(timezone), language))
    stamps: dict[str, datetime] = (
        {"next_attempt_at": now, "created_at": now, "updated_at": now} if now is not None else {}
    )
    message = SmsMessage(
        idempotency_key=new_idempotency_key(),
        patient_id=patient.id,
        appointment_id=appointment.id,
        kind=kind,
        offset_days=None,
        language=language,
        template_version=version,
        to_number=patient.mobile_phone,
        body=text,
        segments=count_segments(text).segments,
        state=OutboxState.PENDING,
        attempts=0,
        **stamps,
    )
    session.add(message)
    session.flush()
    return message


# --- status callbacks ------------------------------------------------------------------------


def record_status(
    session: Session,
    *,
    sid: str,
    status: str,
    error_code: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> bool:
    """Store a status callback once and move the message's status forward only.

    Returns False for a duplicate. A callback for a message whose dispatcher died before it
    recorded the SID finds the message by the idempotency key in the callback URL and
    re-attaches the SID, so the message counts as sent and is never sent again.
    """
    status = status.strip().lower()
    message_id = session.scalar(select(SmsMessage.id).where(SmsMessage.provider_sid == sid))
    if message_id is None and idempotency_key:
        attached = session.execute(
            update(SmsMessage)
            .where(
                SmsMessage.idempotency_key == idempotency_key,
                SmsMessage.provider_sid.is_(None),
                SmsMessage.state.in_((OutboxState.CLAIMED, OutboxState.PENDING)),
            )
            .values(
                provider_sid=sid,
                state=OutboxState.SUBMITTED,
                submitted_at=now,
                lease_until=None,
                updated_at=now,
            )
            .returning(SmsMessage.id)
        ).scalar_one_or_none()
        message_id = attached or session.scalar(
            select(SmsMessage.id).where(SmsMessage.provider_sid == sid)
        )
        if attached:
            logger.info("sms callback re-attached sid to message id=%s", attached)
    inserted = session.execute(
        insert_ignoring_conflicts(session, SmsStatusEvent.__table__).returning(
            SmsStatusEvent.__table__.c.id
        ),
        {
            "message_id": message_id,
            "provider_sid": sid,
            "status": status,
            "error_code": error_code or None,
            "received_at": now,
        },
    ).scalar_one_or_none()
    if inserted is None or message_id is None:
        return inserted is not None
    values: dict[str, Any] = {"delivery_status": status, "updated_at": now}
    if error_code:
        values["error_code"] = error_code
    moved = session.execute(
        update(SmsMessage)
        .where(
            SmsMessage.id == message_id,
            status_rank_sql(SmsMessage.delivery_status) < status_rank(status),
        )
        .values(**values)
        .returning(SmsMessage.appointment_id)
    ).one_or_none()
    if moved is not None and status in ("delivered", "read") and moved[0] is not None:
        session.execute(
            insert_ignoring_conflicts(session, AppointmentContact.__table__),
            {
                "appointment_id": moved[0],
                "channel": "sms",
                "contacted_at": now,
                "reached": True,
                "source_ref": sid,
            },
        )
    session.flush()
    return True


# --- inbound replies -------------------------------------------------------------------------


class ReplyIntent(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"
    REBOOK = "rebook"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"


# Twilio's own keywords act on the whole message (DOMAIN.md section 6).
OPT_OUT_WORDS = frozenset(
    {"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"}
)
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})
CONFIRM_WORDS = (
    "confirm",
    "confirmed",
    "ok",
    "okay",
    "attending",
    "will attend",
    "i will attend",
    "i will be there",
    "see you then",
    "coming",
)
CANCEL_WORDS = (
    "cancel appointment",
    "cancel my appointment",
    "cancel it",
    "please cancel",
    "cancel please",
    "cannot attend",
    "cant attend",
    "can not attend",
    "cant come",
    "cannot come",
    "not coming",
    "wont be there",
    "will not attend",
)
REBOOK_WORDS = (
    "rearrange",
    "re arrange",
    "rebook",
    "re book",
    "reschedule",
    "change",
    "change date",
    "change time",
    "new date",
    "new time",
    "another date",
    "another time",
    "different date",
    "different time",
    "move it",
)
_NUMBER_INTENTS = {"1": ReplyIntent.CONFIRM, "2": ReplyIntent.CANCEL, "3": ReplyIntent.REBOOK}


def normalise_reply(body: str) -> str:
    lowered = body.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^\w]+", " ", lowered).split())


def parse_reply(body: str) -> ReplyIntent:
    """What a patient's reply asks for; anything unclear goes to a person to read."""
    words = normalise_reply(body)
    if words in OPT_OUT_WORDS:
        return ReplyIntent.OPT_OUT
    if words in OPT_IN_WORDS:
        return ReplyIntent.OPT_IN
    if words in HELP_WORDS:
        return ReplyIntent.HELP
    first, _, rest = words.partition(" ")
    if first in _NUMBER_INTENTS and not any(char.isdigit() for char in rest):
        return _NUMBER_INTENTS[first]
    for phrases, intent in (
        (CANCEL_WORDS, ReplyIntent.CANCEL),
        (REBOOK_WORDS, ReplyIntent.REBOOK),
        (CONFIRM_WORDS, ReplyIntent.CONFIRM),
    ):
        if words in phrases or any(words.startswith(phrase + " ") for phrase in phrases):
            return intent
    return ReplyIntent.OTHER


_TASK_FOR_INTENT = {
    ReplyIntent.CONFIRM: TaskKind.CONFIRMED_NOTE,
    ReplyIntent.CANCEL: TaskKind.CANCEL_REQUEST,
    ReplyIntent.REBOOK: TaskKind.REBOOK_REQUEST,
    ReplyIntent.OTHER: TaskKind.READ_REPLY,
}


@dataclass(frozen=True)
class InboundOutcome:
    intent: ReplyIntent
    patient_id: int | None
    duplicate: bool
    reply: str | None  # a short TwiML message, or None for an empty response


def handle_inbound(
    session: Session, *, sid: str, from_number: str, to_number: str, body: str, now: datetime
) -> InboundOutcome:
    """Record a reply once by its MessageSid and act on it (task, opt-out, opt-in)."""
    intent = parse_reply(body)
    patients = list(
        session.scalars(
            select(Patient).where(Patient.mobile_phone == from_number).order_by(Patient.id)
        )
    )
    patient = _most_recently_messaged(session, patients)
    appointment_id = _appointment_in_question(session, patient.id, now) if patient else None
    inserted = session.execute(
        insert_ignoring_conflicts(session, SmsInbound.__table__).returning(
            SmsInbound.__table__.c.id
        ),
        {
            "provider_sid": sid,
            "from_number": from_number,
            "to_number": to_number,
            "body": body,
            "patient_id": patient.id if patient else None,
            "appointment_id": appointment_id,
            "intent": str(intent),
            "opted_out": intent == ReplyIntent.OPT_OUT,
            "received_at": now,
        },
    ).scalar_one_or_none()
    duplicate = inserted is None
    if not duplicate:
        if intent in (ReplyIntent.OPT_OUT, ReplyIntent.OPT_IN) and patients:
            # The opt-out is per number at Twilio, so it applies to everyone sharing it.
            session.execute(
                update(Patient)
                .where(Patient.id.in_([p.id for p in patients]))
                .values(sms_opt_out=intent == ReplyIntent.OPT_OUT, updated_at=now)
            )
        task_kind = _TASK_FOR_INTENT.get(intent)
        if task_kind is not None and patient is not None:
            done = task_kind == TaskKind.CONFIRMED_NOTE
            session.execute(
                insert_ignoring_conflicts(session, NavigatorTask.__table__),
                {
                    "kind": str(task_kind),
                    "status": str(TaskStatus.DONE if done else TaskStatus.OPEN),
                    "patient_id": patient.id,
                    "appointment_id": appointment_id,
                    "source": "sms",
                    "source_ref": sid,
                    "detail": body[:1000],
                    "created_at": now,
                    "completed_at": now if done else None,
                },
            )
        session.flush()
        logger.info(
            "sms inbound id=%s intent=%s patient_id=%s", inserted, intent, patient and patient.id
        )
    reply = None
    # Only a known patient is told a person will follow up: an unknown sender has no task.
    if patient is not None and intent in (
        ReplyIntent.CONFIRM,
        ReplyIntent.CANCEL,
        ReplyIntent.REBOOK,
    ):
        reply, _, _ = pick_template(
            current_templates(session), MessageKind.REPLY_ACK, patient.preferred_language
        )
    return InboundOutcome(intent, patient.id if patient else None, duplicate, reply)


def _most_recently_messaged(session: Session, patients: list[Patient]) -> Patient | None:
    if len(patients) <= 1:
        return patients[0] if patients else None
    latest = session.scalar(
        select(SmsMessage.patient_id)
        .where(SmsMessage.patient_id.in_([p.id for p in patients]))
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
        .limit(1)
    )
    return next((p for p in patients if p.id == latest), patients[0])


def _appointment_in_question(session: Session, patient_id: int, now: datetime) -> int | None:
    """The upcoming appointment the patient was last messaged about, if any."""
    return session.scalar(
        select(SmsMessage.appointment_id)
        .join(Appointment, Appointment.id == SmsMessage.appointment_id)
        .where(
            SmsMessage.patient_id == patient_id,
            Appointment.start_at >= now - timedelta(days=1),
        )
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
        .limit(1)
    )


# Called by the HL7 feed when the PAS cancels or moves an appointment.
def cancel_pending_reminders(
    session: Session, appointment_ids: list[int], *, reason: str, now: datetime
) -> int:
    """Withdraw the reminders not yet handed to the provider for these appointments (the
    appointment was cancelled in the PAS). Returns how many were withdrawn."""
    if not appointment_ids:
        return 0
    result = session.execute(
        update(SmsMessage)
        .where(
            SmsMessage.appointment_id.in_(appointment_ids),
            SmsMessage.kind == MessageKind.REMINDER,
            SmsMessage.state == OutboxState.PENDING,
        )
        .values(
            state=OutboxState.CANCELLED, error_code=reason[:16], offset_days=None, updated_at=now
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
