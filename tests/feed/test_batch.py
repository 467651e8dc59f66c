"""Group commit: the messages that queued together are stored and applied in one transaction,
and a batch that cannot be applied whole falls back to one message per transaction.

The listener's writer step (`FeedListener.apply_batch`) is called directly with the frames of
one batch, so what lands in a batch never depends on timing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentChange, Clinic
from app.bookings import service as bookings_service
from app.bookings.tables import BookingRequest, RequestStatus
from app.clock import FixedClock
from app.db.session import Database
from app.feed.listener import Connection, FeedListener, Frame
from app.feed.service import FeedProcessor, Outcome
from app.feed.tables import FeedMessage
from app.patients.tables import Patient, PatientMerge
from app.sms.tables import MessageKind, OutboxState, SmsMessage
from tests.conftest import empty_all_tables
from tests.feed.helpers import adt, siu
from tests.feed.test_listener import appointment, dead_letters


def frames(*messages: bytes, connection: Connection | None = None) -> list[Frame]:
    shared = connection or Connection()
    return [Frame(message, shared) for message in messages]


def codes(outcomes: list[Outcome | None]) -> list[str | None]:
    return [None if outcome is None else outcome.ack_code for outcome in outcomes]


def booking(event: str, control_id: str, clock: FixedClock, **values: object) -> bytes:
    fields: dict[str, object] = {
        "appointment_id": "A1",
        "patient_id": "P1",
        "start": clock.now() + timedelta(days=8),
        "sent_at": clock.now(),
    } | values
    return siu(event, control_id, **fields)  # type: ignore[arg-type]


def stored(database: Database) -> list[tuple[str | None, str]]:
    with database.unit_of_work() as session:
        return [
            (row.control_id, row.status)
            for row in session.execute(
                select(FeedMessage.control_id, FeedMessage.status).order_by(FeedMessage.id)
            )
        ]


def test_a_batch_is_applied_in_one_transaction_and_every_message_is_acknowledged(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    outcomes = listener.apply_batch(
        frames(
            adt("A04", "R1", patient_id="P1", sent_at=clock.now()),
            booking("S12", "B1", clock),
            booking("S12", "B2", clock, appointment_id="A2"),
            booking("S13", "M1", clock, start=clock.now() + timedelta(days=9)),
        )
    )
    assert codes(outcomes) == ["AA", "AA", "AA", "AA"]
    assert (listener.batches, listener.fallbacks) == (1, 0)
    assert stored(database) == [
        ("R1", "applied"),
        ("B1", "applied"),
        ("B2", "applied"),
        ("M1", "applied"),
    ]
    assert appointment(database, "A1").start_at == (clock.now() + timedelta(days=9)).replace(
        microsecond=0
    )


def test_a_bad_message_in_a_batch_gets_its_ae_and_dead_letter_while_the_rest_are_applied(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    outcomes = listener.apply_batch(
        frames(
            adt("A04", "R1", patient_id="P1", sent_at=clock.now()),
            booking("S12", "B1", clock),
            booking("S14", "EARLY-1", clock, appointment_id="A9"),  # not booked yet: AE
            b"garbage",  # AR
            booking("S12", "B2", clock, appointment_id="A2"),
        )
    )
    assert codes(outcomes) == ["AA", "AA", "AE", "AR", "AA"]
    assert outcomes[2] is not None
    assert "appointment 'A9' is not known" in outcomes[2].text
    assert listener.fallbacks == 1
    assert [(letter.control_id, letter.ack_code) for letter in dead_letters(database)] == [
        ("EARLY-1", "AE"),
        (None, "AR"),
    ]
    with database.unit_of_work() as session:
        booked = set(session.scalars(select(Appointment.pas_appointment_id)))
        inbox = session.scalar(select(func.count()).select_from(FeedMessage))
    assert booked == {"A1", "A2"}
    assert inbox == 5  # each stored once: the rolled-back batch left nothing behind


def test_a_repeat_inside_one_batch_is_acknowledged_and_applied_once(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    move = booking("S13", "M1", clock, start=clock.now() + timedelta(days=9))
    outcomes = listener.apply_batch(
        frames(
            adt("A04", "R1", patient_id="P1", sent_at=clock.now()),
            booking("S12", "B1", clock),
            move,
            move,
        )
    )
    assert codes(outcomes) == ["AA", "AA", "AA", "AA"]
    assert outcomes[3] is not None
    assert outcomes[3].duplicate
    assert listener.fallbacks == 0
    with database.unit_of_work() as session:
        changes = session.scalar(select(func.count()).select_from(AppointmentChange))
    assert changes == 1
    assert [control_id for control_id, _status in stored(database)] == ["R1", "B1", "M1"]
    # And a repeat of a message from an earlier batch.
    again = listener.apply_batch(frames(move, booking("S12", "B1", clock)))
    assert codes(again) == ["AA", "AA"]
    assert all(outcome is not None and outcome.duplicate for outcome in again)


def test_a_repeat_of_a_dead_letter_inside_a_batch_is_answered_ae_again(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    early = booking("S14", "EARLY-1", clock, appointment_id="A9")
    first = listener.apply_batch(frames(adt("A04", "R1", patient_id="P1", sent_at=clock.now())))
    assert codes(first) == ["AA"]
    outcomes = listener.apply_batch(frames(early, early))
    assert codes(outcomes) == ["AE", "AE"]
    assert len(dead_letters(database)) == 1


def test_order_within_a_patient_is_kept_in_a_batch(database: Database, clock: FixedClock) -> None:
    day = clock.now()
    listener = FeedListener(database, clock)
    outcomes = listener.apply_batch(
        frames(
            # A booking before its patient's registration fails as it would one at a time.
            booking("S12", "EARLY-B", clock, appointment_id="A7", patient_id="P2"),
            adt("A04", "R2", patient_id="P2", sent_at=day),
            adt("A04", "R1", patient_id="P1", sent_at=day),
            booking("S12", "B1", clock, start=day + timedelta(days=8)),
            booking("S13", "M1", clock, start=day + timedelta(days=9)),
            adt("A08", "U1", patient_id="P1", sent_at=day, sex="M"),
            booking("S13", "M2", clock, start=day + timedelta(days=10)),
            booking("S14", "C1", clock, start=day + timedelta(days=10), clinic="CARD2"),
        )
    )
    assert codes(outcomes) == ["AE", "AA", "AA", "AA", "AA", "AA", "AA", "AA"]
    moved = appointment(database, "A1")
    with database.unit_of_work() as session:
        changes = session.execute(
            select(AppointmentChange.old_value, AppointmentChange.new_value).order_by(
                AppointmentChange.id
            )
        ).all()
        clinic = session.scalar(select(Clinic.code).where(Clinic.id == moved.clinic_id))
        sex = session.scalar(select(Patient.sex).where(Patient.pas_patient_id == "P1"))
    assert moved.start_at == (day + timedelta(days=10)).replace(microsecond=0)
    at = [(day + timedelta(days=n)).isoformat()[:19] for n in (8, 9, 10)]
    # Each reschedule recorded once, in the order the PAS sent them (times to the second).
    assert [(str(old)[:19], str(new)[:19]) for old, new in changes] == [
        (at[0], at[1]),
        (at[1], at[2]),
    ]
    assert (clinic, sex) == ("CARD2", "M")


def test_a_batch_gives_the_same_rows_as_one_message_at_a_time(
    database: Database, clock: FixedClock
) -> None:
    day = clock.now()
    messages = [
        adt("A04", "R1", patient_id="P1", sent_at=day),
        adt("A04", "R2", patient_id="P2", sent_at=day),
        booking("S12", "B1", clock),
        booking("S12", "B2", clock, appointment_id="A2", patient_id="P2", clinic="NEW1"),
        booking("S13", "M1", clock, start=day + timedelta(days=9)),
        booking("S14", "C2", clock, appointment_id="A2", patient_id="P2", site="Glenfield"),
        adt("A40", "MERGE", patient_id="P1", sent_at=day, merged_from="P2"),
        booking("S14", "C3", clock, appointment_id="A2", patient_id="P2", clinic="CARD3"),
        booking("S26", "N1", clock),
        adt("A08", "U1", patient_id="P1", sent_at=day, sex="M"),
    ]
    listener = FeedListener(database, clock)
    together = listener.apply_batch(frames(*messages))
    assert (listener.batches, listener.fallbacks) == (1, 0)
    batched = _snapshot(database)
    empty_all_tables(database)
    alone = [FeedListener(database, clock).apply_batch(frames(m))[0] for m in messages]
    assert codes(together) == codes(alone) == ["AA"] * len(messages)
    assert batched == _snapshot(database)


def test_a_cancellation_in_a_batch_withdraws_its_reminders(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    listener.apply_batch(
        frames(adt("A04", "R1", patient_id="P1", sent_at=clock.now()), booking("S12", "B1", clock))
    )
    booked = appointment(database, "A1")
    with database.unit_of_work() as session:
        session.add(
            SmsMessage(
                idempotency_key="batch-reminder",
                patient_id=booked.patient_id,
                appointment_id=booked.id,
                kind=MessageKind.REMINDER,
                language="en",
                to_number="+447700900123",
                body="Reminder",
                state=OutboxState.PENDING,
                next_attempt_at=clock.now(),
            )
        )
    outcomes = listener.apply_batch(
        frames(booking("S15", "X1", clock), booking("S12", "B2", clock, appointment_id="A2"))
    )
    assert codes(outcomes) == ["AA", "AA"]
    with database.unit_of_work() as session:
        assert session.scalar(select(SmsMessage.state)) == OutboxState.CANCELLED
    assert appointment(database, "A1").attendance_code == "4"


def test_a_cancellation_in_a_batch_confirms_the_open_cancel_request(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock)
    listener.apply_batch(
        frames(adt("A04", "R1", patient_id="P1", sent_at=clock.now()), booking("S12", "B1", clock))
    )
    with database.unit_of_work() as session:
        original = session.get(Appointment, appointment(database, "A1").id)
        assert original is not None
        bookings_service.request_cancel(
            session,
            appointment=original,
            reason="moved",
            call_id=None,
            user_id=None,
            now=clock.now(),
        )
    # Registrations alone change no appointment; the PAS's cancellation closes the request.
    listener.apply_batch(frames(adt("A08", "U1", patient_id="P1", sent_at=clock.now(), sex="M")))
    assert _request_status(database) == RequestStatus.OPEN
    outcomes = listener.apply_batch(
        frames(adt("A08", "U2", patient_id="P1", sent_at=clock.now()), booking("S15", "X1", clock))
    )
    assert codes(outcomes) == ["AA", "AA"]
    assert (listener.batches, listener.fallbacks) == (3, 0)
    assert _request_status(database) == RequestStatus.CONFIRMED


def _request_status(database: Database) -> str:
    with database.unit_of_work() as session:
        return session.execute(select(BookingRequest.status)).scalar_one()


class _StorageFailsFor(FeedProcessor):
    """A fake whose storage fails for one control id, in a batch and on its own alike."""

    def __init__(self, database: Database, control_id: str) -> None:
        super().__init__(database.settings)
        self.marker = f"|{control_id}|".encode()

    def _check(self, frames: list[bytes]) -> None:
        if any(self.marker in frame for frame in frames):
            raise OSError("the database went away")

    def handle_batch(
        self, session: Session, frames: list[bytes], *, now: datetime
    ) -> list[Outcome]:
        self._check(frames)
        return super().handle_batch(session, frames, now=now)

    def handle(self, session: Session, data: bytes, *, now: datetime) -> Outcome:
        self._check([data])
        return super().handle(session, data, now=now)


def test_a_message_that_cannot_be_stored_stops_its_connection_but_not_the_others(
    database: Database, clock: FixedClock
) -> None:
    listener = FeedListener(database, clock, processor=_StorageFailsFor(database, "B1"))
    failing, other = Connection(), Connection()
    batch = [
        Frame(adt("A04", "R1", patient_id="P1", sent_at=clock.now()), failing),
        Frame(adt("A04", "R2", patient_id="P2", sent_at=clock.now()), other),
        Frame(booking("S12", "B1", clock), failing),
        Frame(booking("S12", "B2", clock, appointment_id="A2", patient_id="P2"), other),
        Frame(booking("S13", "M1", clock), failing),  # after the failure: not applied
    ]
    outcomes = listener.apply_batch(batch)
    assert codes(outcomes) == ["AA", "AA", None, "AA", None]
    assert failing.broken
    assert not other.broken
    assert [control_id for control_id, _status in stored(database)] == ["R1", "R2", "B2"]
    # Frames of the broken connection still queued in a later batch are not applied either.
    later = listener.apply_batch(
        [Frame(booking("S14", "C1", clock), failing), Frame(booking("S13", "M2", clock), other)]
    )
    assert codes(later) == [None, "AE"]  # A1 was never booked


def _snapshot(database: Database) -> dict[str, object]:
    with database.unit_of_work() as session:
        return {
            "patients": session.execute(
                select(Patient.pas_patient_id, Patient.sex, Patient.source_hash).order_by(
                    Patient.pas_patient_id
                )
            ).all(),
            "appointments": session.execute(
                select(
                    Appointment.pas_appointment_id,
                    Patient.pas_patient_id,
                    Clinic.code,
                    Clinic.site,
                    Appointment.start_at,
                    Appointment.attendance_code,
                    Appointment.outcome_recorded_at,
                    Appointment.source_hash,
                )
                .join(Patient, Patient.id == Appointment.patient_id)
                .join(Clinic, Clinic.id == Appointment.clinic_id)
                .order_by(Appointment.pas_appointment_id)
            ).all(),
            "clinics": session.execute(
                select(Clinic.code, Clinic.site, Clinic.specialty_code).order_by(Clinic.code)
            ).all(),
            "changes": session.execute(
                select(
                    Appointment.pas_appointment_id,
                    AppointmentChange.field,
                    AppointmentChange.old_value,
                    AppointmentChange.new_value,
                )
                .join(Appointment, Appointment.id == AppointmentChange.appointment_id)
                .order_by(AppointmentChange.id)
            ).all(),
            "merges": session.execute(select(PatientMerge.merged_pas_patient_id)).all(),
            "inbox": session.execute(
                select(FeedMessage.control_id, FeedMessage.status, FeedMessage.ack_code).order_by(
                    FeedMessage.id
                )
            ).all(),
        }
