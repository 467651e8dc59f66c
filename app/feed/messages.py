"""Reading HL7 v2 SIU and ADT messages into the PAS extract's row shape, and writing ACKs.

Pure functions, no database: `read_message` turns the bytes of one MLLP frame into a
`FeedMessage` (the event and a CSV-shaped row for the import service) or raises
`MessageRejectedError` (answered AR). The fields read are listed in docs/feed.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

FIELD_SEPARATOR = "|"
ENCODING_CHARACTERS = "^~\\&"


class Event(StrEnum):
    BOOKED = "SIU^S12"
    RESCHEDULED = "SIU^S13"
    MODIFIED = "SIU^S14"
    CANCELLED = "SIU^S15"
    DELETED = "SIU^S17"
    NO_SHOW = "SIU^S26"
    REGISTERED = "ADT^A04"
    UPDATED = "ADT^A08"
    ADDED = "ADT^A28"
    PERSON_UPDATED = "ADT^A31"
    MERGED = "ADT^A40"


SCHEDULE_EVENTS = frozenset(
    {
        Event.BOOKED,
        Event.RESCHEDULED,
        Event.MODIFIED,
        Event.CANCELLED,
        Event.DELETED,
        Event.NO_SHOW,
    }
)
PATIENT_EVENTS = frozenset({Event.REGISTERED, Event.UPDATED, Event.ADDED, Event.PERSON_UPDATED})

# SCH-6 (event reason) identifiers meaning the patient cancelled; anything else (or none) is a
# cancellation by the hospital. ATTENDED OR DID NOT ATTEND: 2 patient cancelled, 4 provider
# cancelled or postponed, 3 did not attend.
PATIENT_CANCELLATION_REASONS = frozenset({"PAT", "PATIENT", "P", "PATCANC", "PC"})
PATIENT_CANCELLED = "2"
PROVIDER_CANCELLED = "4"
DID_NOT_ATTEND = "3"
FIRST_ATTENDANCE_TYPES = frozenset({"NEW", "FIRST", "1"})
FOLLOW_UP_TYPES = frozenset({"FU", "FUP", "FOLLOWUP", "FOLLOW-UP", "REVIEW", "2"})
PATIENT_ID_TYPES = frozenset({"PI", "MR", "PT"})
NHS_NUMBER_TYPES = frozenset({"NH", "NHS", "NHSNMBR"})
# PID-8 administrative sex to the extract's codes (O other, A ambiguous: indeterminate).
SEXES = {"M": "M", "F": "F", "U": "U", "O": "X", "A": "X", "X": "X", "N": "U", "I": "X"}


class MessageRejectedError(Exception):
    """The frame cannot be read as a supported HL7 message: answered AR."""

    def __init__(self, reason: str, *, control_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.control_id = control_id


@dataclass(frozen=True, slots=True)
class FeedMessage:
    control_id: str
    event: Event
    sent_at: datetime | None
    patient_id: str  # PID-3 (type PI/MR) or its first repetition
    nhs_number: str
    # Schedule messages: CSV columns of appointments.csv that the message carries.
    appointment: dict[str, str] = field(default_factory=dict)
    attendance_code: str | None = None  # set by S15/S17/S26
    duration_minutes: int | None = None
    # Patient messages: CSV columns of patients.csv that the message carries.
    patient: dict[str, str] = field(default_factory=dict)
    merged_patient_id: str | None = None  # A40: MRG-1


class _Parsed:
    """A message split once into segments and fields (the first segment of each name), read
    with the `hl7` package's accessor rules: a missing segment, field, repetition or component
    is '', a component's first subcomponent is its value, escapes are undone.
    Splitting by hand is a tenth of the cost of `hl7.parse`'s full tree, which the feed's
    throughput (issue 14) cannot afford for the dozen fields it reads."""

    def __init__(self, text: str) -> None:
        self.segments: dict[str, list[str]] = {}
        for line in text.split("\r"):
            fields = line.split(FIELD_SEPARATOR)
            if fields[0] == "MSH":
                fields.insert(1, FIELD_SEPARATOR)  # MSH-1 is the separator itself
            self.segments.setdefault(fields[0], fields)

    def has(self, segment: str) -> bool:
        return segment in self.segments

    def value(self, segment: str, field: int, repetition: int = 1, component: int = 1) -> str:
        fields = self.segments.get(segment)
        if fields is None or field >= len(fields):
            return ""
        raw = fields[field]
        if segment == "MSH" and field <= 2:
            return raw.strip()
        repetitions = raw.split("~")
        if repetition > len(repetitions):
            return ""
        components = repetitions[repetition - 1].split("^")
        if component > len(components):
            return ""
        leaf = components[component - 1].split("&", 1)[0]
        if "\\" in leaf:
            leaf = _unescape(leaf)
        return leaf.strip()

    def repetitions(self, segment: str, field: int) -> list[list[str]]:
        """A field's repetitions, each as its components (raw text, as `hl7` gives them)."""
        fields = self.segments.get(segment)
        if fields is None or field >= len(fields):
            return []
        return [repetition.split("^") for repetition in fields[field].split("~")]


