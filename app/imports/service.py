"""Importing PAS extracts (patients, appointments) into the database.

One import is one transaction: the file is streamed in chunks, each chunk validated and
written with bulk statements (a chunk's existing rows fetched by their PAS ids, never the
whole table), and any invalid row in the default all-or-nothing mode rolls everything back
after every problem has been collected. `skip_invalid` loads the valid rows instead and
writes the rejected ones, with their reasons, to `<stem>.rejects.csv` beside the input.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment, AppointmentChange, Clinic
from app.bookings import service as bookings_service
from app.console import NULL_PROGRESS, ProgressReporter
from app.db.dialect import bulk_insert, one_of, supports_staged_load
from app.db.session import Database
from app.errors import InvalidInputError
from app.imports import staged
from app.imports.reader import CsvExtract, RawRow
from app.imports.validation import (
    APPOINTMENT_REQUIRED,
    PATIENT_REQUIRED,
    Problem,
    parse_appointment,
    parse_patient,
)
from app.patients.tables import Patient
from app.reference.codes import NOT_YET_KNOWN

logger = logging.getLogger(__name__)

CHANGE_SOURCE = "pas_import"


@dataclass
class ImportReport:
    """What one import did; `problems` lists every rejected row's problems."""

    kind: str
    file: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    changes_recorded: int = 0
    requests_reconciled: int = 0
    clinics_created: int = 0
    committed: bool = False
    rejects_file: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.file,
            "rows_read": self.rows_read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "changes_recorded": self.changes_recorded,
            "clinics_created": self.clinics_created,
            "committed": self.committed,
            "rejects_file": self.rejects_file,
            "problems": self.problems,
        }

    def human(self) -> str:
        lines = [
            f"Imported {self.kind} from {self.file}",
            f"  rows read  {self.rows_read:>10,}",
            f"  inserted   {self.inserted:>10,}",
            f"  updated    {self.updated:>10,}",
            f"  unchanged  {self.unchanged:>10,}",
            f"  rejected   {self.rejected:>10,}",
        ]
        if self.kind == "appointments":
            lines.append(f"  changes recorded {self.changes_recorded:,}")
            lines.append(f"  clinics created  {self.clinics_created:,}")
        if self.rejects_file:
            lines.append(f"Rejected rows and their reasons: {self.rejects_file}")
        return "\n".join(lines)


class ImportRejectedError(InvalidInputError):
    """The file had invalid rows and nothing was written (all-or-nothing mode)."""

    def __init__(self, report: ImportReport) -> None:
        rows = report.rejected
        super().__init__(
            f"{report.file}: {rows:,} invalid row(s); nothing was imported. Fix the rows "
            "listed, or use --skip-invalid to load the valid rows and write the rejects to a file",
            details=report.problems,
        )
        self.report = report


@dataclass(slots=True)
class _Pending:
    raw: RawRow
    values: dict[str, Any]


ChunkWriter = Callable[[Session, list[_Pending], ImportReport], list[tuple[_Pending, Problem]]]


