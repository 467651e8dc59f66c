"""The HL7 feed end to end: a real MLLP listener on a loopback port, real messages, real ACKs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.appointments.tables import Appointment, AppointmentChange, Clinic
from app.clock import FixedClock
from app.db.session import Database
from app.feed.listener import FeedListener
from app.feed.tables import FeedMessage, FeedStatus
from app.patients.tables import Patient
from app.sms.tables import MessageKind, OutboxState, SmsMessage
from tests.feed.helpers import NHS_NUMBER, MllpClient, adt, siu


def register(client: MllpClient, clock: FixedClock, patient_id: str = "P100") -> None:
    ack = client.send(adt("A04", f"REG-{patient_id}", patient_id=patient_id, sent_at=clock.now()))
    assert ack.code == "AA", ack.text


def book(
    client: MllpClient,
    clock: FixedClock,
    appointment_id: str = "A100",
    patient_id: str = "P100",
    days: int = 8,
) -> None:
    ack = client.send(
        siu(
            "S12",
            f"BOOK-{appointment_id}",
            appointment_id=appointment_id,
            patient_id=patient_id,
            start=clock.now() + timedelta(days=days),
            sent_at=clock.now(),
        )
    )
    assert ack.code == "AA", ack.text


def appointment(database: Database, pas_id: str) -> Appointment:
    with database.unit_of_work() as session:
        return session.execute(
            select(Appointment).where(Appointment.pas_appointment_id == pas_id)
        ).scalar_one()


def counts(database: Database) -> tuple[int, int, int, int]:
    with database.unit_of_work() as session:
        return (
            session.scalar(select(func.count()).select_from(Patient)) or 0,
            session.scalar(select(func.count()).select_from(Appointment)) or 0,
            session.scalar(select(func.count()).select_from(AppointmentChange)) or 0,
            session.scalar(select(func.count()).select_from(Clinic)) or 0,
        )


def dead_letters(database: Database) -> list[FeedMessage]:
    with database.unit_of_work() as session:
        return list(
            session.execute(
                select(FeedMessage)
                .where(FeedMessage.status.in_([FeedStatus.ERROR, FeedStatus.REJECTED]))
                .order_by(FeedMessage.id)
            ).scalars()
        )


def test_a_registration_then_a_booking_are_applied_and_acknowledged_with_their_control_id(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    ack = client.send(adt("A04", "CTRL-1", patient_id="P100", sent_at=clock.now()))
    assert (ack.code, ack.control_id) == ("AA", "CTRL-1")
    start = clock.now() + timedelta(days=8)
    ack = client.send(
        siu(
            "S12",
            "CTRL-2",
            appointment_id="A100",
            patient_id="P100",
            start=start,
            sent_at=clock.now(),
        )
    )
    assert (ack.code, ack.control_id) == ("AA", "CTRL-2")

    with database.unit_of_work() as session:
        patient = session.execute(select(Patient)).scalar_one()
        assert (patient.pas_patient_id, patient.nhs_number, patient.sex) == (
            "P100",
            NHS_NUMBER,
            "F",
        )
        assert patient.mobile_phone == "+447700900123"
        assert patient.postcode == "LE1 5WW"
        booked = session.execute(select(Appointment)).scalar_one()
        clinic = session.get(Clinic, booked.clinic_id)
    assert booked.patient_id == patient.id
    assert booked.start_at == start.replace(microsecond=0)
    assert booked.booked_at == clock.now().replace(microsecond=0)
    assert booked.attendance_code == "0"
    assert booked.first_attendance is True
    assert clinic is not None
    assert (clinic.code, clinic.site, clinic.specialty_code) == (
        "CARD1",
        "Leicester Royal Infirmary",
        "320",
    )


def test_an_update_keeps_what_the_message_does_not_carry(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock)
    with database.unit_of_work() as session:
        patient = session.execute(select(Patient)).scalar_one()
        patient.sms_opt_out = True
        patient.interpreter_needed = True
    ack = client.send(adt("A08", "UPD-1", patient_id="P100", sent_at=clock.now(), sex="M"))
    assert ack.code == "AA", ack.text
    with database.unit_of_work() as session:
        patient = session.execute(select(Patient)).scalar_one()
    assert patient.sex == "M"
    assert patient.sms_opt_out is True
    assert patient.interpreter_needed is True


def test_reschedule_and_modify_record_the_change_as_an_import_does(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock)
    book(client, clock)
    later = clock.now() + timedelta(days=10)
    ack = client.send(
        siu(
            "S13",
            "MOVE-1",
            appointment_id="A100",
            patient_id="P100",
            start=later,
            sent_at=clock.now(),
        )
    )
    assert ack.code == "AA", ack.text
    ack = client.send(
        siu(
            "S14",
            "MOD-1",
            appointment_id="A100",
            patient_id="P100",
            start=later,
            sent_at=clock.now(),
            clinic="CARD2",
        )
    )
    assert ack.code == "AA", ack.text

    moved = appointment(database, "A100")
    assert moved.start_at == later.replace(microsecond=0)
    assert moved.booked_at == clock.now().replace(microsecond=0)  # the first booking's time
    with database.unit_of_work() as session:
        changes = session.execute(select(AppointmentChange.field, AppointmentChange.source)).all()
        clinic_code = session.scalar(select(Clinic.code).where(Clinic.id == moved.clinic_id))
    assert changes == [("start_at", "pas_import")]
    assert clinic_code == "CARD2"


@pytest.mark.parametrize(
    ("event", "reason", "code"),
    [
        ("S15", "PAT^Patient request", "2"),
        ("S15", "HOSP^Clinic cancelled", "4"),
        ("S17", "", "4"),
        ("S26", "", "3"),
    ],
)
def test_a_cancellation_or_no_show_sets_the_attendance_code_and_withdraws_reminders(
    database: Database,
    client: MllpClient,
    clock: FixedClock,
    event: str,
    reason: str,
    code: str,
) -> None:
    register(client, clock)
    book(client, clock)
    booked = appointment(database, "A100")
    with database.unit_of_work() as session:
        session.add(
            SmsMessage(
                idempotency_key="feed-test-reminder",
                patient_id=booked.patient_id,
                appointment_id=booked.id,
                kind=MessageKind.REMINDER,
                offset_days=2,
                language="en",
                to_number="+447700900123",
                body="Reminder",
                state=OutboxState.PENDING,
                next_attempt_at=clock.now(),
            )
        )
    ack = client.send(
        siu(
            event,
            f"{event}-1",
            appointment_id="A100",
            patient_id="P100",
            start=clock.now() + timedelta(days=8),
            sent_at=clock.now(),
            reason=reason,
        )
    )
    assert ack.code == "AA", ack.text

    assert appointment(database, "A100").attendance_code == code
    with database.unit_of_work() as session:
        state = session.scalar(select(SmsMessage.state))
        changes = session.execute(
            select(AppointmentChange.field, AppointmentChange.new_value)
        ).all()
    assert state != OutboxState.PENDING
    assert changes == [("attendance_code", code)]


def test_a_repeated_control_id_is_acknowledged_and_applied_once(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock)
    book(client, clock)
    move = siu(
        "S13",
        "MOVE-1",
        appointment_id="A100",
        patient_id="P100",
        start=clock.now() + timedelta(days=9),
        sent_at=clock.now(),
    )
    assert client.send(move).code == "AA"
    before = counts(database)
    again = client.send(move)
    assert (again.code, again.control_id) == ("AA", "MOVE-1")
    assert counts(database) == before
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(FeedMessage)) == 3


def test_messages_from_four_connections_are_all_applied(
    database: Database, listener: FeedListener, clock: FixedClock
) -> None:
    assert listener.port is not None
    senders = [MllpClient(listener.port) for _ in range(4)]
    try:
        for number, sender in enumerate(senders):
            register(sender, clock, f"P{number}")
        for number, sender in enumerate(senders):
            book(sender, clock, f"A{number}", f"P{number}")
    finally:
        for sender in senders:
            sender.close()
    assert counts(database)[:2] == (4, 4)


def test_nothing_from_a_message_body_is_logged(
    database: Database, client: MllpClient, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    register(client, clock)
    client.send(siu("S14", "BAD-1", appointment_id="NOPE", patient_id="P100",
                    start=clock.now(), sent_at=clock.now()))  # fmt: skip
    client.send(b"PID|1||P100^^^RXX^PI~" + NHS_NUMBER.encode() + b"||Patient^Test")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (NHS_NUMBER, "Patient", "Test Street", "07700900123", "LE1 5WW"):
        assert secret not in logged
