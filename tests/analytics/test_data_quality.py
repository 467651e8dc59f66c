"""Recording quality of the period's patients: distinct patients per clinic and trust-wide,
ethnicity not stated or not known, and missing or invalid contact details. The same hand-made
records give the same figures on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.analytics import repository
from app.settings import Settings
from tests.analytics.helpers import PERIOD, day_in_period
from tests.factories import create_appointment, create_clinic, create_patient


def test_recording_counts_each_patient_once_per_clinic_and_once_trust_wide(
    session: Session, settings: Settings
) -> None:
    first = create_clinic(session, code="CLNA", specialty_code="120")
    second = create_clinic(session, code="CLNB", specialty_code="130")
    create_clinic(session, code="CLNC", specialty_code="140")  # nobody seen: no row
    not_stated = create_patient(session, ethnic_category="Z")
    not_known = create_patient(
        session, ethnic_category="99", mobile_phone=None, landline_phone=None
    )
    recorded = create_patient(session, ethnic_category="A", lsoa_code=None, imd_decile=None)
    invalid = create_patient(
        session, ethnic_category="A", mobile_phone=None, mobile_phone_invalid=True
    )
    unknown_lsoa = create_patient(session, ethnic_category="Z", imd_decile=None)
    outside = create_patient(session, ethnic_category="99")
    # Twice at the first clinic and once at the second: one patient at each clinic, one overall.
    for clinic, day in ((first, 0), (first, 3), (second, 5)):
        create_appointment(session, patient=not_stated, clinic=clinic, start_at=day_in_period(day))
    create_appointment(session, patient=not_known, clinic=first, start_at=day_in_period(1))
    create_appointment(session, patient=recorded, clinic=first, start_at=day_in_period(2))
    create_appointment(session, patient=recorded, clinic=second, start_at=day_in_period(2, 14))
    create_appointment(session, patient=invalid, clinic=second, start_at=day_in_period(7))
    create_appointment(session, patient=unknown_lsoa, clinic=second, start_at=day_in_period(8))
    create_appointment(
        session, patient=outside, clinic=first, start_at=day_in_period(-1) - timedelta(days=1)
    )
    session.flush()
    start, end = PERIOD.bounds(settings.calendar)

    clinics, totals = repository.recording_quality(session, start=start, end=end)

    assert sorted(
        (code, specialty, counts["patients"], counts["unrecorded"])
        for code, specialty, counts in clinics
    ) == [
        ("CLNA", "120", 3, 2),
        ("CLNB", "130", 4, 2),
    ]
    assert totals == {
        "patients": 5,
        "unrecorded": 3,
        "no_phone": 1,
        "invalid_mobile": 1,
        "invalid_landline": 0,
        "no_mobile": 1,
        "no_lsoa": 1,
        "unknown_lsoa": 1,
    }
