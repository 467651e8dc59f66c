"""Applying the messages that queued together in one transaction, set-based (group commit).

`apply_messages` applies the new messages of a batch (`FeedProcessor.handle_batch`) in the
caller's transaction with a handful of statements per wave instead of about ten per message.
It has no savepoints: any message that cannot be applied raises, the caller rolls the whole
batch back and applies its messages one per transaction through `FeedProcessor.handle`
(which gives the bad one its AE and dead letter). That per-message path is the reference;
this one must end in the same rows.

Order: messages are grouped into waves. A message goes into the first wave after every
earlier message it depends on: the same appointment, or the same patient when either of the
two is a patient message (a booking reads the patient's id; two bookings of one patient do
not depend on each other). Messages in one wave touch distinct rows, so writing a wave as one
chunk of a file import gives what applying them one by one in arrival order gives. Two kinds
of message are barriers, alone in their wave with everything before them earlier and
everything after them later: an A40 merge (applied by the per-message code; it renames
patients) and a booking that creates or changes a clinic (clinic rows are shared).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Executable, Result, Select, literal_column, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from app.appointments.tables import Appointment
from app.db.dialect import one_of_strings_bound
from app.feed.apply import (
    MessageNotAppliedError,
    apply_message,
    cancels_reminders,
    current_appointments_query,
    current_patients_query,
    patient_message_row,
    reminder_cancel_reason,
    schedule_row,
)
from app.feed.messages import PATIENT_EVENTS, Event
from app.feed.messages import FeedMessage as Message
from app.imports.service import RowWriter
from app.patients.tables import Patient, PatientMerge
from app.sms.service import cancel_pending_reminders


def apply_messages(
    session: Session, messages: list[Message], writer: RowWriter, *, now: datetime
) -> None:
    """Apply parsed messages in arrival order with set-based writes (see the module text)."""
    run: list[Message] = []
    for message in messages:
        if message.event is Event.MERGED:
            _apply_run(session, run, writer, now=now)
            run = []
            apply_message(session, message, writer, now=now)
        else:
            run.append(message)
    _apply_run(session, run, writer, now=now)


@dataclass
class _Wave:
    patients: list[Message] = field(default_factory=list)
    schedules: list[Message] = field(default_factory=list)


def _apply_run(
    session: Session, messages: list[Message], writer: RowWriter, *, now: datetime
) -> None:
    """Messages with no merge among them (so a PAS id resolves the same way throughout)."""
    if not messages:
        return
    survivors, patient_ids = _known_patients(session, {message.patient_id for message in messages})
    for wave in _waves(messages, survivors, writer.known_clinics(session)):
        _apply_wave(session, wave, survivors, patient_ids, writer, now=now)


def _patient_ids(session: Session, pas_ids: set[str]) -> dict[str, int]:
    """Patient ids by PAS id for a run (kept up to date as its waves insert patients: no
    merge inside a run, so no id changes)."""
    rows = _run(session, _statements(session).patient_ids, pas_ids)
    return {row.pas_patient_id: row.id for row in rows}


def _known_patients(session: Session, pas_ids: set[str]) -> tuple[dict[str, str], dict[str, int]]:
    """For the PAS ids of a run, in one query: the merged-away ones with the surviving
    patient's PAS id for each, and the ids of the patients they resolve to."""
    survivors: dict[str, str] = {}
    patient_ids: dict[str, int] = {}
    for row in _run(session, _statements(session).known_patients, pas_ids):
        if row.merged:
            survivors[row.asked] = row.pas_patient_id
        patient_ids[row.pas_patient_id] = row.id
    return survivors, patient_ids


@dataclass(frozen=True)
class _Statements:
    """The batch's reads, built once per dialect: each takes the keys as `keys`."""

    patient_ids: Executable
    known_patients: Executable
    current_patients: Executable
    current_appointments: Executable
    appointment_ids: Executable


@cache
def _statements_for(dialect: str) -> _Statements:
    def by(column: Any) -> ColumnElement[bool]:
        return one_of_strings_bound(dialect, column)

    merged: Select[*tuple[Any, ...]] = (
        select(
            literal_column("1").label("merged"),
            PatientMerge.merged_pas_patient_id.label("asked"),
            Patient.pas_patient_id,
            Patient.id,
        )
        .join(Patient, PatientMerge.surviving_patient_id == Patient.id)
        .where(by(PatientMerge.merged_pas_patient_id))
    )
    current: Select[*tuple[Any, ...]] = select(
        literal_column("0").label("merged"),
        Patient.pas_patient_id.label("asked"),
        Patient.pas_patient_id,
        Patient.id,
    ).where(by(Patient.pas_patient_id))
    return _Statements(
        patient_ids=select(Patient.pas_patient_id, Patient.id).where(by(Patient.pas_patient_id)),
        known_patients=union_all(merged, current),
        current_patients=current_patients_query().where(by(Patient.pas_patient_id)),
        current_appointments=current_appointments_query().where(by(Appointment.pas_appointment_id)),
        appointment_ids=select(Appointment.id).where(by(Appointment.pas_appointment_id)),
    )