class RowRejectedError(InvalidInputError):
    """One row given on its own (a feed message) failed the extract's checks."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(
            "; ".join(
                f"{problem.column}: {problem.message}" if problem.column else problem.message
                for problem in problems
            ),
            details=[{"column": p.column, "message": p.message} for p in problems],
        )
        self.problems = problems


class RowWriter:
    """Applies PAS rows one at a time (the HL7 feed) with exactly the validation and writes of
    a file import: the same parsing, the same `source_hash`, the same appointment-change
    records. Rows are dicts keyed by the CSV columns of CONTRACT.md. Keeps the clinic cache
    between rows; call `forget()` after a rollback so no rolled-back clinic id is reused."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.clinics = _ClinicCache()

    def forget(self) -> None:
        self.clinics = _ClinicCache()

    def patient(self, session: Session, row: dict[str, str], *, now: datetime) -> ImportReport:
        values, problems = parse_patient(row, self.zone, now.astimezone(self.zone).date())
        if problems:
            raise RowRejectedError(problems)
        report = ImportReport(kind="patients", file="")
        _write_patients(session, [_Pending(_SINGLE_ROW, values)], report, now)
        return report

    def appointment(self, session: Session, row: dict[str, str], *, now: datetime) -> ImportReport:
        values, problems = parse_appointment(row, self.zone)
        if problems:
            raise RowRejectedError(problems)
        report = ImportReport(kind="appointments", file="")
        rejected = _write_appointments(
            session, [_Pending(_SINGLE_ROW, values)], report, now, self.clinics
        )
        if rejected:
            raise RowRejectedError([problem for _pending, problem in rejected])
        return report

    def patients(
        self,
        session: Session,
        rows: list[dict[str, str]],
        *,
        now: datetime,
        existing: Mapping[str, Any] | None = None,
    ) -> ImportReport:
        """Several rows for distinct patients written with one set of bulk statements, as one
        chunk of a file import; the first invalid row raises `RowRejectedError`. `existing`:
        the stored patients of these PAS ids (rows with `id` and `source_hash`), when the
        caller has just read them, so they are not read twice."""
        today = now.astimezone(self.zone).date()
        pending: list[_Pending] = []
        for row in rows:
            values, problems = parse_patient(row, self.zone, today)
            if problems:
                raise RowRejectedError(problems)
            pending.append(_Pending(_SINGLE_ROW, values))
        report = ImportReport(kind="patients", file="")
        if pending:
            known = None
            if existing is not None:
                known = {key: (row.id, row.source_hash) for key, row in existing.items()}
            _write_patients(session, pending, report, now, existing=known)
        return report

    def appointments(
        self,
        session: Session,
        rows: list[dict[str, str]],
        *,
        now: datetime,
        existing: Mapping[str, Any] | None = None,
        patient_ids: Mapping[str, int] | None = None,
    ) -> ImportReport:
        """Several rows for distinct appointments as one chunk of a file import (the clinic
        cache kept); the first invalid row raises `RowRejectedError`. `existing`: the stored
        appointments of these PAS ids (rows with the columns `_write_appointments` reads),
        and `patient_ids` the patients' ids by PAS id (every one that exists), when the
        caller has them already."""
        pending: list[_Pending] = []
        for row in rows:
            values, problems = parse_appointment(row, self.zone)
            if problems:
                raise RowRejectedError(problems)
            pending.append(_Pending(_SINGLE_ROW, values))
        report = ImportReport(kind="appointments", file="")
        if pending:
            rejected = _write_appointments(
                session,
                pending,
                report,
                now,
                self.clinics,
                existing=existing,
                patient_ids=patient_ids,
            )
            if rejected:
                raise RowRejectedError([problem for _pending, problem in rejected])
        return report

    def known_clinics(self, session: Session) -> dict[str, tuple[int, str | None, str | None]]:
        """Clinics by code as (id, site, specialty), loaded once and kept until `forget()`."""
        self.clinics.load(session)
        return self.clinics.by_code


_SINGLE_ROW = RawRow(1, [], None)


def rejects_path_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def import_patients(
    database: Database,
    path: Path,
    *,
    skip_invalid: bool = False,
    progress: ProgressReporter = NULL_PROGRESS,
    chunk_size: int | None = None,
    now: datetime,
) -> ImportReport:
    """Load a `patients.csv` PAS extract; see CONTRACT.md for the format. `now` is when the
    import runs (the CLI passes its clock's time): it stamps the rows and bounds birth dates."""
    zone = ZoneInfo(database.settings.timezone)
    today = now.astimezone(zone).date()
    return _run_import(
        database,
        Path(path),
        kind="patients",
        required=PATIENT_REQUIRED,
        id_column="patient_id",
        id_key="pas_patient_id",
        parse=lambda row: parse_patient(row, zone, today),
        write=lambda session, rows, report: _write_patients(session, rows, report, now),
        skip_invalid=skip_invalid,
        progress=progress,
        chunk_size=chunk_size or database.settings.import_chunk_size,
    )


def import_appointments(
    database: Database,
    path: Path,
    *,
    skip_invalid: bool = False,
    progress: ProgressReporter = NULL_PROGRESS,
    chunk_size: int | None = None,
    now: datetime,
) -> ImportReport:
    """Load an `appointments.csv` PAS extract; patients must exist already."""
    zone = ZoneInfo(database.settings.timezone)
    clinics = _ClinicCache()
    if supports_staged_load(database.engine):
        report = _run_staged_appointments(
            database, Path(path), skip_invalid=skip_invalid, progress=progress, now=now
        )
    else:
        report = _run_import(
            database,
            Path(path),
            kind="appointments",
            required=APPOINTMENT_REQUIRED,
            id_column="appointment_id",
            id_key="pas_appointment_id",
            parse=lambda row: parse_appointment(row, zone),
            write=lambda session, rows, report: _write_appointments(
                session, rows, report, now, clinics
            ),
            skip_invalid=skip_invalid,
            progress=progress,
            chunk_size=chunk_size or database.settings.import_chunk_size,
        )
    if report.committed and (report.inserted or report.updated):
        # The PAS's new and changed appointments may honour open rebook and cancel requests
        # (app/bookings); a separate unit of work, safe to repeat (the worker runs it too).
        with database.unit_of_work() as session:
            reconciled = bookings_service.reconcile(session, database.settings, now=now)
        report.requests_reconciled = (
            reconciled.rebooks_confirmed + reconciled.cancellations_confirmed
        )
    return report


