"""Applying one parsed HL7 message through the import service, and the pieces the batch
applier (`app/feed/batch.py`) shares with it: the CSV-shaped row a message makes of the
patient or appointment as it stands, and when it withdraws reminders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.errors import DomainError
from app.feed.messages import PATIENT_EVENTS, Event
from app.feed.messages import FeedMessage as Message
from app.imports.service import RowWriter
from app.patients.service import merge_patients, resolve_pas_patient_id
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN
from app.sms.service import cancel_pending_reminders

FEED_SOURCE = "hl7_feed"


class MessageNotAppliedError(DomainError):
    """Understood, but it cannot be applied (answered AE)."""

    status_code = 422
    code = "not_applied"


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
    current = session.execute(
        current_patients_query().where(Patient.pas_patient_id == pas_id)
    ).first()
    if current is None and require_known:
        raise MessageNotAppliedError(f"unknown patient '{pas_id}'")
    row = patient_message_row(message, current, pas_id)
    if row is not None:
        writer.patient(session, row, now=now)


def current_patients_query() -> Select[*tuple[Any, ...]]:
    """A patient as a patient message needs it, and as the import's writer compares it (add a
    `where` on the PAS id)."""
    query: Select[*tuple[Any, ...]] = select(*_PATIENT_COLUMNS)
    return query


def patient_message_row(message: Message, current: Any, pas_id: str) -> dict[str, str] | None:
    """The patients.csv row a patient message makes of the patient as it stands (`current`, a
    row of `current_patients_query`, or None), or None when it changes nothing."""
    if current is not None and len(message.patient) <= 1:
        return None  # nothing but the identifier: the record stays as it is
    row = _patient_row(current) if current is not None else {}
    row.update(message.patient)
    row["patient_id"] = pas_id
    return row


_PATIENT_COLUMNS = (
    Patient.id,
    Patient.source_hash,
    Patient.pas_patient_id,
    Patient.nhs_number,
    Patient.family_name,
    Patient.given_name,
    Patient.birth_date,
    Patient.sex,
    Patient.ethnic_category,
    Patient.postcode,
    Patient.lsoa_code,
    Patient.mobile_phone,
    Patient.landline_phone,
    Patient.preferred_language,
    Patient.interpreter_needed,
    Patient.communication_needs,
    Patient.learning_disability,
    Patient.sms_opt_out,
)


def _patient_row(patient: Any) -> dict[str, str]:
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
    appointment_key = message.appointment["appointment_id"]
    pas_patient_id = resolve_pas_patient_id(session, message.appointment["patient_id"])
    current = session.execute(
        current_appointments_query().where(Appointment.pas_appointment_id == appointment_key)
    ).first()
    writer.appointment(session, schedule_row(message, current, pas_patient_id, now=now), now=now)
    if cancels_reminders(message, current):
        appointment_id = session.execute(
            select(Appointment.id).where(Appointment.pas_appointment_id == appointment_key)
        ).scalar_one()
        cancel_pending_reminders(
            session, [appointment_id], reason=reminder_cancel_reason(message), now=now
        )


def current_appointments_query() -> Select[*tuple[Any, ...]]:
    """An appointment as a schedule message needs it, and as the import's writer compares it
    (add a `where` on the PAS id)."""
    query: Select[*tuple[Any, ...]] = select(
        Appointment.pas_appointment_id,
        Appointment.id,
        Appointment.attendance_code,
        Appointment.booked_at,
        Appointment.start_at,
        Appointment.first_attendance,
        Appointment.source_hash,
        Appointment.outcome_recorded_at,
        Clinic.code,
        Clinic.site,
        Clinic.specialty_code,
    ).join(Clinic, Clinic.id == Appointment.clinic_id)
    return query


def schedule_row(
    message: Message, current: Any, pas_patient_id: str, *, now: datetime
) -> dict[str, str]:
    """The appointments.csv row a schedule message makes of the appointment as it stands
    (`current`, a row of `current_appointments_query`, or None when it is not known yet)."""
    values = dict(message.appointment)
    values["patient_id"] = pas_patient_id
    if current is None and message.event is not Event.BOOKED:
        raise MessageNotAppliedError(
            f"appointment '{values['appointment_id']}' is not known: a {message.event} needs "
            "the booking (SIU^S12) first; replay this message once the booking has arrived"
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
    return row


def cancels_reminders(message: Message, current: Any) -> bool:
    """A cancellation or no-show of an appointment still open withdraws its reminders."""
    was_open = current is None or current.attendance_code == NOT_YET_KNOWN
    return message.attendance_code is not None and was_open


def reminder_cancel_reason(message: Message) -> str:
    return "no_show" if message.event is Event.NO_SHOW else "cancelled_in_pas"
