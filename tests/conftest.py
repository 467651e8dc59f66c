"""Test fixtures: a real database per test run (SQLite or PostgreSQL), emptied after each test.

`NAVIGATOR_TEST_DATABASE_URL` picks the backend. For PostgreSQL a fresh database is created
for each pytest worker, migrated once, and dropped at the end; under CI a PostgreSQL that
cannot be reached fails the run rather than skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.auth import passwords
from app.clock import FixedClock
from app.db import migrate
from app.db.registry import metadata
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.clock import TEST_NOW
from tests.databases import temporary_database

TEST_DATABASE_URL = os.environ.get("NAVIGATOR_TEST_DATABASE_URL", "sqlite://")

# argon2id at its minimum cost for every test: the same code paths and hash format, without a
# tenth of a second of hashing per sign-in (the service's own parameters are tested in
# tests/auth/test_roles_and_passwords.py).
passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def pytest_report_header() -> str:
    return f"navigator test database: {TEST_DATABASE_URL.split('@')[-1]}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session (one per xdist worker)."""
    with temporary_database(TEST_DATABASE_URL, tmp_path_factory.mktemp("db")) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def settings(database: Database, database_url: str, tmp_path: Path) -> Settings:
    """Settings for one test; asking for them also empties the database afterwards."""
    return Settings(
        _env_file=None,
        env="development",
        database_url=database_url,
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        secret_key="test-secret-key-that-is-long-enough-for-tests",
        public_base_url="https://navigator.test",
        sms_provider="fake",
    )


@pytest.fixture(scope="session")
def _session_database(database_url: str) -> Iterator[Database]:
    settings = Settings(_env_file=None, database_url=database_url)
    db = Database(settings)
    yield db
    db.dispose()


@pytest.fixture
def database(_session_database: Database) -> Iterator[Database]:
    """The test run's database; every table is emptied after the test that used it."""
    yield _session_database
    empty_all_tables(_session_database)


def empty_all_tables(db: Database) -> None:
    """Every row deleted, children first, and ids numbered from 1 again. DELETE rather than
    TRUNCATE on PostgreSQL too: on tables this small it takes a tenth of the time (TRUNCATE of
    every table cost 60-80 ms after each of a thousand tests)."""
    tables = [table.name for table in metadata.sorted_tables]
    with db.engine.begin() as connection:
        for name in reversed(tables):
            connection.execute(text(f"DELETE FROM {name}"))
        if connection.dialect.name == "postgresql":
            used = connection.scalars(
                text(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) "
                    "FROM pg_sequences "
                    "WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
            ).all()
            if used:
                restarts = ", ".join(f"setval('{name}', 1, false)" for name in used)
                connection.execute(text(f"SELECT {restarts}"))


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is committed when the test body finishes without error."""
    with database.unit_of_work() as db_session:
        yield db_session


@pytest.fixture
def clock() -> FixedClock:
    """The test's clock, at `tests.clock.TEST_NOW`; move it with `clock.advance(...)`."""
    return FixedClock(TEST_NOW)


@pytest.fixture
def app_client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database, clock=clock)) as client:
        yield client


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]
