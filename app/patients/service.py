"""Patient merges (the PAS's ADT^A40): one person, one record.

Rule (documented in docs/feed.md): the surviving record takes every row that belonged to the
merged-away one (appointments, call assignments, calls, texts, replies, tasks); nothing is
deleted but the merged-away patient row itself, whose PAS id and NHS number are kept in
`patient_merges` so a later message under the old id still finds the survivor.

Hold-out arm: randomisation is by the surviving patient's PAS id from the merge on, so every
appointment of the merged person not yet assigned an arm follows the survivor's arm. An
appointment already assigned keeps the arm it was assigned (intention to treat: what was done
then is what it was randomised to), so analytics counts each appointment once, under one arm.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.calls.tables import Call, CallAssignment
from app.errors import InvalidInputError, NotFoundError
from app.patients.tables import Patient, PatientContact, PatientMerge, PatientPhoneChange
from app.sms.tables import SmsInbound, SmsMessage
from app.tasks.tables import NavigatorTask

# Every table with a patient_id, in the order they are moved.
_OWNED: tuple[tuple[str, Any], ...] = (
    ("appointments", Appointment.__table__),
    ("call_assignments", CallAssignment.__table__),
    ("calls", Call.__table__),
    ("sms_messages", SmsMessage.__table__),
    ("sms_inbound", SmsInbound.__table__),
    ("navigator_tasks", NavigatorTask.__table__),
    ("patient_contacts", PatientContact.__table__),
    ("patient_phone_changes", PatientPhoneChange.__table__),
)


def resolve_pas_patient_id(session: Session, pas_patient_id: str) -> str:
    """The PAS id to use for a patient: the survivor's when this id was merged away."""
    survivor = session.execute(
        select(Patient.pas_patient_id)
        .join(PatientMerge, PatientMerge.surviving_patient_id == Patient.id)
        .where(PatientMerge.merged_pas_patient_id == pas_patient_id)
    ).scalar_one_or_none()
    return survivor or pas_patient_id


def merge_patients(
    session: Session,
    *,
    surviving_pas_id: str,
    merged_pas_id: str,
    source: str,
    source_ref: str,
    now: datetime,
) -> dict[str, int]:
    """Move everything of `merged_pas_id` to `surviving_pas_id` and record the merge.

    When the surviving id is not known yet, the PAS has renumbered the patient: the record is
    kept and takes the new id. Returns how many rows of each kind moved.
    """
    if surviving_pas_id == merged_pas_id:
        raise InvalidInputError(
            f"cannot merge patient '{merged_pas_id}' into itself: MRG-1 equals PID-3"
        )
    rows = dict(
        session.execute(
            select(Patient.pas_patient_id, Patient.id).where(
                Patient.pas_patient_id.in_([surviving_pas_id, merged_pas_id])
            )
        ).all()
    )
    merged_id = rows.get(merged_pas_id)
    surviving_id = rows.get(surviving_pas_id)
    if merged_id is None:
        already = session.execute(
            select(PatientMerge.id).where(PatientMerge.merged_pas_patient_id == merged_pas_id)
        ).first()
        if already is not None and surviving_id is not None:
            return {}
        raise NotFoundError(f"unknown patient '{merged_pas_id}' (MRG-1): nothing to merge")
    merged_nhs = session.execute(
        select(Patient.nhs_number).where(Patient.id == merged_id)
    ).scalar_one()
    if surviving_id is None:
        session.execute(
            update(Patient)
            .where(Patient.id == merged_id)
            .values(pas_patient_id=surviving_pas_id, updated_at=now)
        )
        moved: dict[str, int] = {"renumbered": 1}
        surviving_id = merged_id
    else:
        moved = {}
        for name, table in _OWNED:
            result = session.execute(
                update(table).where(table.c.patient_id == merged_id).values(patient_id=surviving_id)
            )
            moved[name] = int(getattr(result, "rowcount", 0) or 0)
        # Merges already pointing at the merged-away record now point at the survivor.
        session.execute(
            update(PatientMerge)
            .where(PatientMerge.surviving_patient_id == merged_id)
            .values(surviving_patient_id=surviving_id)
        )
        session.execute(delete(Patient).where(Patient.id == merged_id))
    session.execute(
        insert(PatientMerge).values(
            surviving_patient_id=surviving_id,
            merged_pas_patient_id=merged_pas_id,
            merged_nhs_number=merged_nhs,
            moved=moved,
            source=source,
            source_ref=source_ref[:64],
            merged_at=now,
        )
    )
    return moved
