"""Analytics queries: every figure is aggregated in SQL (GROUP BY), never row by row in Python.

One scan serves all breakdowns: on PostgreSQL the dimensions are computed together with
GROUPING SETS; SQLite (the embedded demo database) has no GROUPING SETS, so it runs one
GROUP BY per dimension, which is quick at demo sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from app.appointments.tables import Appointment, AppointmentContact, Clinic
from app.bookings.tables import BookingRequest, RequestKind, RequestStatus
from app.calls.tables import (
    Arm,
    AttemptResult,
    Call,
    CallAssignment,
    CallAttempt,
    CallOutcome,
    CallStatus,
    OutcomeKind,
)
from app.db import dialect
from app.patients.tables import Patient
from app.reference.codes import ATTENDED_CODES, DNA_CODES, NOT_STATED_OR_KNOWN
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus

# The DNA-rate denominator: appointments whose outcome is attended (5, 6) or DNA (3, 7).
# Cancellations (2, 4) and unknown outcomes (0) are neither an attendance nor a DNA.
OUTCOME_CODES = sorted(ATTENDED_CODES | DNA_CODES)

RawKey = Any
# SQLAlchemy 2.1 types Select by its column tuple; these queries are assembled dynamically.
Query = Select[*tuple[Any, ...]]
Expr = Any
Counts = dict[str, int]
Grouped = dict[str, list[tuple[RawKey, Counts]]]


def local_day(session: Session, timezone: str) -> ColumnElement[Any]:
    """The local calendar date an appointment starts on (the same on both backends, summer
    time and midnight included)."""
    return dialect.local_date(session, Appointment.start_at, timezone)


def age_in_years(session: Session, timezone: str, on: Expr | None = None) -> ColumnElement[Any]:
    """The patient's age in whole years on the day of the appointment (or on the date `on`)."""
    day = local_day(session, timezone) if on is None else on
    if dialect.is_postgres(session):
        # As timestamps without a zone: age() of two dates would cast both to timestamptz, a
        # time-zone conversion per row, for the same whole years (both are local midnights).
        # 8% of the appointment cube at a million appointments.
        return cast(
            func.date_part(
                "year", func.age(cast(day, DateTime()), cast(Patient.birth_date, DateTime()))
            ),
            Integer,
        )
    at, born = day, Patient.birth_date
    return (
        cast(func.strftime("%Y", at), Integer)
        - cast(func.strftime("%Y", born), Integer)
        - case((func.strftime("%m-%d", at) < func.strftime("%m-%d", born), 1), else_=0)
    )


# The keys of `patient_columns`: the sources read from the patients table.
PATIENT_SOURCES = frozenset(
    {"ethnic_category", "imd_decile", "age_years", "sex", "needs", "learning_disability"}
)


def patient_columns(
    session: Session, timezone: str, on: Expr | None = None
) -> dict[str, list[Expr]]:
    """Dimension sources that depend on the patient only (age on the given day)."""
    return {
        "ethnic_category": [Patient.ethnic_category],
        "imd_decile": [Patient.imd_decile],
        "age_years": [age_in_years(session, timezone, on)],
        "sex": [Patient.sex],
        "needs": [Patient.communication_needs, Patient.interpreter_needed],
        "learning_disability": [Patient.learning_disability],
    }


def source_columns(session: Session, timezone: str) -> dict[str, list[Expr]]:
    """The SQL columns behind each dimension source named in `dimensions.DIMENSIONS`."""
    return {
        # A clinic has one specialty: one grouping serves both breakdowns.
        "clinic": [Clinic.code, Clinic.specialty_code],
        "day": [local_day(session, timezone)],
        **patient_columns(session, timezone),
    }


