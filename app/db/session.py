"""Engines and sessions: one engine per process, one transaction owner per unit of work.

Requests get a session from `get_session`, which commits when the handler returns and rolls
back when it raises; services only flush. CLI commands and workers use `unit_of_work`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db.dialect import install_sqlite_functions
from app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(database_url)
    # Statement parameters hold patient data: keep them out of error messages and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _make_sqlite_transactional(engine)
        install_sqlite_functions(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def plan_each_statement_for_its_parameters(engine: Engine) -> None:
    """On PostgreSQL, never reuse a prepared statement's generic plan on this engine.

    psycopg prepares a statement on the server after a few executions, and PostgreSQL then
    keeps one generic plan for it until the table's statistics change. A long-running process
    whose tables start empty (the feed listener's inbox on a new database) keeps the sequential
    scan it chose then: measured, 210,000 messages in the inbox and every control-id lookup
    still a sequential scan (40,000 scans, 11 index scans) on a server with autovacuum off.
    A custom plan per execution costs a fraction of a millisecond and uses the index.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET plan_cache_mode = force_custom_plan")
        cursor.close()
        dbapi_connection.commit()  # a SET inside a rolled-back transaction would be undone

    engine.dispose()  # connections opened before this use the setting too


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy own BEGIN on SQLite so savepoints and write locks behave as documented.

    `BEGIN IMMEDIATE` takes the write lock up front: two writers queue on the busy timeout
    instead of one failing with "database is locked" when it upgrades a read lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


class Database:
    """The engine and session factory of one process, built from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_db_engine(
            settings.database_url,
            **(
                {}
                if settings.is_sqlite
                else {
                    "pool_size": settings.database_pool_size,
                    "max_overflow": settings.database_max_overflow,
                    "pool_timeout": settings.database_pool_timeout_seconds,
                }
            ),
        )
        self.sessions = create_session_factory(self.engine)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: the request's session, committed after the handler succeeds.

    Use it through `SessionDep`: its function scope commits before the response is sent, so a
    client's next request always sees what its last one wrote (read-your-writes). With the
    default request scope FastAPI would commit after the response had gone out.
    """
    with get_database(request).unit_of_work() as session:
        yield session


# Every route and dependency must ask for the session the same way, so that one request
# shares one session (on SQLite a second one would wait on the first one's write lock).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
