"""The manager's landing dashboard: today's queues, last complete month's headline (avoided
DNAs with interval, savings gross and net of navigator time) and alerts, each linking to the
page that deals with it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.analytics import landing
from app.analytics.periods import last_complete_month
from app.appointments.tables import AppointmentContact
from app.auth.roles import Role
from app.calls.tables import Call
from app.feed.tables import FeedMessage
from app.jobs.tables import JobRun
from app.risk.tables import RiskModel
from app.settings import Settings
from tests.analytics.helpers import create_arm, create_outcomes
from tests.auth.helpers import create_user, sign_in
from tests.clock import TEST_NOW, TODAY
from tests.factories import create_patient

LAST_MONTH = last_complete_month(TODAY)
IN_LAST_MONTH = datetime.combine(LAST_MONTH.start, datetime.min.time(), tzinfo=UTC) + timedelta(
    days=3, hours=10
)


def _last_month_programme(session: Session) -> None:
    create_arm(
        session,
        arm="call",
        attended=95,
        dnas=5,
        reached_attended=39,
        reached_dnas=1,
        start_at=IN_LAST_MONTH,
        queue_date=LAST_MONTH.start,
    )
    create_arm(
        session, arm="holdout", attended=88, dnas=12, start_at=IN_LAST_MONTH,
        queue_date=LAST_MONTH.start,
    )  # fmt: skip


def _todays_calls(session: Session, statuses: dict[str, int]) -> None:
    for status, count in statuses.items():
        for _ in range(count):
            patient = create_patient(session)
            session.add(
                Call(
                    patient_id=patient.id,
                    queue_date=TODAY,
                    priority=1.0,
                    status=status,
                    attempts=0,
                    documents_shown=[],
                )
            )
    session.flush()


def _manager(session: Session, client: TestClient) -> None:
    create_user(session, role=Role.MANAGER, username="landing-manager")
    session.commit()
    sign_in(client, "landing-manager")


def test_a_manager_lands_on_the_dashboard_with_queues_and_last_months_headline(
    session: Session, app_client: TestClient
) -> None:
    _last_month_programme(session)
    _todays_calls(session, {"ready": 3, "retry": 1, "in_progress": 1, "completed": 4})
    _manager(session, app_client)

    home = app_client.get("/", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/dashboard"
    page = app_client.get("/dashboard")

    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    queues = text[text.index('data-testid="queues-today"') :]
    value = '</dt> <dd class="nhsuk-summary-list__value">'
    assert f"Calls added to the queue today{value}9" in queues
    assert f"(reached or closed unreachable){value}4" in queues
    assert f"In progress{value}1" in queues
    assert f"due again){value}4" in queues
    assert 'href="/manage/queues"' in queues
    # Hold-out 12% against call arm 5% over 100 call-arm appointments: 7 avoided.
    assert f"Last month: {LAST_MONTH.label()}" in text
    assert "7 avoided DNAs" in text
    assert "95% confidence interval" in text
    assert "Gross savings</strong> (before navigator time): £700 to £1,120" in text
    assert "Net savings</strong>: not worked out" in text
    assert 'href="/analytics?period=last-month"' in text


def test_net_savings_take_off_navigator_time(session: Session, settings: Settings) -> None:
    _last_month_programme(session)
    costed = settings.model_copy(
        update={"analytics_navigator_hourly_cost": 30.0, "analytics_minutes_per_call": 10.0}
    )

    board = landing.landing(session, costed, TEST_NOW)

    estimate = board.month.estimate
    assert estimate is not None
    # 100 call-arm appointments, one attempt each: 100 x 10 minutes at £30 an hour = £500.
    assert estimate.navigator_cost is not None
    assert round(estimate.navigator_cost, 6) == 500
    assert estimate.net_savings_low == estimate.savings_low - estimate.navigator_cost


def test_every_alert_links_to_its_page(session: Session, app_client: TestClient) -> None:
    # A group left behind last month: Black patients carry DNAs, nobody reached them.
    white = create_outcomes(
        session, attended=40, dnas=10, start_at=IN_LAST_MONTH, ethnic_category="A"
    )
    create_outcomes(session, attended=30, dnas=20, start_at=IN_LAST_MONTH, ethnic_category="M")
    for appointment in white:
        session.add(
            AppointmentContact(
                appointment_id=appointment.id,
                channel="call",
                contacted_at=IN_LAST_MONTH - timedelta(days=7),
                reached=True,
                source_ref=f"call:{appointment.id}",
            )
        )
    session.add(
        JobRun(name="queue_build", day=TODAY, status="failed", worker="w1", error="TimeoutError")
    )
    session.add(JobRun(name="sms_schedule", day=TODAY, status="succeeded", worker="w1"))
    session.add(
        FeedMessage(
            control_id="MSG1", message_type="SIU^S12", status="error", ack_code="AE",
            error="Unknown patient", raw="MSH|", size_bytes=4,
        )
    )  # fmt: skip
    session.add(
        RiskModel(
            version="fake-1",
            artefact_path="/nowhere",
            artefact_sha256="0" * 64,
            active=True,
            card={
                "calibration_by_group": {
                    "limit": 0.02,
                    "attributes": {},
                    "flags": [
                        {
                            "attribute": "ethnic_group",
                            "message": "The model under-predicts DNAs for Black patients by "
                            "5.0 points: their calls are ranked too low.",
                        }
                    ],
                },
                "fairness": {},
            },
        )
    )
    _manager(session, app_client)

    text = re.sub(r"\s+", " ", app_client.get("/dashboard").text)

    alerts = dict(re.findall(r'data-alert="([a-z-]+)".*?<a href="([^"]+)"', text))
    assert alerts == {
        "job": "/manage/queues",
        "reach": "/analytics?period=last-month#reach-heading",
        "feed": "/feed",
        "model": "/model",
    }
    assert "A daily job failed: the morning call-queue build" in text
    assert "failed (TimeoutError)" in text
    assert "A group left behind: Black or Black British (ethnic group)" in text
    assert "1 PAS feed message not applied" in text
    assert "under-predicts DNAs for Black patients" in text
    assert "sms schedule" not in text.lower()


def test_quiet_day_says_nothing_needs_attention(session: Session, app_client: TestClient) -> None:
    create_outcomes(session, attended=20, dnas=2, start_at=IN_LAST_MONTH)
    _manager(session, app_client)

    page = app_client.get("/dashboard")

    assert 'data-testid="no-alerts"' in page.text
    assert "no impact to measure" in page.text or "hold-out" in page.text


def test_navigators_cannot_open_the_dashboard(session: Session, app_client: TestClient) -> None:
    create_user(session, role=Role.NAVIGATOR, username="landing-nav")
    session.commit()
    sign_in(app_client, "landing-nav")

    assert app_client.get("/dashboard").status_code == 403