def grouped_counts(
    session: Session,
    *,
    base: Callable[[Query], Query],
    sources: Sequence[str],
    columns: Mapping[str, list[Expr]],
    measures: Mapping[str, ColumnElement[Any]],
) -> Grouped:
    """Aggregate `measures` over the rows `base` selects, once per source.

    Returns, for each source, (raw key, {measure: value}) pairs. A raw key is the column value,
    or a tuple when a source has several columns.
    """
    result: Grouped = {source: [] for source in sources}
    if not sources:
        return result
    measure_columns = [expression.label(name) for name, expression in measures.items()]
    if dialect.supports_grouping_sets(session):
        # Each distinct expression once; a source's grouping mask has a 0 bit for each of its
        # own columns (GROUPING() sets the bit of every column a row is not grouped by).
        flat: list[Expr] = []
        for source in sources:
            for expression in columns[source]:
                if not any(expression is seen for seen in flat):
                    flat.append(expression)
        width = len(flat)

        def position(expression: Expr) -> int:
            return next(i for i, seen in enumerate(flat) if seen is expression)

        masks: dict[int, str] = {}
        for source in sources:
            mask = (1 << width) - 1
            for expression in columns[source]:
                mask &= ~(1 << (width - 1 - position(expression)))
            masks[mask] = source
        statement = base(
            select(
                *[expression.label(f"k{index}") for index, expression in enumerate(flat)],
                func.grouping(*flat).label("grouping_mask"),
                *measure_columns,
            )
        ).group_by(func.grouping_sets(*[tuple_(*columns[source]) for source in sources]))
        for row in session.execute(statement).mappings():
            source = masks[row["grouping_mask"]]
            keys = [row[f"k{position(expression)}"] for expression in columns[source]]
            result[source].append(
                (keys[0] if len(keys) == 1 else tuple(keys), _measures(row, measures))
            )
        return result
    for source in sources:
        keys = columns[source]
        statement = base(
            select(*[key.label(f"k{i}") for i, key in enumerate(keys)], *measure_columns)
        ).group_by(*keys)
        for row in session.execute(statement).mappings():
            values = [row[f"k{i}"] for i in range(len(keys))]
            result[source].append(
                (values[0] if len(values) == 1 else tuple(values), _measures(row, measures))
            )
    return result


def _measures(row: Any, measures: Mapping[str, ColumnElement[Any]]) -> Counts:
    return {name: int(row[name] or 0) for name in measures}


def _contacts_in(start: datetime, end: datetime, lookback: timedelta) -> Any:
    """Per appointment: called, reached by a call, SMS delivered.

    Contacts about the period's appointments are made before they start, at most `lookback`
    earlier (the call window and the reminder offsets, with a margin), so the contact log is
    read by when contacts were made, not by a second pass over the period's appointments.
    """
    contact = AppointmentContact
    return (
        select(
            contact.appointment_id.label("appointment_id"),
            func.max(case((contact.channel == "call", 1), else_=0)).label("called"),
            func.max(case((and_(contact.channel == "call", contact.reached), 1), else_=0)).label(
                "call_reached"
            ),
            func.max(case((and_(contact.channel == "sms", contact.reached), 1), else_=0)).label(
                "sms_delivered"
            ),
        )
        .where(contact.contacted_at >= start - lookback, contact.contacted_at < end)
        .group_by(contact.appointment_id)
        .subquery()
    )


