"""A clock far outside the data (years before the first appointment, years after the last)
gives every page and list the same plain answers a user would see, never a server error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.clock import TEST_NOW
from tests.factories import create_appointment
from tests.test_access_policy import app_routes

# Pages and lists whose answer depends on "today".
DATED_READS = [
    "/",
    "/queue",
    "/manage/queues",
    "/analytics",
    "/api/calls/queue",
    "/api/sms/stats",
    "/api/appointments",
]


@pytest.mark.parametrize(
    "moved", [timedelta(days=-3 * 365), timedelta(days=4 * 365)], ids=["before", "after"]
)
def test_every_page_answers_plainly_with_the_clock_years_outside_the_data(
    session: Session, settings: Settings, database: Database, moved: timedelta
) -> None:
    for days in (-20, -3, 2, 6):
        create_appointment(session, start_at=TEST_NOW + timedelta(days=days, hours=1))
    create_user(session, Role.ADMIN, username="admin.far")
    session.commit()
    clock = FixedClock(TEST_NOW + moved)
    app = create_app(settings, database, clock=clock)
    with TestClient(app) as client:
        sign_in(client, "admin.far")
        answers = {path: client.get(path).status_code for path in DATED_READS}
        assert answers == dict.fromkeys(DATED_READS, 200)
        # No programme in the period: the impact report says why rather than inventing zeros.
        impact = client.get("/api/analytics/impact")
        assert impact.status_code == 409
        assert impact.json()["code"] == "not_ready"
        for method, path in app_routes(app):
            if method == "GET" and "{" not in path and path not in {"/sign-out"}:
                answer = client.get(path, follow_redirects=False)
                assert answer.status_code < 500, (path, answer.status_code)
