"""`/metrics`: Prometheus text, protected by a bearer token or an admin session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.tables import Call, CallStatus
from app.clock import FixedClock
from app.db.session import Database
from app.jobs.tables import JobRun
from app.main import create_app
from app.risk.tables import RiskModel
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.clock import CALENDAR, TODAY
from tests.factories import create_patient

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(
        create_app(
            settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}), database, clock=clock
        )
    ) as client:
        yield client


def scrape(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_need_the_token_or_an_admin(client: TestClient, session: Session) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    create_user(session, role=Role.MANAGER, username="metrics-manager")
    create_user(session, role=Role.ADMIN, username="metrics-admin")
    session.commit()
    sign_in(client, "metrics-manager")
    assert client.get("/metrics").status_code == 403
    sign_in(client, "metrics-admin")
    assert client.get("/metrics").status_code == 200


def test_requests_are_counted_by_route_template_never_the_concrete_path(
    client: TestClient, session: Session
) -> None:
    create_user(session, username="metrics-nav")
    session.commit()
    sign_in(client, "metrics-nav")
    assert client.get("/api/patients/424242").status_code == 404

    samples = scrape(client)

    # Signed in too: the request's own session must not keep the gauges from the database.
    assert samples["navigator_database_up"] == [({}, 1.0)]
    counted = [
        labels
        for labels, value in samples["navigator_http_requests_total"]
        if value >= 1 and labels["route"] == "/api/patients/{patient_id}"
    ]
    assert {"method": "GET", "route": "/api/patients/{patient_id}", "status": "404"} in counted
    assert not any(
        "424242" in labels["route"] for labels, _ in samples["navigator_http_requests_total"]
    )
    assert any(
        labels["route"] == "/api/patients/{patient_id}"
        for labels, _ in samples["navigator_http_request_duration_seconds_bucket"]
    )


def test_the_model_version_in_use_and_the_database_are_reported(
    client: TestClient, session: Session
) -> None:
    session.add(
        RiskModel(
            version="v-test-1", artefact_path="x", artefact_sha256="0" * 64, card={}, active=True
        )
    )
    session.commit()

    samples = scrape(client)

    assert ({"version": "v-test-1"}, 1.0) in samples["navigator_risk_model_active"]
    assert samples["navigator_database_up"] == [({}, 1.0)]


def test_the_last_success_of_each_daily_job_is_reported(
    client: TestClient, session: Session
) -> None:
    finished = CALENDAR.at(TODAY, time(7, 0, 3))
    for status, at in (("succeeded", finished), ("failed", finished + timedelta(days=1))):
        session.add(
            JobRun(
                name="queue_build",
                day=at.date(),
                status=status,
                worker="host:1",
                started_at=at,
                finished_at=at,
                summary={},
            )
        )
    session.commit()

    samples = scrape(client)

    # The later failure does not count as a success.
    assert samples["navigator_daily_job_last_success_timestamp_seconds"] == [
        ({"job": "queue_build"}, finished.timestamp())
    ]


def test_the_call_queue_gauge_counts_the_local_today_of_the_clock(
    client: TestClient, session: Session, clock: FixedClock
) -> None:
    patient = create_patient(session)
    yesterday = TODAY - timedelta(days=1)
    for queue_date, status in (
        (TODAY, CallStatus.READY),
        (TODAY, CallStatus.READY),
        (TODAY, CallStatus.COMPLETED),
        (yesterday, CallStatus.READY),
    ):
        session.add(Call(patient_id=patient.id, queue_date=queue_date, priority=1.0, status=status))
    session.commit()

    today = {
        labels["status"]: value for labels, value in scrape(client)["navigator_call_queue_size"]
    }
    # Just after local midnight the queue of the new day is empty; yesterday's is not counted.
    clock.set(CALENDAR.day_start(TODAY + timedelta(days=1)))
    tomorrow = scrape(client).get("navigator_call_queue_size", [])

    assert today == {"ready": 2.0, "completed": 1.0}
    assert tomorrow == []


def test_the_latest_risk_review_and_its_drift_are_gauges(
    client: TestClient, session: Session
) -> None:
    from app.risk.tables import RiskModelDecision

    reviewed = CALENDAR.at(TODAY, time(2, 0))
    month = {
        "month": "2026-11",
        "rows": 812,
        "observed_minus_predicted": 0.031,
        "auroc": 0.71,
        "groups": {"ethnic_group": [{"group": "Black or Black British",
                                     "observed_minus_predicted": 0.052}]},
    }  # fmt: skip
    for at, outcome, months in (
        (reviewed - timedelta(days=30), "promoted", []),
        (reviewed, "kept", [{**month, "month": "2026-10", "rows": 900}, month]),
    ):
        session.add(
            RiskModelDecision(
                decided_at=at,
                outcome=outcome,
                champion_version="v-champion",
                reason="recorded",
                comparison={},
                drift={
                    "model_version": "v-champion",
                    "limit": 0.02,
                    "months": months,
                    "alerts": [{"month": "2026-11", "message": "drifted"}],
                },
            )
        )
    session.commit()

    samples = scrape(client)

    assert samples["navigator_risk_review_last_timestamp_seconds"] == [
        ({"outcome": "kept"}, reviewed.timestamp())
    ]
    latest = {"version": "v-champion", "month": "2026-11"}
    assert samples["navigator_risk_drift_observed_minus_predicted"] == [(latest, 0.031)]
    assert samples["navigator_risk_drift_auroc"] == [(latest, 0.71)]
    assert samples["navigator_risk_drift_outcomes"] == [(latest, 812.0)]
    assert samples["navigator_risk_drift_alerts"] == [({"version": "v-champion"}, 1.0)]
    assert samples["navigator_risk_drift_calibration_limit"] == [({}, 0.02)]
    assert samples["navigator_risk_drift_group_observed_minus_predicted"] == [
        (
            {"version": "v-champion", "attribute": "ethnic_group",
             "group": "Black or Black British"},
            0.052,
        )
    ]  # fmt: skip
