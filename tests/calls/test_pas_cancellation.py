"""A call screen says when the PAS cancelled the appointment after the call was queued."""

from __future__ import annotations

import re
from datetime import time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, Clinic
from app.auth.roles import Role
from app.calls.queue import build_queue
from app.clock import FixedClock
from app.feed.service import FeedProcessor
from app.patients.tables import Patient
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.clock import CALENDAR
from tests.factories import create_patient
from tests.feed.helpers import siu

NOTICE = "cancelled in the PAS since this call was queued"


def _queued_call(
    session: Session, settings: Settings, client: TestClient, clock: FixedClock
) -> tuple[Appointment, int]:
    today = CALENDAR.today(clock.now())
    appointment = create_eligible_appointment(
        session,
        patient=create_patient(session),
        risk=0.5,
        start_at=CALENDAR.at(today + timedelta(days=7), time(12)),
    )
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), today, now=clock.now()
    )
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    csrf = sign_in(client, user.username)
    taken = client.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
    match = re.fullmatch(r"/calls/(\d+)", taken.headers["location"])
    assert match, taken.headers["location"]
    return appointment, int(match.group(1))


def _cancel_in_pas(
    session: Session, settings: Settings, clock: FixedClock, appointment: Appointment
) -> None:
    patient = session.get_one(Patient, appointment.patient_id)
    clinic = session.get_one(Clinic, appointment.clinic_id)
    message = siu(
        "S15",
        "CANCEL1",
        appointment_id=appointment.pas_appointment_id,
        patient_id=patient.pas_patient_id,
        start=appointment.start_at,
        sent_at=clock.now(),
        clinic=clinic.code,
        site=clinic.site or "",
        specialty=clinic.specialty_code or "",
    )
    outcome = FeedProcessor(settings).handle(session, message, now=clock.now())
    session.commit()
    assert outcome.ack_code == "AA", outcome.text


def test_a_cancellation_after_the_call_was_queued_is_shown_on_the_call_screen(
    app_client: TestClient, session: Session, settings: Settings, clock: FixedClock
) -> None:
    appointment, call_id = _queued_call(session, settings, app_client, clock)
    assert NOTICE not in app_client.get(f"/calls/{call_id}").text

    clock.advance(timedelta(minutes=5))
    _cancel_in_pas(session, settings, clock, appointment)
    page = app_client.get(f"/calls/{call_id}")

    assert page.status_code == 200
    assert NOTICE in page.text
