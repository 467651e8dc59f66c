"""Every bad input of issue 14: the right ACK code with a clear text, kept as a dead letter,
nothing else changed; then the out-of-order update applies once it is replayed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.roles import Role
from app.clock import FixedClock
from app.db.session import Database
from app.feed.tables import FeedMessage
from tests.auth.helpers import create_user, sign_in
from tests.feed.helpers import END_BLOCK, MllpClient, adt, siu
from tests.feed.test_listener import appointment, book, counts, dead_letters, register


def _booking(clock: FixedClock, control_id: str, **overrides: str) -> bytes:
    values = {"appointment_id": "A100", "patient_id": "P100"} | overrides
    return siu(
        "S12",
        control_id,
        appointment_id=values["appointment_id"],
        patient_id=values["patient_id"],
        start=clock.now() + timedelta(days=8),
        sent_at=clock.now(),
    )


BAD_INPUTS = {
    "no MSH": (lambda clock: b"PID|1||P100^^^RXX^PI||Patient^Test\r", "AR", "no MSH segment"),
    "wrong field separator": (
        lambda clock: _booking(clock, "SEP-1").replace(b"|", b"#"),
        "AR",
        "wrong field separator",
    ),
    "truncated": (
        lambda clock: b"MSH|^~\\&|PAS|RXX|NAVIGATOR|RXX|20261125100000||SIU^S12|TRUNC-1",
        "AR",
        "truncated",
    ),
    "truncated after MSH": (
        lambda clock: _booking(clock, "TRUNC-2").split(b"\r")[0] + b"\r",
        "AR",
        "truncated",
    ),
    "unknown message type": (
        lambda clock: _booking(clock, "TYPE-1").replace(b"SIU^S12", b"ORU^R01"),
        "AR",
        "unsupported message type ORU^R01",
    ),
    "unknown patient": (
        lambda clock: _booking(clock, "WHO-1", patient_id="P999"),
        "AE",
        "unknown patient 'P999'",
    ),
    "S14 before S12": (
        lambda clock: siu(
            "S14",
            "EARLY-1",
            appointment_id="A200",
            patient_id="P100",
            start=clock.now() + timedelta(days=9),
            sent_at=clock.now(),
        ),
        "AE",
        "appointment 'A200' is not known",
    ),
    "merge into itself": (
        lambda clock: adt(
            "A40", "SELF-1", patient_id="P100", sent_at=clock.now(), merged_from="P100"
        ),
        "AE",
        "into itself",
    ),
    "10 MB message": (
        lambda clock: _booking(clock, "BIG-1") + b"NTE|1||" + b"x" * 10_000_000 + b"\r",
        "AR",
        "over the limit of 1,000,000",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_the_right_ack_is_kept_and_changes_nothing_else(
    database: Database, client: MllpClient, clock: FixedClock, name: str
) -> None:
    build, code, words = BAD_INPUTS[name]
    register(client, clock)
    book(client, clock)
    before = counts(database)

    ack = client.send(build(clock))

    assert ack.code == code
    assert words in ack.text
    kept = dead_letters(database)
    assert len(kept) == 1
    assert kept[0].ack_code == code
    assert words in (kept[0].error or "")
    assert counts(database) == before
    # The connection still works for the next message.
    assert client.send(adt("A08", "AFTER-1", patient_id="P100", sent_at=clock.now())).code == "AA"


def test_the_ack_echoes_the_control_id_of_a_rejected_message(
    client: MllpClient, clock: FixedClock
) -> None:
    ack = client.send(_booking(clock, "TYPE-9").replace(b"SIU^S12", b"ADT^A99"))
    assert (ack.code, ack.control_id) == ("AR", "TYPE-9")


def test_bytes_outside_a_frame_are_rejected(database: Database, client: MllpClient) -> None:
    client.send_raw(b"garbage" + END_BLOCK)
    assert client.read_ack().code == "AR"
    assert len(dead_letters(database)) == 1


def test_an_update_before_its_booking_applies_when_a_manager_replays_it(
    database: Database,
    client: MllpClient,
    clock: FixedClock,
    app_client: TestClient,
) -> None:
    register(client, clock)
    later = clock.now() + timedelta(days=12)
    early = siu(
        "S14",
        "EARLY-1",
        appointment_id="A100",
        patient_id="P100",
        start=later,
        sent_at=clock.now(),
        clinic="CARD9",
    )
    assert client.send(early).code == "AE"
    book(client, clock)  # the booking arrives after its update

    with database.unit_of_work() as db:
        create_user(db, role=Role.MANAGER, username="feed-manager")
    csrf = sign_in(app_client, "feed-manager")
    listed = app_client.get("/api/feed/dead-letters").json()
    assert [letter["control_id"] for letter in listed["dead_letters"]] == ["EARLY-1"]
    assert "is not known" in listed["dead_letters"][0]["error"]
    page = app_client.get("/feed")
    assert page.status_code == 200
    assert "EARLY-1" in page.text
    assert "Replay" in page.text

    replayed = app_client.post(
        f"/api/feed/dead-letters/{listed['dead_letters'][0]['id']}/replay",
        headers={"X-CSRF-Token": csrf},
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["ack_code"] == "AA"
    assert appointment(database, "A100").start_at == later.replace(microsecond=0)
    assert dead_letters(database) == []
    # The sender repeating the message now gets AA and nothing is applied twice.
    assert client.send(early).code == "AA"
    with database.unit_of_work() as db:
        assert db.scalar(select(FeedMessage.status).where(FeedMessage.control_id == "EARLY-1")) == (
            "applied"
        )


def test_a_navigator_cannot_see_the_dead_letters(
    database: Database, app_client: TestClient
) -> None:
    with database.unit_of_work() as db:
        create_user(db, role=Role.NAVIGATOR, username="feed-navigator")
    sign_in(app_client, "feed-navigator")
    assert app_client.get("/api/feed/dead-letters").status_code == 403
