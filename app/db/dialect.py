"""Every difference between PostgreSQL (production) and SQLite (the embedded default).

Features call these named helpers instead of testing the dialect themselves, so a reader finds
each backend-specific construct (COPY, `= ANY`, upserts, `SKIP LOCKED`, advisory locks,
GROUPING SETS, local-date expressions, planner statistics) in one module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    Date,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, FromClause, Select

from app.db.base import Base


def is_postgres(session_or_connection: Any) -> bool:
    bind = (
        session_or_connection.get_bind()
        if isinstance(session_or_connection, Session)
        else session_or_connection
    )
    return bool(bind.dialect.name == "postgresql")


supports_grouping_sets = is_postgres  # SQLite has no GROUPING SETS: callers loop instead


# --- reading many keys and writing many rows -------------------------------------------------


def one_of(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL one array parameter (`= ANY`), because thousands of
    separate bind parameters cost more to render than to run."""
    if is_postgres(session):
        return cast(
            "ColumnElement[bool]",
            column == any_(bindparam("keys", list(values), type_=ARRAY(column.type))),
        )
    return cast("ColumnElement[bool]", column.in_(list(values)))


def one_of_strings(session: Session, column: Any, values: Collection[str]) -> ColumnElement[bool]:
    if is_postgres(session):
        return cast(
            "ColumnElement[bool]",
            column == any_(bindparam("keys", list(values), type_=ARRAY(String))),
        )
    return cast("ColumnElement[bool]", column.in_(list(values)))


def one_of_strings_bound(dialect: str, column: Any, name: str = "keys") -> ColumnElement[bool]:
    """`one_of_strings` with the values given at execution (`{name: [...]}`), for a statement
    built once per dialect (`engine.dialect.name`) and run many times: building a statement
    costs more client time than running a small one."""
    if dialect == "postgresql":
        return cast("ColumnElement[bool]", column == any_(bindparam(name, type_=ARRAY(String))))
    return cast("ColumnElement[bool]", column.in_(bindparam(name, expanding=True)))


def bulk_insert(session: Session, model: type[Base] | Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows inside the session's transaction as fast as the backend allows.

    PostgreSQL: COPY on the session's own connection (an order of magnitude faster than
    executemany). SQLite: one Core executemany. Every row must have the same keys.
    """
    if not rows:
        return
    table = model if isinstance(model, Table) else cast(Table, model.__table__)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    driver = connection.connection.driver_connection
    assert driver is not None  # noqa: S101 - a live DBAPI connection inside the transaction
    column_list = ", ".join(f'"{name}"' for name in columns)
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({column_list}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row([row[name] for name in columns])


def upsert(session: Session, table: FromClause) -> Any:
    """An INSERT that understands `on_conflict_do_nothing` / `on_conflict_do_update`."""
    module: Any = postgresql if is_postgres(session) else sqlite
    return module.insert(table)


def insert_ignoring_conflicts(session: Session, table: FromClause) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the session's backend."""
    return upsert(session, table).on_conflict_do_nothing()


# --- concurrency -----------------------------------------------------------------------------


