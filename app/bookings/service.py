"""Rebook and cancel requests: record what was agreed, hand it to the booking team, and close it
when the PAS makes the change.

The PAS is the system of record (DOMAIN.md section 7). A navigator's "rebooked" or "cancelled"
outcome never changes an appointment here: it opens a request. The original appointment stays
as the PAS says until an import or a feed message changes it. `reconcile` (run after every
import, every applied feed message and by the worker) links each open rebook request to the
PAS appointment that honours it and sends the patient's confirmation then, with the PAS's own
time; a cancel request closes when the PAS cancels the appointment. Requests still unmatched
after `bookings_escalate_after_working_days` become booking-team tasks (`escalate_overdue`).

Matching rule for a rebook request (documented in the README): an appointment of the same
patient, still booked (attendance code 0), booked on or after the local day of the request
(PAS booking times are often date-only), not the original appointment and not already matched
to another request, in the agreed clinic, the original clinic or the same specialty; when a
date and time was agreed, starting within `bookings_match_tolerance_days` of it (the closest
wins), otherwise the earliest that starts after the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.auth.audit import record_audit
from app.bookings.tables import OPEN_STATUSES, BookingRequest, RequestKind, RequestStatus
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.patients.tables import Patient
from app.reference.codes import CANCELLED_CODES, NOT_YET_KNOWN
from app.settings import Settings
from app.sms import service as sms_service
from app.sms.tables import MessageKind
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class ReconcileResult:
    rebooks_confirmed: int = 0
    cancellations_confirmed: int = 0
    confirmations_queued: int = 0
    matched: dict[int, int] = field(default_factory=dict)  # request id -> PAS appointment id

    def as_dict(self) -> dict[str, Any]:
        return {
            "rebooks_confirmed": self.rebooks_confirmed,
            "cancellations_confirmed": self.cancellations_confirmed,
            "confirmations_queued": self.confirmations_queued,
        }


# --- opening requests --------------------------------------------------------------------------


def _open_request_for(session: Session, appointment_id: int) -> BookingRequest | None:
    return session.scalar(
        select(BookingRequest).where(
            BookingRequest.appointment_id == appointment_id,
            BookingRequest.status.in_(OPEN_STATUSES),
        )
    )


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidInputError(
            f"The reason is too long: keep it under {MAX_REASON_LENGTH} characters.",
            details=[{"field": "reason", "message": "too long"}],
        )
    return text


def request_rebook(
    session: Session,
    *,
    appointment: Appointment,
    preferred_start_at: datetime | None,
    clinic: Clinic | None,
    reason: str | None,
    call_id: int | None,
    user_id: int | None,
    now: datetime,
) -> BookingRequest:
    """Open a request to move `appointment` (to `preferred_start_at`, or the first available
    slot when None, in `clinic` or the appointment's own clinic). One open request per
    appointment: asking again replaces what was agreed."""
    if appointment.attendance_code != NOT_YET_KNOWN:
        raise ConflictError("This appointment is no longer booked in the PAS: nothing to move.")
    target_clinic = clinic or session.get_one(Clinic, appointment.clinic_id)
    existing = _open_request_for(session, appointment.id)
    if existing is not None and existing.kind == RequestKind.REBOOK:
        existing.preferred_start_at = preferred_start_at
        existing.first_available = preferred_start_at is None
        existing.clinic_id = target_clinic.id
        existing.specialty_code = target_clinic.specialty_code
        existing.reason = _clean_reason(reason)
        existing.requested_at = now
        existing.requested_by = user_id
        session.flush()
        return existing
    if existing is not None:
        _close(existing, RequestStatus.WITHDRAWN, now, "replaced by a rebook request")
    return _new_request(
        session,
        RequestKind.REBOOK,
        appointment,
        reason=reason,
        call_id=call_id,
        user_id=user_id,
        now=now,
        preferred_start_at=preferred_start_at,
        first_available=preferred_start_at is None,
        clinic_id=target_clinic.id,
        specialty_code=target_clinic.specialty_code,
    )


def request_cancel(
    session: Session,
    *,
    appointment: Appointment,
    reason: str | None,
    call_id: int | None,
    user_id: int | None,
    now: datetime,
) -> BookingRequest:
    """Open a request to cancel `appointment` at the patient's request."""
    if appointment.attendance_code != NOT_YET_KNOWN:
        raise ConflictError("This appointment is no longer booked in the PAS: nothing to cancel.")
    existing = _open_request_for(session, appointment.id)
    if existing is not None and existing.kind == RequestKind.CANCEL:
        return existing
    if existing is not None:
        _close(existing, RequestStatus.WITHDRAWN, now, "replaced by a cancel request")
    return _new_request(
        session,
        RequestKind.CANCEL,
        appointment,
        reason=reason,
        call_id=call_id,
        user_id=user_id,
        now=now,
    )


def _new_request(
    session: Session,
    kind: RequestKind,
    appointment: Appointment,
    *,
    reason: str | None,
    call_id: int | None,
    user_id: int | None,
    now: datetime,
    **agreed: Any,
) -> BookingRequest:
    request = BookingRequest(
        kind=kind,
        status=RequestStatus.OPEN,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        call_id=call_id,
        requested_by=user_id,
        requested_at=now,
        reason=_clean_reason(reason),
        **agreed,
    )
    session.add(request)
    session.flush()
    return request


def open_requests_by_appointment(
    session: Session, appointment_ids: list[int]
) -> dict[int, BookingRequest]:
    """The open request of each appointment that has one (call screens, history, reminders)."""
    if not appointment_ids:
        return {}
    rows = session.scalars(
        select(BookingRequest).where(
            BookingRequest.appointment_id.in_(appointment_ids),
            BookingRequest.status.in_(OPEN_STATUSES),
        )
    )
    return {row.appointment_id: row for row in rows}


def requests_for_patient(session: Session, patient_id: int) -> list[BookingRequest]:
    return list(
        session.scalars(
            select(BookingRequest)
            .where(BookingRequest.patient_id == patient_id)
            .order_by(BookingRequest.requested_at.desc(), BookingRequest.id.desc())
        )
    )


# --- closing requests --------------------------------------------------------------------------


def _close(request: BookingRequest, status: RequestStatus, now: datetime, note: str) -> None:
    request.status = status
    request.closed_at = now
    request.closed_note = note


def _close_overdue_task(session: Session, request: BookingRequest, now: datetime) -> None:
    task = session.scalar(
        select(NavigatorTask).where(
            NavigatorTask.source == "booking",
            NavigatorTask.source_ref == str(request.id),
            NavigatorTask.status == TaskStatus.OPEN,
        )
    )
    if task is not None:
        task.status = TaskStatus.DONE
        task.completed_at = now


def withdraw(
    session: Session, request_id: int, *, user_id: int, note: str | None, now: datetime
) -> BookingRequest:
    """The booking team closes a request the PAS will not honour (the reason is kept)."""
    request = session.get(BookingRequest, request_id)
    if request is None:
        raise NotFoundError("No booking request with that id.")
    if request.status not in OPEN_STATUSES:
        raise ConflictError("This request is already closed.")
    text = _clean_reason(note)
    if not text:
        raise InvalidInputError(
            "Say why the request is being closed.",
            details=[{"field": "note", "message": "Enter why the request is being closed"}],
        )
    _close(request, RequestStatus.WITHDRAWN, now, text)
    _close_overdue_task(session, request, now)
    record_audit(
        session,
        user_id=user_id,
        action="booking_request.withdrawn",
        patient_id=request.patient_id,
        appointment_id=request.appointment_id,
        detail={"request_id": request.id},
    )
    session.flush()
    return request


def _candidates(session: Session, requests: list[BookingRequest]) -> dict[int, list[Any]]:
    """Booked appointments of the requests' patients with their clinic, by patient id."""
    patient_ids = sorted({request.patient_id for request in requests})
    rows = session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.clinic_id,
            Appointment.start_at,
            Appointment.booked_at,
            Clinic.specialty_code,
        )
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .where(
            Appointment.patient_id.in_(patient_ids),
            Appointment.attendance_code == NOT_YET_KNOWN,
        )
    ).all()
    by_patient: dict[int, list[Any]] = {}
    for row in rows:
        by_patient.setdefault(row.patient_id, []).append(row)
    return by_patient


