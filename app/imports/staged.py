"""The appointments extract loaded set-based where the database allows it (PostgreSQL).

The file is streamed once through the same reader as the chunked path (header checks, UTF-8,
row numbers, malformed and truncated rows); each row's contract columns are trimmed and hashed
as `validation` does and COPYed into a scratch table. Validation is then a handful of
set-based statements that produce exactly the row-and-column problems of
`validation.parse_appointment` (date-times are read while streaming by Python's own
`fromisoformat`, as the chunked path reads them, so both paths agree on every instant,
clock changes included). Valid rows are merged into
clinics, appointments and appointment changes with three statements. One transaction, as
before: an invalid row in all-or-nothing mode rolls everything back after every problem has
been listed. PostgreSQL-specific SQL comes from `app.db.dialect`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, text
from sqlalchemy.orm import Session

from app.console import ProgressReporter
from app.db import dialect
from app.imports.reader import CsvExtract
from app.imports.validation import APPOINTMENT_COLUMNS, Problem, RowParser
from app.reference.codes import ATTENDANCE_CODES, NOT_YET_KNOWN

if TYPE_CHECKING:
    from app.imports.service import ImportReport

logger = logging.getLogger(__name__)

TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0", ""]
DATETIME_MAX_LENGTH = 40  # RowParser.datetime's limit
INSTANT_CACHE_SIZE = 200_000
CUT_OFF_HINT = "the last line has no line ending: the file may be cut off"
PROGRESS_EVERY = 50_000
# The staged columns, in APPOINTMENT_COLUMNS order, after trimming.
_STAGED = [
    "appointment_id",
    "patient_id",
    "clinic_code",
    "specialty_code",
    "site",
    "booked_at",
    "start_at",
    "first_raw",
    "code",
]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    number: int
    values: list[str]
    problems: list[Problem]


@dataclass
class _Rejected:
    values: list[str]
    problems: list[tuple[int, Problem]] = field(default_factory=list)


def load_appointments(
    session: Session,
    extract: CsvExtract,
    handle: Any,
    report: ImportReport,
    *,
    zone_name: str,
    now: datetime,
    skip_invalid: bool,
    progress: ProgressReporter,
) -> list[RejectedRow]:
    """Stage, validate and (when nothing is rejected, or `skip_invalid`) merge the extract.
    Fills `report` (except `problems`); returns the rejected rows in row order, their values
    empty unless the row could not be staged (the caller reads them again if it needs them)."""
    rejected: dict[int, _Rejected] = {}
    unterminated_row: list[int] = []
    steps = _Steps()

    zone = ZoneInfo(zone_name)

    # Clinic slots repeat: most date-time strings recur thousands of times in an extract.
    instants: dict[str, datetime | None] = {}

    def instant(value: str) -> datetime | None:
        """The UTC instant of a date-time as `RowParser.datetime` reads it, or None when that
        would report a problem (then `RowParser` itself words it)."""
        if value in instants:
            return instants[value]
        found: datetime | None = None
        if value and len(value) <= DATETIME_MAX_LENGTH:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:  # CONTRACT.md: no offset means the trust's local time
                    parsed = parsed.replace(tzinfo=zone)
                found = parsed.astimezone(UTC)
        if len(instants) >= INSTANT_CACHE_SIZE:
            instants.clear()
        instants[value] = found
        return found

    def staged_rows() -> Iterator[tuple[Any, ...]]:
        # Trimming, hashing and reading date-times exactly as `validation` does (Python's own
        # strip(), md5 and fromisoformat), so values and `source_hash` are those of the
        # chunked path and of the feed; every other check is set-based below.
        reported = 0
        positions: list[int | None] | None = None
        for raw in extract.rows(handle):
            if positions is None:
                positions = [
                    extract.header.index(name) if name in extract.header else None
                    for name in APPOINTMENT_COLUMNS
                ]
            report.rows_read += 1
            if raw.unterminated:
                unterminated_row.append(raw.number)
            if raw.problem is not None:
                rejected[raw.number] = _Rejected(raw.values, [(0, Problem("", raw.problem))])
            else:
                values = raw.values
                picked: list[Any] = [values[i].strip() if i is not None else "" for i in positions]
                digest = hashlib.md5(
                    "\x1f".join(picked).encode(), usedforsecurity=False
                ).hexdigest()
                booked, start = instant(picked[5]), instant(picked[6])
                if booked is None or start is None:
                    parser = RowParser({"booked_at": picked[5], "start_at": picked[6]}, zone)
                    parser.datetime("booked_at", required=True)
                    parser.datetime("start_at", required=True)
                    entry = rejected.setdefault(raw.number, _Rejected([]))
                    for problem in parser.problems:
                        ordinal = 6 if problem.column == "booked_at" else 7
                        entry.problems.append((ordinal, problem))
                picked[5], picked[6] = booked, start
                picked[7] = picked[7].lower()
                picked[8] = picked[8] or NOT_YET_KNOWN
                yield (raw.number, *picked, digest)
            if report.rows_read % PROGRESS_EVERY == 0:
                progress.advance(extract.bytes_read - reported)
                reported = extract.bytes_read
        progress.advance(extract.bytes_read - reported)

    dialect.tune_for_bulk_load(session)
    staged_columns = ["row_no", *_STAGED, "source_hash"]
    types = {"row_no": "integer", "booked_at": "timestamptz", "start_at": "timestamptz"}
    dialect.create_scratch_table(
        session,
        "import_rows",
        "(" + ", ".join(f"{name} {types.get(name, 'text')}" for name in staged_columns) + ")",
    )
    dialect.copy_rows(session, "import_rows", staged_columns, staged_rows())
    session.execute(text("ANALYZE import_rows"))
    steps.done("reading and COPY")
    params: dict[str, Any] = {
        "now": now,
        "true_words": TRUE_WORDS,
        "false_words": FALSE_WORDS,
        "codes": list(ATTENDANCE_CODES),
        "unknown": NOT_YET_KNOWN,
        "source": "pas_import",
    }
    dialect.create_scratch_table(
        session,
        "import_problems",
        """AS SELECT r.row_no, c.ordinal, c.column_name, c.message
        FROM (SELECT * FROM import_rows r WHERE r.appointment_id = ''
              OR length(r.appointment_id) > 64 OR r.patient_id = ''
              OR length(r.patient_id) > 64 OR r.clinic_code = '' OR length(r.clinic_code) > 32
              OR length(r.site) > 120
              OR (r.specialty_code <> '' AND r.specialty_code !~ '^[0-9]{3}$')
              OR r.start_at < r.booked_at
              OR NOT (r.first_raw = ANY(:true_words) OR r.first_raw = ANY(:false_words))
              OR NOT (r.code = ANY(:codes))) r
        CROSS JOIN LATERAL (VALUES
          (1, 'appointment_id', CASE WHEN r.appointment_id = '' THEN 'a value is required'
             WHEN length(r.appointment_id) > 64 THEN 'longer than 64 characters' END),
          (2, 'patient_id', CASE WHEN r.patient_id = '' THEN 'a value is required'
             WHEN length(r.patient_id) > 64 THEN 'longer than 64 characters' END),
          (3, 'clinic_code', CASE WHEN r.clinic_code = '' THEN 'a value is required'
             WHEN length(r.clinic_code) > 32 THEN 'longer than 32 characters' END),
          (4, 'site', CASE WHEN length(r.site) > 120 THEN 'longer than 120 characters' END),
          (5, 'specialty_code', CASE WHEN length(r.specialty_code) > 3
             THEN 'longer than 3 characters'
             WHEN r.specialty_code <> '' AND r.specialty_code !~ '^[0-9]{3}$'
             THEN '''' || r.specialty_code || ''' is not a 3-digit treatment function code'
             END),
          (8, 'start_at', CASE WHEN r.start_at < r.booked_at
             THEN 'the appointment starts before it was booked' END),
          (9, 'first_attendance', CASE WHEN NOT (r.first_raw = ANY(:true_words)
             OR r.first_raw = ANY(:false_words))
             THEN '''' || r.first_raw || ''' is not true or false' END),
          (10, 'attendance_code', CASE WHEN NOT (r.code = ANY(:codes))
             THEN '''' || r.code || ''' is not an attendance code (0, 2-7)' END)
        ) AS c(ordinal, column_name, message)
        WHERE c.message IS NOT NULL""",
        params,
    )
    session.execute(
        text(
            """INSERT INTO import_problems
            SELECT row_no, 11, 'appointment_id',
                   '''' || appointment_id || ''' appears more than once in the file'
            FROM (SELECT r.row_no, r.appointment_id,
                         row_number() OVER (PARTITION BY r.appointment_id ORDER BY r.row_no) AS n
                  FROM import_rows r
                  WHERE r.appointment_id IN (
                      SELECT appointment_id FROM import_rows
                      WHERE appointment_id <> '' AND length(appointment_id) <= 64
                      GROUP BY appointment_id HAVING count(*) > 1)) d
            WHERE d.n > 1"""
        )
    )
    session.execute(
        text(
            """INSERT INTO import_problems
            SELECT r.row_no, 12, 'patient_id',
                   'unknown patient ''' || r.patient_id || ''': import the patient first'
            FROM import_rows r
            WHERE NOT EXISTS (SELECT 1 FROM patients p WHERE p.pas_patient_id = r.patient_id)
              AND NOT EXISTS (SELECT 1 FROM import_problems q WHERE q.row_no = r.row_no)"""
        )
    )
    _collect_problems(session, rejected)
    steps.done("checks")
    if unterminated_row:
        last = rejected.get(unterminated_row[-1])
        if last is not None and not any(ordinal == 0 for ordinal, _ in last.problems):
            last.problems.append((99, Problem("", CUT_OFF_HINT)))
    report.rejected = len(rejected)
    if rejected and not skip_invalid:
        return _in_row_order(rejected)
    _merge(session, report, params, any_rejected=bool(rejected), steps=steps)
    return _in_row_order(rejected)


class _Steps:
    """Logs how long each step took (the figures behind scripts/bench_import.py)."""

    def __init__(self) -> None:
        self.last = perf_counter()

    def done(self, name: str) -> None:
        now = perf_counter()
        logger.info("appointments import: %s took %.2f s", name, now - self.last)
        self.last = now


def _count(session: Session, statement: Any, params: dict[str, Any] | None = None) -> int:
    """Run a write and return how many rows it wrote."""
    result = cast("CursorResult[Any]", session.execute(statement, params or {}))
    return int(result.rowcount)


def _chain(first: tuple[Any, ...], rest: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    yield first
    yield from rest


def _in_row_order(rejected: dict[int, _Rejected]) -> list[RejectedRow]:
    ordered = []
    for number in sorted(rejected):
        entry = rejected[number]
        problems = [problem for _, problem in sorted(entry.problems, key=lambda item: item[0])]
        ordered.append(RejectedRow(number, entry.values, problems))
    return ordered


def _collect_problems(session: Session, rejected: dict[int, _Rejected]) -> None:
    found = session.execute(
        text("SELECT row_no, ordinal, column_name, message FROM import_problems")
    ).all()
    for row_no, ordinal, column_name, message in found:
        rejected.setdefault(row_no, _Rejected([])).problems.append(
            (ordinal, Problem(column_name, message))
        )


def _merge(
    session: Session,
    report: ImportReport,
    params: dict[str, Any],
    *,
    any_rejected: bool,
    steps: _Steps,
) -> None:
    valid = (
        "NOT EXISTS (SELECT 1 FROM import_problems q WHERE q.row_no = r.row_no)"
        if any_rejected
        else "true"
    )
    # Each clinic takes the last site and specialty the file gives it (blanks keep the old):
    # one pass groups the rows by clinic, site and specialty, remembering each group's last row.
    dialect.create_scratch_table(
        session,
        "import_clinic_groups",
        f"""AS SELECT r.clinic_code, r.site, r.specialty_code, max(r.row_no) AS last_row
        FROM import_rows r WHERE {valid} GROUP BY r.clinic_code, r.site, r.specialty_code""",
    )
    dialect.create_scratch_table(
        session,
        "import_clinics",
        """AS SELECT c.code, s.site, p.specialty_code
        FROM (SELECT DISTINCT clinic_code AS code FROM import_clinic_groups) c
        LEFT JOIN (SELECT DISTINCT ON (clinic_code) clinic_code, site FROM import_clinic_groups
                   WHERE site <> '' ORDER BY clinic_code, last_row DESC) s
          ON s.clinic_code = c.code
        LEFT JOIN (SELECT DISTINCT ON (clinic_code) clinic_code, specialty_code
                   FROM import_clinic_groups
                   WHERE specialty_code <> '' ORDER BY clinic_code, last_row DESC) p
          ON p.clinic_code = c.code""",
    )
    created = _count(
        session,
        text(
            """INSERT INTO clinics (code, site, specialty_code)
            SELECT i.code, i.site, i.specialty_code FROM import_clinics i
            WHERE NOT EXISTS (SELECT 1 FROM clinics c WHERE c.code = i.code)"""
        ),
    )
    report.clinics_created += created
    steps.done("clinics")
    session.execute(
        text(
            """UPDATE clinics c SET site = coalesce(i.site, c.site),
                   specialty_code = coalesce(i.specialty_code, c.specialty_code)
            FROM import_clinics i
            WHERE c.code = i.code AND (c.site IS DISTINCT FROM coalesce(i.site, c.site)
               OR c.specialty_code IS DISTINCT FROM coalesce(i.specialty_code, c.specialty_code))"""
        )
    )
    rows = f"""(SELECT r.appointment_id, p.id AS patient_key, k.id AS clinic_key, r.booked_at,
            r.start_at, r.code, r.source_hash,
            CASE WHEN r.first_raw = '' THEN NULL ELSE r.first_raw = ANY(:true_words) END
              AS first_attendance
        FROM import_rows r
        JOIN patients p ON p.pas_patient_id = r.patient_id
        JOIN clinics k ON k.code = r.clinic_code
        WHERE {valid}) v"""
    changed = _count(
        session,
        text(
            f"""INSERT INTO appointment_changes
                (appointment_id, changed_at, source, field, old_value, new_value)
            SELECT a.id, :now, :source, 'attendance_code', a.attendance_code, v.code
            FROM {rows} JOIN appointments a ON a.pas_appointment_id = v.appointment_id
            WHERE a.source_hash <> v.source_hash AND a.attendance_code <> v.code
            UNION ALL
            SELECT a.id, :now, :source, 'start_at', {dialect.iso_utc_text("a.start_at")},
                   {dialect.iso_utc_text("v.start_at")}
            FROM {rows} JOIN appointments a ON a.pas_appointment_id = v.appointment_id
            WHERE a.source_hash <> v.source_hash AND a.start_at <> v.start_at"""
        ),
        params,
    )
    report.changes_recorded += changed
    steps.done("changes")
    updated = _count(
        session,
        text(
            f"""UPDATE appointments a SET patient_id = v.patient_key, clinic_id = v.clinic_key,
                booked_at = v.booked_at, start_at = v.start_at,
                first_attendance = v.first_attendance, attendance_code = v.code,
                source_hash = v.source_hash, updated_at = :now,
                outcome_recorded_at = CASE WHEN a.attendance_code = v.code
                    THEN a.outcome_recorded_at WHEN v.code = :unknown THEN NULL ELSE :now END
            FROM {rows}
            WHERE a.pas_appointment_id = v.appointment_id AND a.source_hash <> v.source_hash"""
        ),
        params,
    )
    steps.done("updates")
    inserted = _count(
        session,
        text(
            f"""INSERT INTO appointments (pas_appointment_id, patient_id, clinic_id, booked_at,
                start_at, first_attendance, attendance_code, source_hash, created_at,
                updated_at, outcome_recorded_at)
            SELECT v.appointment_id, v.patient_key, v.clinic_key, v.booked_at, v.start_at,
                v.first_attendance, v.code, v.source_hash, :now, :now,
                CASE WHEN v.code = :unknown THEN NULL WHEN v.start_at <= :now THEN v.start_at
                     ELSE :now END
            FROM {rows}
            WHERE NOT EXISTS (
                SELECT 1 FROM appointments a WHERE a.pas_appointment_id = v.appointment_id)"""
        ),
        params,
    )
    valid_count = session.scalar(text(f"SELECT count(*) FROM import_rows r WHERE {valid}")) or 0
    steps.done("inserts")
    report.updated += updated
    report.inserted += inserted
    report.unchanged += valid_count - updated - inserted
