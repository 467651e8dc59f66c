"""PostgreSQL restarted under load: each part of the service recovers by itself.

These tests restart the shared local server, so they carry the `faults` marker and run
serially after the main runs (scripts/test.sh); every test waits for `pg_isready` before
it ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment
from tests.faults.postgres import require_local_postgres, restart_postgres

pytestmark = [pytest.mark.faults, pytest.mark.postgres_only]


def test_the_web_service_answers_503_during_a_restart_and_recovers_by_itself(
    database: Database, settings: Settings, session: Session
) -> None:
    require_local_postgres(settings.database_url)
    for _ in range(5):
        create_appointment(session)
    create_user(session, username="restart-nav")
    session.commit()
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    with TestClient(create_app(settings, database)) as client:
        sign_in(client, "restart-nav")
        assert client.get("/api/appointments").status_code == 200

        def keep_working() -> None:
            while not stop.is_set():
                statuses[client.get("/api/appointments").status_code] += 1
                time.sleep(0.02)

        worker = threading.Thread(target=keep_working)
        worker.start()
        try:
            time.sleep(0.5)
            restart_postgres()
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(30)

        # Back to normal at once, on the same app and pool: no restart of the service.
        after = [client.get("/api/appointments").status_code for _ in range(10)]
        me = client.get("/api/auth/me")

    assert after == [200] * 10
    assert me.status_code == 200  # the server-side session survived the restart
    assert statuses[200] > 0
    assert set(statuses) <= {200, 503}, statuses  # never a 500 during the outage