# HL7 escape sequences (v2.5 section 2.7) for the delimiters; \Xhh..\ is hex text. Any other
# (highlighting, formatting, character sets) carries nothing the feed reads and is dropped,
# as is an unterminated one. Own code rather than `hl7.util.unescape`, which logs the field's
# text (patient data) when a sequence is odd.
_DELIMITER_ESCAPES = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}


def _unescape(text: str) -> str:
    parts = text.split("\\")
    kept = [parts[0]]
    for index in range(1, len(parts) - 1, 2):
        sequence = parts[index]
        if sequence in _DELIMITER_ESCAPES:
            kept.append(_DELIMITER_ESCAPES[sequence])
        elif sequence[:1] == "X":
            with contextlib.suppress(ValueError):
                kept.append(bytes.fromhex(sequence[1:]).decode("latin-1"))
        kept.append(parts[index + 1])
    return "".join(kept)


_PATHS: dict[str, tuple[str, int, int, int]] = {}


def _value(message: _Parsed, path: str) -> str:
    """One component as stripped text ('SCH.F11.R1.C4'); '' when absent."""
    parts = _PATHS.get(path)
    if parts is None:
        segment, *rest = path.split(".")
        numbers = [int(part[1:]) for part in rest] + [1, 1, 1]
        parts = _PATHS[path] = (segment, numbers[0], numbers[1], numbers[2])
    return message.value(*parts)


def _has(message: _Parsed, segment: str) -> bool:
    return message.has(segment)