def _best_match(
    request: BookingRequest,
    original_clinic_id: int,
    candidates: list[Any],
    taken: set[int],
    settings: Settings,
) -> Any | None:
    booked_from = settings.calendar.day_start(settings.calendar.today(request.requested_at))
    tolerance = timedelta(days=settings.bookings_match_tolerance_days)
    fitting = []
    for row in candidates:
        if row.id == request.appointment_id or row.id in taken or row.booked_at < booked_from:
            continue
        same_place = row.clinic_id in (request.clinic_id, original_clinic_id) or (
            request.specialty_code is not None and row.specialty_code == request.specialty_code
        )
        if not same_place:
            continue
        if request.preferred_start_at is not None:
            distance = abs(row.start_at - request.preferred_start_at)
            if distance <= tolerance:
                fitting.append((distance, row.start_at, row.id, row))
        elif row.start_at >= request.requested_at:
            fitting.append((timedelta(0), row.start_at, row.id, row))
    if not fitting:
        return None
    fitting.sort(key=lambda item: item[:3])
    return fitting[0][3]


_ANY_OPEN_REQUEST = (
    select(BookingRequest.id).where(BookingRequest.status.in_(OPEN_STATUSES)).limit(1)
)


def reconcile(session: Session, settings: Settings, *, now: datetime) -> ReconcileResult:
    """Close every open request the PAS has honoured (set-based over the open requests, which
    are few: tens to hundreds). Safe to run as often as wanted."""
    if session.connection().execute(_ANY_OPEN_REQUEST).first() is None:
        return ReconcileResult()  # the usual case, checked cheaply (it runs per feed batch)
    requests = list(
        session.scalars(
            select(BookingRequest)
            .where(BookingRequest.status.in_(OPEN_STATUSES))
            .order_by(BookingRequest.requested_at, BookingRequest.id)
        )
    )
    if not requests:
        return ReconcileResult()
    originals = {
        row.id: row
        for row in session.execute(
            select(Appointment.id, Appointment.clinic_id, Appointment.attendance_code).where(
                Appointment.id.in_([request.appointment_id for request in requests])
            )
        )
    }
    rebooks = [request for request in requests if request.kind == RequestKind.REBOOK]
    candidates = _candidates(session, rebooks) if rebooks else {}
    taken = {
        matched_id
        for matched_id in session.scalars(select(BookingRequest.matched_appointment_id))
        if matched_id is not None
    }
    rebooked = cancelled = queued = 0
    matched: dict[int, int] = {}
    for request in requests:
        original = originals.get(request.appointment_id)
        if request.kind == RequestKind.CANCEL:
            if original is not None and original.attendance_code in CANCELLED_CODES:
                _close(request, RequestStatus.CONFIRMED, now, "cancelled in the PAS")
                _close_overdue_task(session, request, now)
                cancelled += 1
                message = sms_service.queue_confirmation(
                    session,
                    appointment_id=request.appointment_id,
                    kind=MessageKind.CONFIRM_CANCELLED,
                    timezone=settings.timezone,
                )
                queued += message is not None
            continue
        best = _best_match(
            request,
            original.clinic_id if original is not None else -1,
            candidates.get(request.patient_id, []),
            taken,
            settings,
        )
        if best is None:
            continue
        taken.add(best.id)
        request.matched_appointment_id = best.id
        _close(request, RequestStatus.CONFIRMED, now, "booked in the PAS")
        _close_overdue_task(session, request, now)
        matched[request.id] = best.id
        rebooked += 1
        message = sms_service.queue_confirmation(
            session,
            appointment_id=best.id,
            kind=MessageKind.CONFIRM_REBOOKED,
            timezone=settings.timezone,
        )
        queued += message is not None
    session.flush()
    if rebooked or cancelled:
        logger.info(
            "booking requests reconciled: %d rebooks, %d cancellations", rebooked, cancelled
        )
    return ReconcileResult(rebooked, cancelled, queued, matched)


