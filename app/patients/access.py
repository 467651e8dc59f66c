"""A navigator's sight of a patient found through a search (call-backs, inbound calls).

A navigator may look a patient up by phone, NHS number or name only with a recorded reason
(a code, never free text). Picking a patient from the results is audited
("patient.found_by_search", with the reason) and puts that patient in the navigator's scope
for `search_access_hours`; the audit page reports searches that no call followed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from app.auth.audit import SEARCH_ACTION, record_audit
from app.patients import repository
from app.patients.tables import PatientAccessGrant
from app.settings import Settings


class SearchReason(StrEnum):
    PATIENT_CALLED_IN = "patient_called_in"  # the patient rang the navigators
    CALL_BACK = "call_back"  # returning a missed call or a requested call-back
    CORRECT_DETAILS = "correct_details"  # a phone number or contact detail to correct
    CALL_OUTSIDE_APP = "call_outside_app"  # recording a call made outside Navigator


def grant_from_search(
    session: Session,
    settings: Settings,
    *,
    user_id: int,
    patient_id: int,
    reason: SearchReason,
    now: datetime,
) -> PatientAccessGrant:
    """Record that `user_id` picked `patient_id` from a search for `reason`, and let them see
    that patient for `settings.search_access_hours`."""
    grant = repository.add_access_grant(
        session,
        user_id=user_id,
        patient_id=patient_id,
        reason=SearchReason(reason).value,
        granted_at=now,
        expires_at=now + timedelta(hours=settings.search_access_hours),
    )
    record_audit(
        session,
        user_id=user_id,
        action=SEARCH_ACTION,
        patient_id=patient_id,
        detail={"reason": grant.reason, "expires_at": grant.expires_at.isoformat()},
        now=now,
    )
    return grant