def _run_import(
    database: Database,
    path: Path,
    *,
    kind: str,
    required: tuple[str, ...],
    id_column: str,
    id_key: str,
    parse: Callable[[dict[str, str]], tuple[dict[str, Any], list[Problem]]],
    write: ChunkWriter,
    skip_invalid: bool,
    progress: ProgressReporter,
    chunk_size: int,
) -> ImportReport:
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist or is not a file")
    extract = CsvExtract(path, required)
    report = ImportReport(kind=kind, file=str(path))
    progress.update(total=extract.size)
    rejects_path = rejects_path_for(path)
    seen: set[str] = set()
    with _RejectsWriter(rejects_path, enabled=skip_invalid) as rejects:

        def reject(raw: RawRow, problems: list[Problem]) -> None:
            if raw.unterminated and raw.problem is None:
                problems = [
                    *problems,
                    Problem("", "the last line has no line ending: the file may be cut off"),
                ]
            report.rejected += 1
            for problem in problems:
                detail: dict[str, Any] = {"row": raw.number}
                if problem.column:
                    detail["column"] = problem.column
                detail["message"] = problem.message
                report.problems.append(detail)
            rejects.write(extract.header, raw, problems)

        def flush(session: Session, chunk: list[_Pending]) -> None:
            for pending, problem in write(session, chunk, report):
                reject(pending.raw, [problem])

        with database.unit_of_work() as session, path.open("rb") as handle:
            chunk: list[_Pending] = []
            reported_bytes = 0
            for raw in extract.rows(handle):
                report.rows_read += 1
                if raw.problem is not None:
                    reject(raw, [Problem("", raw.problem)])
                    continue
                values, problems = parse(dict(zip(extract.header, raw.values, strict=True)))
                key = values[id_key]
                if key is not None:
                    if key in seen:
                        problems.append(
                            Problem(id_column, f"'{key}' appears more than once in the file")
                        )
                    else:
                        seen.add(key)
                if problems:
                    reject(raw, problems)
                    continue
                chunk.append(_Pending(raw, values))
                if len(chunk) >= chunk_size:
                    flush(session, chunk)
                    chunk = []
                    progress.advance(extract.bytes_read - reported_bytes)
                    reported_bytes = extract.bytes_read
            if chunk:
                flush(session, chunk)
            progress.advance(extract.bytes_read - reported_bytes)
            if report.rejected and not skip_invalid:
                raise ImportRejectedError(report)
        report.committed = True
    if rejects.count:
        report.rejects_file = str(rejects_path)
    logger.info(
        "imported %s: read=%d inserted=%d updated=%d unchanged=%d rejected=%d",
        kind,
        report.rows_read,
        report.inserted,
        report.updated,
        report.unchanged,
        report.rejected,
    )
    return report


def _run_staged_appointments(
    database: Database,
    path: Path,
    *,
    skip_invalid: bool,
    progress: ProgressReporter,
    now: datetime,
) -> ImportReport:
    """The appointments extract COPYed, validated and merged set-based (PostgreSQL): the same
    report, problems, rejects file and all-or-nothing rule as `_run_import`."""
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist or is not a file")
    extract = CsvExtract(path, APPOINTMENT_REQUIRED)
    report = ImportReport(kind="appointments", file=str(path))
    progress.update(total=extract.size)
    rejects_path = rejects_path_for(path)
    with _RejectsWriter(rejects_path, enabled=skip_invalid) as rejects:
        with database.unit_of_work() as session, path.open("rb") as handle:
            rejected = staged.load_appointments(
                session,
                extract,
                handle,
                report,
                zone_name=database.settings.timezone,
                now=now,
                skip_invalid=skip_invalid,
                progress=progress,
            )
            if skip_invalid and rejected:
                rejected = _with_original_values(path, rejected)
            for row in rejected:
                for problem in row.problems:
                    detail: dict[str, Any] = {"row": row.number}
                    if problem.column:
                        detail["column"] = problem.column
                    detail["message"] = problem.message
                    report.problems.append(detail)
                rejects.write(extract.header, RawRow(row.number, row.values, None), row.problems)
            if report.rejected and not skip_invalid:
                raise ImportRejectedError(report)
        report.committed = True
    if rejects.count:
        report.rejects_file = str(rejects_path)
    logger.info(
        "imported appointments (staged): read=%d inserted=%d updated=%d unchanged=%d rejected=%d",
        report.rows_read,
        report.inserted,
        report.updated,
        report.unchanged,
        report.rejected,
    )
    return report


