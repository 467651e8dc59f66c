"""ADT^A40: the surviving patient takes the other's appointments, calls, texts and history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.appointments.tables import Appointment
from app.calls.tables import Arm, Call, CallAssignment
from app.clock import FixedClock
from app.db.session import Database
from app.feed.listener import FeedListener
from app.patients.tables import Patient, PatientMerge
from app.sms.tables import MessageKind, SmsMessage
from tests.clock import TODAY
from tests.feed.helpers import MllpClient, adt, running_listener, siu
from tests.feed.test_listener import appointment, book, register


@pytest.fixture
def client(database: Database, clock: FixedClock) -> Iterator[MllpClient]:
    with running_listener(database, clock) as listener:
        assert isinstance(listener, FeedListener)
        assert listener.port is not None
        sender = MllpClient(listener.port)
        yield sender
        sender.close()


def test_a_merge_moves_everything_to_the_surviving_patient_and_keeps_the_old_id(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock, "P100")
    register(client, clock, "P200")
    book(client, clock, "A1", "P100")
    book(client, clock, "A2", "P200")
    merged = appointment(database, "A2")
    with database.unit_of_work() as session:
        call = Call(patient_id=merged.patient_id, queue_date=TODAY, priority=1.0)
        session.add(call)
        session.flush()
        session.add(
            CallAssignment(
                appointment_id=merged.id,
                patient_id=merged.patient_id,
                queue_date=TODAY,
                arm=Arm.HOLDOUT,
                reasons=[],
                priority=1.0,
                call_id=call.id,
            )
        )
        session.add(
            SmsMessage(
                idempotency_key="merge-test",
                patient_id=merged.patient_id,
                appointment_id=merged.id,
                kind=MessageKind.REMINDER,
                offset_days=2,
                language="en",
                to_number="+447700900123",
                body="Reminder",
                next_attempt_at=clock.now(),
            )
        )

    ack = client.send(
        adt("A40", "MERGE-1", patient_id="P100", sent_at=clock.now(), merged_from="P200")
    )
    assert ack.code == "AA", ack.text

    with database.unit_of_work() as session:
        survivor = session.execute(select(Patient)).scalar_one()  # P200 is gone
        owners = {
            table.__tablename__: set(session.scalars(select(table.patient_id)))
            for table in (Appointment, Call, CallAssignment, SmsMessage)
        }
        arm = session.scalar(select(CallAssignment.arm))
        merge = session.execute(select(PatientMerge)).scalar_one()
        appointments = session.scalar(select(func.count()).select_from(Appointment))
    assert survivor.pas_patient_id == "P100"
    assert all(found == {survivor.id} for found in owners.values()), owners
    assert arm == Arm.HOLDOUT  # an appointment already randomised keeps its arm
    assert appointments == 2  # each appointment once
    assert (merge.merged_pas_patient_id, merge.moved["appointments"]) == ("P200", 1)

    # A later message under the merged-away id reaches the survivor.
    later = clock.now() + timedelta(days=11)
    ack = client.send(
        siu(
            "S13",
            "MOVE-2",
            appointment_id="A2",
            patient_id="P200",
            start=later,
            sent_at=clock.now(),
        )
    )
    assert ack.code == "AA", ack.text
    assert appointment(database, "A2").patient_id == survivor.id
    # The PAS sending the merge again (new control id) changes nothing.
    again = adt("A40", "MERGE-2", patient_id="P100", sent_at=clock.now(), merged_from="P200")
    assert client.send(again).code == "AA"


def test_a_merge_into_an_unknown_id_renumbers_the_patient(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock, "P200")
    book(client, clock, "A2", "P200")
    ack = client.send(
        adt("A40", "MERGE-1", patient_id="P300", sent_at=clock.now(), merged_from="P200")
    )
    assert ack.code == "AA", ack.text
    with database.unit_of_work() as session:
        assert list(session.scalars(select(Patient.pas_patient_id))) == ["P300"]
    assert appointment(database, "A2").patient_id is not None


def test_a_merge_of_an_unknown_patient_is_an_error(
    database: Database, client: MllpClient, clock: FixedClock
) -> None:
    register(client, clock, "P100")
    ack = client.send(
        adt("A40", "MERGE-1", patient_id="P100", sent_at=clock.now(), merged_from="P999")
    )
    assert ack.code == "AE"
    assert "unknown patient 'P999'" in ack.text