def skip_locked(query: Select[Any]) -> Select[Any]:
    """`FOR UPDATE SKIP LOCKED` (PostgreSQL); SQLite ignores it (one writer at a time)."""
    return query.with_for_update(skip_locked=True)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per name (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"navigator.worker.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold a PostgreSQL session-level advisory lock for `name` on its own connection while the
    block runs; on SQLite (one process) there is nothing to lock."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = advisory_key(name)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE freshly bulk-written tables so the planner keeps its index plans (PostgreSQL)."""
    if is_postgres(session) and tables:
        session.execute(text("ANALYZE " + ", ".join(tables)))


def tune_for_reporting(session: Session) -> None:
    """Give this transaction's aggregations enough memory to hash in RAM (PostgreSQL).

    The default 4 MB makes GROUPING SETS and the contact-log aggregate spill to disk; parallel
    workers would each rebuild the same hash tables, which on a small server only adds work.
    `SET LOCAL` ends with the transaction.
    """
    if is_postgres(session):
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


@contextmanager
def hash_joins(session: Session) -> Iterator[None]:
    """Plan the block's queries without nested loops (PostgreSQL), then restore the setting.

    For the reports that join the programme's rows (call assignments, calls) to patients: the
    planner multiplies the share of appointments in the period by the share assigned, as if
    they were independent, but assignments all fall in the programme's recent months, so it
    expects a quarter of the rows (7,625 for 31,566 at a million appointments) and looks each
    patient up one by one where one hash of the patients' covering index is cheaper.
    """
    if not is_postgres(session):
        yield
        return
    previous = session.execute(text("SELECT current_setting('enable_nestloop')")).scalar_one()
    session.execute(text("SET LOCAL enable_nestloop = off"))
    try:
        yield
    finally:
        session.execute(
            text("SELECT set_config('enable_nestloop', :previous, true)"), {"previous": previous}
        )


# --- local dates -----------------------------------------------------------------------------


def quoted_zone(timezone: str) -> ColumnElement[str]:
    """A time zone as an SQL literal (validated by ZoneInfo, so never user text).

    A literal rather than a bound parameter: PostgreSQL matches GROUP BY expressions textually,
    and two bound copies of the same value would not match.
    """
    ZoneInfo(timezone)
    return literal_column("'" + timezone.replace("'", "''") + "'")


def local_date(session: Session, moment: Any, timezone: str) -> ColumnElement[Any]:
    """The local calendar date of a stored UTC timestamp, the same on both backends (summer
    time and midnight included): PostgreSQL's `timezone()`, and on SQLite the
    `navigator_local_date` function every connection registers (`register_sqlite_functions`)."""
    if is_postgres(session):
        return sql_cast(func.timezone(quoted_zone(timezone), moment), Date)
    return func.navigator_local_date(moment, quoted_zone(timezone))


def _sqlite_local_date(stored: str | None, timezone: str) -> str | None:
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    day: date = moment.astimezone(ZoneInfo(timezone)).date()
    return day.isoformat()


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Functions SQLite lacks, registered on each new connection (see `app.db.session`)."""
    dbapi_connection.create_function(
        "navigator_local_date", 2, _sqlite_local_date, deterministic=True
    )


def install_sqlite_functions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        register_sqlite_functions(dbapi_connection)


# --- staged bulk loads (PostgreSQL COPY into scratch tables) ---------------------------------

supports_staged_load = is_postgres  # SQLite loads row by row in chunks instead


def tune_for_bulk_load(session: Session) -> None:
    """Give this transaction's sorts and hashes room to stay in memory (PostgreSQL); `SET
    LOCAL` ends with the transaction."""
    if is_postgres(session):
        session.execute(text("SET LOCAL work_mem = '256MB'"))


def create_scratch_table(
    session: Session, name: str, definition: str, params: dict[str, Any] | None = None
) -> None:
    """A temporary table dropped at commit or rollback; `definition` is `(columns)` or
    `AS SELECT ...` (with `params`). The name and definition are code, never user text."""
    if definition.lstrip().upper().startswith("AS "):
        statement = f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP {definition}"
    else:
        statement = f"CREATE TEMPORARY TABLE {name} {definition} ON COMMIT DROP"
    session.execute(text(statement), params or {})


def copy_rows(
    session: Session, table_name: str, columns: list[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY an iterable of rows into `table_name` on the session's connection (PostgreSQL),
    returning how many were written; the iterable may raise to abort the whole load."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None  # noqa: S101 - a live DBAPI connection inside the transaction
    column_list = ", ".join(f'"{name}"' for name in columns)
    count = 0
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table_name}" ({column_list}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def iso_utc_text(expression: str) -> str:
    """SQL rendering a timestamp as Python's `datetime.isoformat()` of its UTC value."""
    utc = f"(({expression}) AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"extract(microseconds FROM {utc})::bigint % 1000000 <> 0 THEN to_char({utc}, '.US') "
        "ELSE '' END || '+00' || chr(58) || '00')"
    )