def escalate_overdue(session: Session, settings: Settings, *, now: datetime) -> int:
    """Requests the PAS has not honoured after the configured working days become one
    booking-team task each (once)."""
    calendar = settings.calendar
    today = calendar.today(now)
    escalated = 0
    for request in session.scalars(
        select(BookingRequest).where(BookingRequest.status == RequestStatus.OPEN)
    ):
        due = calendar.add_working_days(
            calendar.today(request.requested_at), settings.bookings_escalate_after_working_days
        )
        if due > today:
            continue
        request.status = RequestStatus.ESCALATED
        request.escalated_at = now
        session.add(
            NavigatorTask(
                kind=TaskKind.BOOKING_OVERDUE,
                status=TaskStatus.OPEN,
                patient_id=request.patient_id,
                appointment_id=request.appointment_id,
                source="booking",
                source_ref=str(request.id),
                detail=(
                    f"The {request.kind} request made on "
                    f"{calendar.local(request.requested_at):%d %b %Y} has not reached the PAS: "
                    "check it with the booking team."
                ),
                created_at=now,
            )
        )
        escalated += 1
    session.flush()
    return escalated


# --- the booking team's worklist ------------------------------------------------------------


@dataclass(frozen=True)
class WorklistRow:
    request: BookingRequest
    patient: Patient
    appointment: Appointment
    original_clinic: Clinic
    target_clinic: Clinic | None
    matched: Appointment | None