def peek_control_id(text: str) -> str | None:
    """MSH-10 read by splitting the first line, for the ACK of a message hl7 cannot parse."""
    first = text.replace("\n", "\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return None
    fields = first[3:].split(first[3])
    # fields[0] is '' (before the separator), fields[1] MSH-2, so MSH-n is fields[n - 1].
    control = fields[9].strip() if len(fields) > 9 else ""
    return control[:64] or None


def read_message(data: bytes, *, zone: ZoneInfo, max_bytes: int) -> FeedMessage:
    if len(data) > max_bytes:
        raise MessageRejectedError(
            f"the message is {len(data):,} bytes, over the limit of {max_bytes:,}",
            control_id=peek_control_id(data[:4096].decode("utf-8", "replace")),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MessageRejectedError(
            f"the message is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start})",
            control_id=peek_control_id(data[:4096].decode("utf-8", "replace")),
        ) from None
    text = text.strip("\r\n \t").replace("\r\n", "\r").replace("\n", "\r")
    if not text.startswith("MSH"):
        raise MessageRejectedError("no MSH segment: an HL7 message must begin with MSH")
    control_id = peek_control_id(text)
    if len(text) < 8 or text[3] != FIELD_SEPARATOR:
        shown = text[3] if len(text) > 3 else ""
        raise MessageRejectedError(
            f"wrong field separator {shown!r}: MSH-1 must be '|'", control_id=control_id
        )
    if text[4:8] != ENCODING_CHARACTERS:
        raise MessageRejectedError(
            f"wrong encoding characters in MSH-2: expected {ENCODING_CHARACTERS!r}",
            control_id=control_id,
        )
    message = _Parsed(text)
    if not control_id:
        raise MessageRejectedError("MSH-10 (message control id) is empty or the MSH is truncated")
    message_type = f"{_value(message, 'MSH.F9.R1.C1')}^{_value(message, 'MSH.F9.R1.C2')}"
    if not _value(message, "MSH.F12"):
        raise MessageRejectedError(
            "the MSH segment is truncated: MSH-12 (version) is missing", control_id=control_id
        )
    try:
        event = Event(message_type.upper())
    except ValueError:
        raise MessageRejectedError(
            f"unsupported message type {message_type}: the feed reads SIU S12, S13, S14, S15, "
            "S17, S26 and ADT A04, A08, A28, A31, A40",
            control_id=control_id,
        ) from None
    if not _has(message, "PID"):
        raise MessageRejectedError(
            "the message is truncated: it has no PID segment", control_id=control_id
        )
    patient_id, nhs = _patient_identifiers(message)
    if not patient_id:
        raise MessageRejectedError("PID-3 carries no patient identifier", control_id=control_id)
    try:
        sent_at = _datetime(_value(message, "MSH.F7"), zone)
    except ValueError:
        raise MessageRejectedError(
            "MSH-7 (date-time of message) is not an HL7 date-time", control_id=control_id
        ) from None
    if event in SCHEDULE_EVENTS:
        return _schedule_message(message, event, control_id, sent_at, patient_id, nhs, zone)
    return _patient_message(message, event, control_id, sent_at, patient_id, nhs)


def _patient_identifiers(message: _Parsed) -> tuple[str, str]:
    patient_id = nhs = ""
    first = ""
    for repetition in message.repetitions("PID", 3):
        identifier = _component(repetition, 0)
        kind = _component(repetition, 4).upper()
        authority = _component(repetition, 3).upper()
        if not identifier:
            continue
        first = first or identifier
        if kind in NHS_NUMBER_TYPES or authority == "NHS":
            nhs = nhs or identifier
        elif kind in PATIENT_ID_TYPES and not patient_id:
            patient_id = identifier
    return (patient_id or (first if first != nhs else "")), nhs


def _component(repetition: object, index: int) -> str:
    if isinstance(repetition, list):
        if index < len(repetition):
            return str(repetition[index]).strip()
        return ""
    return str(repetition).strip() if index == 0 else ""


def _datetime(value: str, zone: ZoneInfo) -> datetime | None:
    """An HL7 DTM (YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]); no offset means the trust's local time."""
    if not value:
        return None
    digits, offset = value, ""
    for sign in ("+", "-"):
        if sign in value[8:]:
            at = value.index(sign, 8)
            digits, offset = value[:at], value[at:]
    digits = digits.split(".")[0]
    formats = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    shape = formats.get(len(digits))
    if shape is None:
        raise ValueError(value)
    moment = datetime.strptime(digits, shape)  # noqa: DTZ007 - zone applied below
    if offset:
        return datetime.strptime(digits + offset, shape + "%z")  # noqa: DTZ007 - has %z
    return moment.replace(tzinfo=zone)


def _iso(value: str, zone: ZoneInfo, name: str) -> str:
    """An HL7 DTM as the extract's ISO text (bad values are left for the import's checks)."""
    try:
        moment = _datetime(value, zone)
    except ValueError:
        return f"{value} ({name} is not an HL7 date-time)"
    return moment.isoformat() if moment is not None else ""


def _schedule_message(
    message: _Parsed,
    event: Event,
    control_id: str,
    sent_at: datetime | None,
    patient_id: str,
    nhs: str,
    zone: ZoneInfo,
) -> FeedMessage:
    if not _has(message, "SCH"):
        raise MessageRejectedError(
            "the message is truncated: a SIU message needs an SCH segment", control_id=control_id
        )
    filler_id = _value(message, "SCH.F2.R1.C1") or _value(message, "SCH.F1.R1.C1")
    if not filler_id:
        raise MessageRejectedError("SCH-2 (filler appointment id) is empty", control_id=control_id)
    start = (
        _value(message, "SCH.F11.R1.C4")
        or _value(message, "AIS.F4")
        or _value(message, "AIL.F6")
        or _value(message, "AIG.F8")
    )
    clinic = _value(message, "AIL.F3.R1.C1") or _value(message, "PV1.F3.R1.C1")
    site = _value(message, "AIL.F3.R1.C4") or _value(message, "PV1.F3.R1.C4")
    specialty = _value(message, "PV1.F10") or _value(message, "AIS.F3.R1.C1")
    if specialty and not (len(specialty) == 3 and specialty.isdigit()):
        specialty = ""  # AIS-3 may hold a local service code rather than a treatment function
    appointment_type = _value(message, "SCH.F8.R1.C1").upper()
    first = (
        "true"
        if appointment_type in FIRST_ATTENDANCE_TYPES
        else "false"
        if appointment_type in FOLLOW_UP_TYPES
        else ""
    )
    row = {
        "appointment_id": filler_id,
        "patient_id": patient_id,
        "clinic_code": clinic,
        "site": site,
        "specialty_code": specialty,
        "start_at": _iso(start, zone, "SCH-11.4") if start else "",
        "first_attendance": first,
    }
    if event is Event.BOOKED and sent_at is not None:
        row["booked_at"] = sent_at.isoformat()
    duration = _duration(message)
    code: str | None = None
    if event in (Event.CANCELLED, Event.DELETED):
        reason = _value(message, "SCH.F6.R1.C1").upper()
        code = PATIENT_CANCELLED if reason in PATIENT_CANCELLATION_REASONS else PROVIDER_CANCELLED
    elif event is Event.NO_SHOW:
        code = DID_NOT_ATTEND
    return FeedMessage(
        control_id=control_id,
        event=event,
        sent_at=sent_at,
        patient_id=patient_id,
        nhs_number=nhs,
        appointment={key: value for key, value in row.items() if value},
        attendance_code=code,
        duration_minutes=duration,
    )


def _duration(message: _Parsed) -> int | None:
    raw = _value(message, "SCH.F9") or _value(message, "AIS.F7") or _value(message, "AIL.F9")
    if not raw.isdigit():
        return None
    units = (_value(message, "SCH.F10.R1.C1") or "MIN").upper()
    minutes = int(raw) * (60 if units.startswith("H") else 1)
    return minutes if minutes > 0 else None


def _patient_message(
    message: _Parsed,
    event: Event,
    control_id: str,
    sent_at: datetime | None,
    patient_id: str,
    nhs: str,
) -> FeedMessage:
    row: dict[str, str] = {"patient_id": patient_id}
    if nhs:
        row["nhs_number"] = nhs
    family = _value(message, "PID.F5.R1.C1")
    given = _value(message, "PID.F5.R1.C2")
    if family:
        row["family_name"] = family
    if given:
        row["given_name"] = given
    birth = _value(message, "PID.F7.R1.C1")
    if birth:
        row["birth_date"] = (
            f"{birth[:4]}-{birth[4:6]}-{birth[6:8]}"
            if len(birth) >= 8 and birth[:8].isdigit()
            else birth
        )
    sex = _value(message, "PID.F8").upper()
    if sex:
        row["sex"] = SEXES.get(sex, sex)
    postcode = _value(message, "PID.F11.R1.C5")
    if postcode:
        row["postcode"] = postcode
    ethnic = _value(message, "PID.F22.R1.C1")
    if ethnic:
        row["ethnic_category"] = ethnic
    language = _value(message, "PID.F15.R1.C1").lower()
    if language:
        row["preferred_language"] = language
    for repetition in message.repetitions("PID", 13) + message.repetitions("PID", 14):
        number = _component(repetition, 0) or _component(repetition, 11)
        equipment = _component(repetition, 2).upper()
        if not number:
            continue
        column = "mobile_phone" if equipment == "CP" else "landline_phone"
        row.setdefault(column, number)
    merged = None
    if event is Event.MERGED:
        merged = _value(message, "MRG.F1.R1.C1")
        if not merged:
            raise MessageRejectedError(
                "an A40 merge needs MRG-1 (the prior patient identifier)", control_id=control_id
            )
    return FeedMessage(
        control_id=control_id,
        event=event,
        sent_at=sent_at,
        patient_id=patient_id,
        nhs_number=nhs,
        patient=row,
        merged_patient_id=merged,
    )


_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))


def escape(text: str) -> str:
    """HL7 escape sequences for the delimiters, so an error text stays one field."""
    for character, sequence in _ESCAPES:
        text = text.replace(character, sequence)
    return text


def ack(code: str, control_id: str | None, *, text: str = "", now: datetime, ack_id: str) -> bytes:
    """An ACK whose MSA-1 is AA, AE or AR and MSA-2 echoes the message's MSH-10."""
    clean = escape(text.replace("\r", " ").replace("\n", " ")[:200])
    stamp = now.strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|NAVIGATOR|NAVIGATOR|PAS|PAS|{stamp}||ACK|{ack_id}|P|2.5",
        f"MSA|{code}|{control_id or ''}|{clean}",
    ]
    if code != "AA" and clean:
        segments.append(f"ERR|||{'207' if code == 'AE' else '100'}|E||||{clean}")
    return ("\r".join(segments) + "\r").encode("utf-8")