def appointment_cube(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    sources: Sequence[str],
    timezone: str,
    contact_lookback: timedelta,
) -> Grouped:
    """One pass over the period's appointments for every breakdown (and the source "day"):
    all appointments, those with an attended or DNA outcome ("total"), DNAs, and how many were
    called, reached by a call or sent a delivered SMS (from the contact log)."""
    contacts = _contacts_in(start, end, contact_lookback)

    def base(statement: Query) -> Query:
        return (
            statement.select_from(Appointment)
            .join(Patient, Patient.id == Appointment.patient_id)
            .join(Clinic, Clinic.id == Appointment.clinic_id)
            .outerjoin(contacts, contacts.c.appointment_id == Appointment.id)
            .where(Appointment.start_at >= start, Appointment.start_at < end)
        )

    measures: dict[str, ColumnElement[Any]] = {
        "appointments": func.count(),
        "total": func.sum(case((Appointment.attendance_code.in_(OUTCOME_CODES), 1), else_=0)),
        "dnas": func.sum(case((Appointment.attendance_code.in_(DNA_CODES), 1), else_=0)),
        "called": func.sum(func.coalesce(contacts.c.called, 0)),
        "reached": func.sum(func.coalesce(contacts.c.call_reached, 0)),
        "sms_delivered": func.sum(func.coalesce(contacts.c.sms_delivered, 0)),
    }
    return grouped_counts(
        session,
        base=base,
        sources=sources,
        columns=source_columns(session, timezone),
        measures=measures,
    )


def as_day(value: Any) -> date:
    parsed = _as_date(value)
    if parsed is None:
        raise ValueError("a grouped day is never null")
    return parsed


def appointment_counts(session: Session, *, start: datetime, end: datetime) -> Counts:
    """All appointments starting in the period, and how many have an attended/DNA outcome."""
    row = session.execute(
        select(
            func.count().label("all"),
            func.sum(case((Appointment.attendance_code.in_(OUTCOME_CODES), 1), else_=0)).label(
                "with_outcome"
            ),
            func.sum(case((Appointment.attendance_code == "0", 1), else_=0)).label("unknown"),
        ).where(Appointment.start_at >= start, Appointment.start_at < end)
    ).one()
    return {
        "all": int(row.all or 0),
        "with_outcome": int(row.with_outcome or 0),
        "unknown": int(row.unknown or 0),
    }


def first_and_last_appointment(session: Session) -> tuple[datetime | None, datetime | None]:
    row = session.execute(
        select(func.min(Appointment.start_at), func.max(Appointment.start_at))
    ).one()
    return row[0], row[1]


# --- Data quality -----------------------------------------------------------------------------