STATUS_FILTERS = {
    "open": list(OPEN_STATUSES),
    "escalated": [RequestStatus.ESCALATED],
    "closed": [RequestStatus.CONFIRMED, RequestStatus.WITHDRAWN],
    "all": list(RequestStatus),
}


def worklist(
    session: Session, *, status: str = "open", limit: int = 50, offset: int = 0
) -> tuple[list[WorklistRow], int]:
    """Requests for the booking team, oldest first (open) or newest first (closed), and the
    number in that filter."""
    if status not in STATUS_FILTERS:
        raise InvalidInputError(
            f"Unknown filter {status!r}: use one of {', '.join(STATUS_FILTERS)}."
        )
    statuses = STATUS_FILTERS[status]
    order = (
        (BookingRequest.requested_at, BookingRequest.id)
        if status in ("open", "escalated")
        else (BookingRequest.requested_at.desc(), BookingRequest.id.desc())
    )
    total = (
        session.scalar(
            select(func.count(BookingRequest.id)).where(BookingRequest.status.in_(statuses))
        )
        or 0
    )
    requests = list(
        session.scalars(
            select(BookingRequest)
            .where(BookingRequest.status.in_(statuses))
            .order_by(*order)
            .limit(limit)
            .offset(offset)
        )
    )
    if not requests:
        return [], total
    appointment_ids = {r.appointment_id for r in requests} | {
        r.matched_appointment_id for r in requests if r.matched_appointment_id is not None
    }
    appointments = {
        a.id: a
        for a in session.scalars(select(Appointment).where(Appointment.id.in_(appointment_ids)))
    }
    clinic_ids = {a.clinic_id for a in appointments.values()} | {
        r.clinic_id for r in requests if r.clinic_id is not None
    }
    clinics = {c.id: c for c in session.scalars(select(Clinic).where(Clinic.id.in_(clinic_ids)))}
    patients = {
        p.id: p
        for p in session.scalars(
            select(Patient).where(Patient.id.in_({r.patient_id for r in requests}))
        )
    }
    rows = []
    for request in requests:
        appointment = appointments[request.appointment_id]
        rows.append(
            WorklistRow(
                request=request,
                patient=patients[request.patient_id],
                appointment=appointment,
                original_clinic=clinics[appointment.clinic_id],
                target_clinic=clinics.get(request.clinic_id) if request.clinic_id else None,
                matched=appointments.get(request.matched_appointment_id)
                if request.matched_appointment_id
                else None,
            )
        )
    return rows, total


def without_open_request(appointment_id_column: Any) -> Any:
    """SQL condition: the appointment has no open booking request (for queues and reminders:
    an appointment the patient asked to move or cancel gets no reminder and no call)."""
    return (
        ~select(BookingRequest.id)
        .where(
            BookingRequest.appointment_id == appointment_id_column,
            BookingRequest.status.in_(OPEN_STATUSES),
        )
        .exists()
    )
