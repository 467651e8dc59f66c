"""When no database connection comes free in time, the request is answered 503, not 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in


@pytest.mark.postgres_only
def test_a_request_that_finds_every_connection_busy_gets_503_and_retry_after(
    settings: Settings, database: Database
) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite has no connection pool limit here")
    with database.unit_of_work() as session:
        create_user(session, username="pool.reader")
    tight = settings.model_copy(
        update={
            "database_pool_size": 1,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 0.2,
        }
    )
    small = Database(tight)
    try:
        with TestClient(create_app(tight, small)) as client:
            sign_in(client, "pool.reader")
            with small.engine.connect():  # another holder keeps the only connection
                busy = client.get("/api/patients")
            after = client.get("/api/patients")
    finally:
        small.dispose()

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "5"
    assert "try again" in busy.json()["detail"].lower()
    assert after.status_code == 200