def recording_quality(
    session: Session, *, start: datetime, end: datetime
) -> tuple[list[tuple[str, str | None, Counts]], Counts]:
    """Data quality of the patients seen in the period (two passes over their appointments).

    Per clinic (code, specialty): distinct patients seen and those with ethnicity Z or 99.
    Trust-wide, over distinct patients: the same, plus missing or invalid phones and LSOAs.
    """
    pairs = (
        select(Appointment.clinic_id, Appointment.patient_id)
        .where(Appointment.start_at >= start, Appointment.start_at < end)
        .group_by(Appointment.clinic_id, Appointment.patient_id)
        .subquery()
    )

    def count_when(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    unrecorded = Patient.ethnic_category.in_(NOT_STATED_OR_KNOWN)
    no_phone = and_(
        Patient.mobile_phone.is_(None),
        Patient.landline_phone.is_(None),
        Patient.mobile_phone_invalid.is_(False),
        Patient.landline_phone_invalid.is_(False),
    )
    trust_measures = {
        "no_phone": count_when(no_phone),
        "invalid_mobile": count_when(Patient.mobile_phone_invalid.is_(True)),
        "invalid_landline": count_when(Patient.landline_phone_invalid.is_(True)),
        "no_mobile": count_when(
            and_(Patient.mobile_phone.is_(None), Patient.mobile_phone_invalid.is_(False))
        ),
        "no_lsoa": count_when(Patient.lsoa_code.is_(None)),
        "unknown_lsoa": count_when(
            and_(Patient.lsoa_code.is_not(None), Patient.imd_decile.is_(None))
        ),
    }
    zero: ColumnElement[Any] = literal_column("0")
    # Only the patients whose ethnicity is not recorded are joined: a hash of a tenth of the
    # patients table instead of all of it.
    unrecorded_patients = select(Patient.id.label("id")).where(unrecorded).subquery()
    by_clinic = (
        select(
            Clinic.code.label("code"),
            Clinic.specialty_code.label("specialty"),
            func.count().label("patients"),
            func.count(unrecorded_patients.c.id).label("unrecorded"),
            *[zero.label(name) for name in trust_measures],
        )
        .select_from(pairs)
        .outerjoin(unrecorded_patients, unrecorded_patients.c.id == pairs.c.patient_id)
        .join(Clinic, Clinic.id == pairs.c.clinic_id)
        .group_by(Clinic.code, Clinic.specialty_code)
    )
    trust = (
        select(
            literal_column("NULL").label("code"),
            literal_column("NULL").label("specialty"),
            func.count().label("patients"),
            count_when(unrecorded).label("unrecorded"),
            *[measure.label(name) for name, measure in trust_measures.items()],
        )
        .select_from(Patient)
        # A semi-join: each patient seen once however many clinics they attended.
        .where(
            Patient.id.in_(
                select(Appointment.patient_id).where(
                    Appointment.start_at >= start, Appointment.start_at < end
                )
            )
        )
    )
    clinics: list[tuple[str, str | None, Counts]] = []
    totals: Counts = {"patients": 0, "unrecorded": 0, **dict.fromkeys(trust_measures, 0)}
    rows = [*session.execute(by_clinic).mappings(), *session.execute(trust).mappings()]
    for row in rows:
        counts = {key: int(row[key] or 0) for key in totals}
        if row["code"] is None:
            totals = counts
        else:
            clinics.append((str(row["code"]), row["specialty"], counts))
    return clinics, totals


def data_quality_tasks(session: Session, *, start: datetime, end: datetime) -> int:
    """Contact details navigators found wrong (wrong number, wrong person) in the period."""
    return (
        tasks_raised(session, start=start, end=end).get(TaskKind.DATA_QUALITY, {}).get("raised", 0)
    )


def tasks_raised(session: Session, *, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """Follow-up tasks raised in the period (from the tasks table itself), by kind: how many
    were raised and how many of those are still open."""
    rows = session.execute(
        select(
            NavigatorTask.kind,
            func.count(),
            func.sum(case((NavigatorTask.status == TaskStatus.OPEN, 1), else_=0)),
        )
        .where(NavigatorTask.created_at >= start, NavigatorTask.created_at < end)
        .group_by(NavigatorTask.kind)
    )
    return {
        str(kind): {"raised": int(raised), "open": int(open_ or 0)} for kind, raised, open_ in rows
    }


# --- The randomised comparison (the calls feature's trial record) ---------------------------------


def programme_dates(session: Session) -> tuple[date | None, date | None]:
    """The first and last queue dates on which appointments were assigned to an arm."""
    row = session.execute(
        select(
            func.min(CallAssignment.queue_date),
            func.max(CallAssignment.queue_date),
        )
    ).one()
    first, last = row
    return _as_date(first), _as_date(last)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _assigned_in(
    start: datetime, end: datetime, *, patients: bool, clinics: bool
) -> Callable[[Query], Query]:
    """Assigned appointments that started in the period and have a known final outcome.

    Cancellations stay in the denominator: turning a would-be DNA into a cancellation (and a
    freed slot) is part of what a call does, and dropping them would bias the comparison.
    Every appointment has one patient and one clinic, so their joins add columns, never rows:
    they are left out when no grouping reads them.
    """

    def apply(statement: Query) -> Query:
        statement = statement.select_from(CallAssignment).join(
            Appointment, Appointment.id == CallAssignment.appointment_id
        )
        if patients:
            statement = statement.join(Patient, Patient.id == Appointment.patient_id)
        if clinics:
            statement = statement.join(Clinic, Clinic.id == Appointment.clinic_id)
        return statement.outerjoin(Call, Call.id == CallAssignment.call_id).where(
            Appointment.start_at >= start,
            Appointment.start_at < end,
            Appointment.attendance_code != "0",
        )

    return apply


def arm_measures() -> dict[str, ColumnElement[Any]]:
    is_dna = Appointment.attendance_code.in_(DNA_CODES)
    reached = and_(CallAssignment.arm == Arm.CALL, Call.status == CallStatus.COMPLETED)
    return {
        "total": func.count(),
        "dnas": func.sum(case((is_dna, 1), else_=0)),
        "reached": func.sum(case((reached, 1), else_=0)),
        "reached_dnas": func.sum(case((and_(reached, is_dna), 1), else_=0)),
        # Risks are stored in millionths so every measure stays an integer count.
        "reached_risk_micro": func.sum(
            case(
                (and_(reached, CallAssignment.risk.is_not(None)), CallAssignment.risk * 1_000_000),
                else_=0,
            )
        ),
        "reached_with_risk": func.sum(
            case((and_(reached, CallAssignment.risk.is_not(None)), 1), else_=0)
        ),
        "reached_with_risk_dnas": func.sum(
            case((and_(reached, CallAssignment.risk.is_not(None), is_dna), 1), else_=0)
        ),
    }


def arm_counts(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    sources_wanted: Sequence[str],
    timezone: str,
) -> Grouped:
    """Per arm (and per arm and group for each source): assigned appointments with a known
    outcome, DNAs, how many the call reached, and the model's risks among those reached.

    Raw keys are (arm,) for the source "overall", else (arm, value...)."""
    arm = CallAssignment.arm
    base_columns = source_columns(session, timezone)
    columns: dict[str, list[Expr]] = {"overall": [arm]}
    for source in sources_wanted:
        columns[source] = [arm, *base_columns[source]]
    patients = any(source in PATIENT_SOURCES for source in sources_wanted)
    base = _assigned_in(start, end, patients=patients, clinics="clinic" in sources_wanted)
    with dialect.hash_joins(session) if patients else nullcontext():
        return grouped_counts(
            session,
            base=base,
            sources=["overall", *sources_wanted],
            columns=columns,
            measures=arm_measures(),
        )


def _programme_calls(start: datetime, end: datetime) -> Any:
    """Ids of the calls that covered call-arm appointments starting in the period."""
    return (
        select(CallAssignment.call_id)
        .join(Appointment, Appointment.id == CallAssignment.appointment_id)
        .where(
            Appointment.start_at >= start,
            Appointment.start_at < end,
            CallAssignment.arm == Arm.CALL,
            CallAssignment.call_id.is_not(None),
        )
        .distinct()
    )


def call_activity(session: Session, *, start: datetime, end: datetime) -> Counts:
    """Calls, attempts, reached and wrong numbers for the period's call-arm appointments
    (the programme's calls joined, as in `calls_by_dimension`)."""
    call_ids = _programme_calls(start, end).cte("programme_calls")
    attempts = (
        select(
            func.count().label("attempts"),
            func.sum(case((CallAttempt.result == AttemptResult.WRONG_NUMBER, 1), else_=0)).label(
                "wrong_numbers"
            ),
        )
        .select_from(call_ids)
        .join(CallAttempt, CallAttempt.call_id == call_ids.c.call_id)
        .subquery()
    )
    row = (
        session.execute(
            select(
                func.count().label("calls"),
                func.sum(case((Call.attempts > 0, 1), else_=0)).label("calls_made"),
                func.sum(case((Call.status == CallStatus.COMPLETED, 1), else_=0)).label("reached"),
                func.sum(case((Call.status == CallStatus.UNREACHABLE, 1), else_=0)).label(
                    "unreachable"
                ),
                func.max(attempts.c.attempts).label("attempts"),
                func.max(attempts.c.wrong_numbers).label("wrong_numbers"),
            )
            .select_from(call_ids)
            .join(Call, Call.id == call_ids.c.call_id)
            .join(attempts, true())  # one row of attempt totals
        )
        .mappings()
        .one()
    )
    return {key: int(value or 0) for key, value in row.items()}


def calls_by_dimension(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    sources_wanted: Sequence[str],
    timezone: str,
) -> Grouped:
    """Per group of patient: programme calls, made, reached, unreachable, attempts, wrong
    numbers, and calls with each outcome kind. Every call has one sex, so the groups of the
    source "sex" add up to the period's totals."""
    # The programme's calls are joined, not tested with IN: PostgreSQL guesses 200 rows for
    # an IN over a CTE and then looks up every call, patient and attempt one by one.
    call_ids = _programme_calls(start, end).cte("programme_calls")
    kinds = [str(kind) for kind in OutcomeKind]
    per_call = (
        select(
            CallOutcome.call_id.label("call_id"),
            *[
                func.max(case((CallOutcome.kind == kind, 1), else_=0)).label(f"has_{kind}")
                for kind in kinds
            ],
        )
        .join(call_ids, call_ids.c.call_id == CallOutcome.call_id)
        .group_by(CallOutcome.call_id)
        .subquery()
    )
    wrong = (
        select(CallAttempt.call_id.label("call_id"), func.count().label("wrong_numbers"))
        .join(call_ids, call_ids.c.call_id == CallAttempt.call_id)
        .where(CallAttempt.result == AttemptResult.WRONG_NUMBER)
        .group_by(CallAttempt.call_id)
        .subquery()
    )

    def base(statement: Query) -> Query:
        return (
            statement.select_from(call_ids)
            .join(Call, Call.id == call_ids.c.call_id)
            .join(Patient, Patient.id == Call.patient_id)
            .outerjoin(per_call, per_call.c.call_id == Call.id)
            .outerjoin(wrong, wrong.c.call_id == Call.id)
        )

    measures: dict[str, ColumnElement[Any]] = {
        "calls": func.count(),
        "calls_made": func.sum(case((Call.attempts > 0, 1), else_=0)),
        "reached": func.sum(case((Call.status == CallStatus.COMPLETED, 1), else_=0)),
        "unreachable": func.sum(case((Call.status == CallStatus.UNREACHABLE, 1), else_=0)),
        "attempts": func.sum(Call.attempts),
        "wrong_numbers": func.sum(func.coalesce(wrong.c.wrong_numbers, 0)),
        **{f"has_{kind}": func.sum(func.coalesce(per_call.c[f"has_{kind}"], 0)) for kind in kinds},
    }
    with dialect.hash_joins(session):
        return grouped_counts(
            session,
            base=base,
            sources=sources_wanted,
            columns=patient_columns(session, timezone, on=Call.queue_date),
            measures=measures,
        )


def pas_confirmed_requests(
    session: Session, *, start: datetime, end: datetime, timezone: str
) -> dict[str, int]:
    """For requests whose original appointment starts in the period: rebookings the PAS
    confirmed, and freed slots refilled (the PAS confirmed the rebooking or cancellation, and
    another patient's appointment was booked into the same clinic session, that is the same
    clinic on the same local day, after the PAS cancelled the original)."""
    original = aliased(Appointment)
    other = aliased(Appointment)
    refill = (
        select(other.id)
        .where(
            other.clinic_id == original.clinic_id,
            other.patient_id != original.patient_id,
            dialect.local_date(session, other.start_at, timezone)
            == dialect.local_date(session, original.start_at, timezone),
            original.outcome_recorded_at.is_not(None),
            other.booked_at > original.outcome_recorded_at,
        )
        .exists()
    )
    row = session.execute(
        select(
            func.count().filter(BookingRequest.kind == RequestKind.REBOOK),
            func.count().filter(refill),
        )
        .select_from(BookingRequest)
        .join(original, original.id == BookingRequest.appointment_id)
        .where(
            BookingRequest.status == RequestStatus.CONFIRMED,
            original.start_at >= start,
            original.start_at < end,
        )
    ).one()
    return {"rebookings_confirmed": int(row[0] or 0), "slots_refilled": int(row[1] or 0)}