def _statements(session: Session) -> _Statements:
    return _statements_for(session.get_bind().dialect.name)


def _run(session: Session, statement: Executable, keys: Iterable[str]) -> Result[Any]:
    """A prebuilt read on the session's connection (Core: no ORM entities are loaded)."""
    return session.connection().execute(statement, {"keys": list(keys)})


def _waves(
    messages: list[Message],
    survivors: dict[str, str],
    clinics: dict[str, tuple[int, str | None, str | None]],
) -> list[_Wave]:
    waves: list[_Wave] = []
    patient_written: dict[str, int] = {}
    patient_read: dict[str, int] = {}
    appointment_seen: dict[str, int] = {}
    floor = 0  # the first wave after the last barrier
    known = {code: (site, specialty) for code, (_id, site, specialty) in clinics.items()}
    for message in messages:
        pas_id = survivors.get(message.patient_id, message.patient_id)
        if message.event in PATIENT_EVENTS:
            wave = max(floor, patient_written.get(pas_id, -1) + 1, patient_read.get(pas_id, -1) + 1)
            patient_written[pas_id] = wave
        else:
            key = message.appointment["appointment_id"]
            wave = max(
                floor, patient_written.get(pas_id, -1) + 1, appointment_seen.get(key, -1) + 1
            )
            if _changes_a_clinic(message, known):
                wave = max(wave, len(waves))  # after everything so far, alone
                floor = wave + 1
            appointment_seen[key] = wave
            patient_read[pas_id] = max(patient_read.get(pas_id, -1), wave)
        while len(waves) <= wave:
            waves.append(_Wave())
        if message.event in PATIENT_EVENTS:
            waves[wave].patients.append(message)
        else:
            waves[wave].schedules.append(message)
    return waves


def _changes_a_clinic(message: Message, known: dict[str, tuple[str | None, str | None]]) -> bool:
    """Whether applying the message creates or changes a clinic (updating `known` if so).
    A message with a site or specialty but no clinic code of its own counts as a change: its
    clinic is the appointment's, which is only known when it is applied."""
    values = message.appointment
    code = values.get("clinic_code")
    site = values.get("site") or None
    specialty = values.get("specialty_code") or None
    if code is None:
        return site is not None or specialty is not None
    if code not in known:
        known[code] = (site, specialty)
        return True
    old_site, old_specialty = known[code]
    new = (site or old_site, specialty or old_specialty)
    if new == (old_site, old_specialty):
        return False
    known[code] = new
    return True


def _apply_wave(
    session: Session,
    wave: _Wave,
    survivors: dict[str, str],
    patient_ids: dict[str, int],
    writer: RowWriter,
    *,
    now: datetime,
) -> None:
    if wave.patients:
        pas_ids = [survivors.get(m.patient_id, m.patient_id) for m in wave.patients]
        patients = {
            row.pas_patient_id: row
            for row in _run(session, _statements(session).current_patients, pas_ids)
        }
        rows: list[dict[str, str]] = []
        for message, pas_id in zip(wave.patients, pas_ids, strict=True):
            row = patient_message_row(message, patients.get(pas_id), pas_id)
            if row is not None:
                rows.append(row)
        report = writer.patients(session, rows, now=now, existing=patients)
        if report.inserted:
            patient_ids.update(
                _patient_ids(session, {pas_id for pas_id in pas_ids if pas_id not in patient_ids})
            )
    if not wave.schedules:
        return
    keys = [m.appointment["appointment_id"] for m in wave.schedules]
    appointments = {
        row.pas_appointment_id: row
        for row in _run(session, _statements(session).current_appointments, keys)
    }
    rows = []
    withdraw: dict[str, list[str]] = defaultdict(list)
    for message, key in zip(wave.schedules, keys, strict=True):
        current = appointments.get(key)
        pas_id = message.appointment["patient_id"]
        rows.append(schedule_row(message, current, survivors.get(pas_id, pas_id), now=now))
        if cancels_reminders(message, current):
            withdraw[reminder_cancel_reason(message)].append(key)
    writer.appointments(session, rows, now=now, existing=appointments, patient_ids=patient_ids)
    for reason, cancelled in withdraw.items():
        ids = list(_run(session, _statements(session).appointment_ids, cancelled).scalars())
        if len(ids) != len(cancelled):
            raise MessageNotAppliedError("a cancelled appointment was not written")
        cancel_pending_reminders(session, ids, reason=reason, now=now)
