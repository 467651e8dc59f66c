"""A PAS extract that brings the rebooked appointment closes the request on import."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from app.appointments.tables import Appointment
from app.bookings import service
from app.bookings.tables import BookingRequest, RequestStatus
from app.db.session import Database
from app.imports.service import import_appointments, import_patients
from tests.clock import CALENDAR, TEST_NOW
from tests.imports.helpers import appointment_row, patient_row, write_appointments, write_patients


def _local(moment_days: int, hour: int) -> str:
    day = CALENDAR.today(TEST_NOW) + timedelta(days=moment_days)
    return f"{day.isoformat()}T{hour:02d}:00"


def test_the_import_that_brings_the_pas_booking_confirms_the_request(
    database: Database, tmp_path: Path
) -> None:
    import_patients(database, write_patients(tmp_path / "p.csv", [patient_row("P1")]), now=TEST_NOW)
    first = appointment_row(
        "A1", booked_at=_local(-20, 10), start_at=_local(7, 10), attendance_code="0"
    )
    import_appointments(database, write_appointments(tmp_path / "a1.csv", [first]), now=TEST_NOW)
    with database.unit_of_work() as session:
        original = session.scalars(select(Appointment)).one()
        request = service.request_rebook(
            session,
            appointment=original,
            preferred_start_at=CALENDAR.at(CALENDAR.today(TEST_NOW) + timedelta(days=14)),
            clinic=None,
            reason=None,
            call_id=None,
            user_id=None,
            now=TEST_NOW,
        )
        request_id = request.id

    later = TEST_NOW + timedelta(hours=2)
    moved = appointment_row(
        "A2", booked_at=_local(0, 14), start_at=_local(14, 11), attendance_code="0"
    )
    cancelled = {**first, "attendance_code": "2"}
    report = import_appointments(
        database, write_appointments(tmp_path / "a2.csv", [cancelled, moved]), now=later
    )

    assert report.requests_reconciled == 1
    with database.unit_of_work() as session:
        request = session.get_one(BookingRequest, request_id)
        assert request.status == RequestStatus.CONFIRMED
        matched = session.get_one(Appointment, request.matched_appointment_id)
        assert matched.pas_appointment_id == "A2"
