"""Building synthetic HL7 messages and talking MLLP to a real listener on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from app.clock import Clock
from app.db.session import Database
from app.feed.listener import FeedListener

LONDON = ZoneInfo("Europe/London")
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
NHS_NUMBER = "9434765919"  # a valid test number (modulus 11)


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%Y%m%d%H%M%S")


def msh(event: str, control_id: str, sent_at: datetime) -> str:
    kind, trigger = event.split("^")
    return (
        f"MSH|^~\\&|PAS|RXX|NAVIGATOR|RXX|{hl7_time(sent_at)}||{kind}^{trigger}|{control_id}|P|2.5"
    )


def pid(patient_id: str, *, nhs: str = NHS_NUMBER, extra: str = "") -> str:
    return f"PID|1||{patient_id}^^^RXX^PI~{nhs}^^^NHS^NH||Patient^Test{extra}"


def siu(
    event: str,
    control_id: str,
    *,
    appointment_id: str,
    patient_id: str,
    start: datetime,
    sent_at: datetime,
    clinic: str = "CARD1",
    site: str = "Leicester Royal Infirmary",
    specialty: str = "320",
    reason: str = "",
    duration: int = 30,
) -> bytes:
    segments = [
        msh(f"SIU^{event}", control_id, sent_at),
        f"SCH|PL{appointment_id}|{appointment_id}^PAS||||{reason}||NEW^New|{duration}|min"
        f"|^^{duration}^{hl7_time(start)}",
        pid(patient_id),
        f"PV1|1|O|{clinic}^^^{site}|||||||{specialty}",
        "RGS|1|A",
        f"AIS|1|A|{specialty}^Cardiology|{hl7_time(start)}|||{duration}|min",
        f"AIL|1|A|{clinic}^^^{site}|||{hl7_time(start)}|||{duration}|min",
    ]
    return ("\r".join(segments) + "\r").encode()


def adt(
    event: str,
    control_id: str,
    *,
    patient_id: str,
    sent_at: datetime,
    birth_date: str = "19700412",
    sex: str = "F",
    mobile: str = "07700900123",
    merged_from: str | None = None,
) -> bytes:
    segments = [
        msh(f"ADT^{event}", control_id, sent_at),
        f"EVN|{event}|{hl7_time(sent_at)}",
        f"PID|1||{patient_id}^^^RXX^PI~{NHS_NUMBER}^^^NHS^NH||Patient^Test||{birth_date}|{sex}"
        f"|||1 Test Street^^Leicester^^LE1 5WW||{mobile}^PRN^CP||en|||||||A",
        "PV1|1|N",
    ]
    if merged_from is not None:
        segments.insert(3, f"MRG|{merged_from}^^^RXX^PI")
    return ("\r".join(segments) + "\r").encode()


@dataclass(frozen=True)
class Ack:
    code: str
    control_id: str
    text: str


def unescape(text: str) -> str:
    for sequence, character in (("\\F\\", "|"), ("\\S\\", "^"), ("\\R\\", "~"), ("\\T\\", "&")):
        text = text.replace(sequence, character)
    return text.replace("\\E\\", "\\")


def parse_ack(data: bytes) -> Ack:
    for segment in data.decode().split("\r"):
        if segment.startswith("MSA|"):
            fields = [*segment.split("|"), "", "", ""]
            return Ack(fields[1], fields[2], unescape(fields[3]))
    raise AssertionError("no MSA segment in the ACK")


class MllpClient:
    """A blocking MLLP sender, like an integration engine waiting for each ACK."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # As integration engines do on MLLP (and asyncio does on the listener's side): a frame
        # sent while earlier ones await their ACKs goes out at once, not after a delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: bytes) -> Ack:
        self.sock.sendall(START_BLOCK + message + END_BLOCK)
        return self.read_ack()

    def read_ack(self) -> Ack:
        while END_BLOCK not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(END_BLOCK, 1)
        assert frame.startswith(START_BLOCK)
        return parse_ack(frame[1:])

    def close(self) -> None:
        self.sock.close()


@contextmanager
def running_listener(database: Database, clock: Clock) -> Iterator[FeedListener]:
    """A real listener on a free loopback port, in a thread with its own event loop."""
    listener = FeedListener(database, clock)
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(listener.serve("127.0.0.1", 0, ready=lambda _port: ready.set()))

    thread = threading.Thread(target=run, name="feed-listener", daemon=True)
    thread.start()
    assert ready.wait(15), "the listener did not start"
    try:
        yield listener
    finally:
        loop.call_soon_threadsafe(listener.stop)
        thread.join(15)
        asyncio.set_event_loop(None)
        loop.close()