def _with_original_values(
    path: Path, rejected: list[staged.RejectedRow]
) -> list[staged.RejectedRow]:
    """The rejected rows with every column as the file gives it (read again, for the rejects
    file): the staged copy holds only the trimmed contract columns."""
    wanted = {row.number for row in rejected if not row.values}
    values: dict[int, list[str]] = {}
    if wanted:
        with path.open("rb") as handle:
            for raw in CsvExtract(path, APPOINTMENT_REQUIRED).rows(handle):
                if raw.number in wanted:
                    values[raw.number] = raw.values
    return [
        staged.RejectedRow(row.number, values.get(row.number, row.values), row.problems)
        for row in rejected
    ]


class _RejectsWriter:
    """Writes rejected rows (original columns plus `reasons`) only in skip-invalid mode."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.count = 0
        self._handle: TextIO | None = None
        self._writer: Any = None

    def __enter__(self) -> _RejectsWriter:
        if self.enabled:
            self.path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, header: list[str], raw: RawRow, problems: list[Problem]) -> None:
        if not self.enabled:
            return
        if self._writer is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow([*header, "reasons"])
        values = raw.values + [""] * (len(header) - len(raw.values))
        reasons = "; ".join(
            f"{problem.column}: {problem.message}" if problem.column else problem.message
            for problem in problems
        )
        self._writer.writerow([*values[: len(header)], reasons])
        self.count += 1


def _write_patients(
    session: Session,
    rows: list[_Pending],
    report: ImportReport,
    now: datetime,
    *,
    existing: Mapping[str, tuple[int, str]] | None = None,
) -> list[tuple[_Pending, Problem]]:
    if existing is None:
        ids = [row.values["pas_patient_id"] for row in rows]
        existing = {
            pas_id: (row_id, digest)
            for pas_id, row_id, digest in session.execute(
                select(Patient.pas_patient_id, Patient.id, Patient.source_hash).where(
                    one_of(session, Patient.pas_patient_id, ids)
                )
            )
        }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        found = existing.get(row.values["pas_patient_id"])
        if found is None:
            inserts.append({**row.values, "created_at": now, "updated_at": now})
        elif found[1] != row.values["source_hash"]:
            updates.append({**row.values, "id": found[0], "updated_at": now})
        else:
            report.unchanged += 1
    if inserts:
        bulk_insert(session, Patient, inserts)
    if updates:
        session.execute(update(Patient), updates)
    report.inserted += len(inserts)
    report.updated += len(updates)
    return []


class _ClinicCache:
    """Clinics by code for the whole import (a trust has hundreds, not millions)."""

    def __init__(self) -> None:
        self.loaded = False
        self.by_code: dict[str, tuple[int, str | None, str | None]] = {}

    def load(self, session: Session) -> None:
        if not self.loaded:
            for clinic in session.execute(
                select(Clinic.id, Clinic.code, Clinic.site, Clinic.specialty_code)
            ):
                self.by_code[clinic.code] = (clinic.id, clinic.site, clinic.specialty_code)
            self.loaded = True

    def resolve(self, session: Session, rows: list[_Pending], report: ImportReport) -> None:
        self.load(session)
        wanted: dict[str, tuple[str | None, str | None]] = {}
        for row in rows:
            wanted[row.values["clinic_code"]] = (row.values["site"], row.values["specialty_code"])
        for code, (site, specialty) in wanted.items():
            known = self.by_code.get(code)
            if known is None:
                clinic_id = session.execute(
                    insert(Clinic)
                    .values(code=code, site=site, specialty_code=specialty)
                    .returning(Clinic.id)
                ).scalar_one()
                self.by_code[code] = (clinic_id, site, specialty)
                report.clinics_created += 1
                continue
            clinic_id, old_site, old_specialty = known
            new_site = site or old_site
            new_specialty = specialty or old_specialty
            if (new_site, new_specialty) != (old_site, old_specialty):
                session.execute(
                    update(Clinic)
                    .where(Clinic.id == clinic_id)
                    .values(site=new_site, specialty_code=new_specialty)
                )
                self.by_code[code] = (clinic_id, new_site, new_specialty)

    def id_of(self, code: str) -> int:
        return self.by_code[code][0]


def _initial_outcome_recorded_at(code: str, start_at: datetime, now: datetime) -> datetime | None:
    """DOMAIN decision: an outcome seen on first import was recorded on the day (start_at);
    a future appointment already cancelled was learnt no earlier than this import."""
    if code == NOT_YET_KNOWN:
        return None
    return start_at if start_at <= now else now


def _write_appointments(
    session: Session,
    rows: list[_Pending],
    report: ImportReport,
    now: datetime,
    clinics: _ClinicCache,
    *,
    existing: Mapping[str, Any] | None = None,
    patient_ids: Mapping[str, int] | None = None,
) -> list[tuple[_Pending, Problem]]:
    if patient_ids is None:
        pas_patient_ids = {row.values["pas_patient_id"] for row in rows}
        # `.all()`: a Result has keys(), so dict() would treat it as a mapping.
        patient_ids = dict(
            session.execute(
                select(Patient.pas_patient_id, Patient.id).where(
                    one_of(session, Patient.pas_patient_id, pas_patient_ids)
                )
            ).all()
        )
    rejected: list[tuple[_Pending, Problem]] = []
    accepted: list[_Pending] = []
    for row in rows:
        if row.values["pas_patient_id"] in patient_ids:
            accepted.append(row)
        else:
            rejected.append(
                (
                    row,
                    Problem(
                        "patient_id",
                        f"unknown patient '{row.values['pas_patient_id']}': import the "
                        "patient first",
                    ),
                )
            )
    if not accepted:
        return rejected
    clinics.resolve(session, accepted, report)
    if existing is None:
        existing = _existing_appointments(session, accepted)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for row in accepted:
        values = row.values
        columns = {
            "pas_appointment_id": values["pas_appointment_id"],
            "patient_id": patient_ids[values["pas_patient_id"]],
            "clinic_id": clinics.id_of(values["clinic_code"]),
            "booked_at": values["booked_at"],
            "start_at": values["start_at"],
            "first_attendance": values["first_attendance"],
            "attendance_code": values["attendance_code"],
            "source_hash": values["source_hash"],
            "updated_at": now,
        }
        found = existing.get(values["pas_appointment_id"])
        if found is None:
            columns["created_at"] = now
            columns["outcome_recorded_at"] = _initial_outcome_recorded_at(
                values["attendance_code"], values["start_at"], now
            )
            inserts.append(columns)
            continue
        if found.source_hash == values["source_hash"]:
            report.unchanged += 1
            continue
        del columns["pas_appointment_id"]
        columns["id"] = found.id
        recorded_at = found.outcome_recorded_at
        if found.attendance_code != values["attendance_code"]:
            # A changed outcome was learnt now, not on the day (leak-free features rely on it).
            recorded_at = None if values["attendance_code"] == NOT_YET_KNOWN else now
            changes.append(
                _change(
                    found.id,
                    "attendance_code",
                    found.attendance_code,
                    values["attendance_code"],
                    now,
                )
            )
        if found.start_at != values["start_at"]:
            changes.append(
                _change(
                    found.id,
                    "start_at",
                    found.start_at.isoformat(),
                    values["start_at"].isoformat(),
                    now,
                )
            )
        columns["outcome_recorded_at"] = recorded_at
        updates.append(columns)
    if inserts:
        bulk_insert(session, Appointment, inserts)
    if updates:
        session.execute(update(Appointment), updates)
    if changes:
        bulk_insert(session, AppointmentChange, changes)
    report.inserted += len(inserts)
    report.updated += len(updates)
    report.changes_recorded += len(changes)
    return rejected


def _existing_appointments(session: Session, rows: list[_Pending]) -> dict[str, Any]:
    return {
        found.pas_appointment_id: found
        for found in session.execute(
            select(
                Appointment.pas_appointment_id,
                Appointment.id,
                Appointment.source_hash,
                Appointment.attendance_code,
                Appointment.start_at,
                Appointment.outcome_recorded_at,
            ).where(
                one_of(
                    session,
                    Appointment.pas_appointment_id,
                    [row.values["pas_appointment_id"] for row in rows],
                )
            )
        )
    }


def _change(
    appointment_id: int, field_name: str, old: str | None, new: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "appointment_id": appointment_id,
        "changed_at": now,
        "source": CHANGE_SOURCE,
        "field": field_name,
        "old_value": old,
        "new_value": new,
    }
