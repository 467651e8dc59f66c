"""The model card page: managers read it, navigators are refused, admins activate models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.db.session import Database
from app.main import create_app
from app.risk import service
from app.risk.pages import calibration_chart
from app.risk.tables import RiskModel
from app.settings import Settings
from tests.auth.helpers import create_user, form_token, sign_in_with_form
from tests.risk.helpers import NOW, create_trust, risk_settings


@pytest.fixture
def page_client(settings: Settings, database: Database) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"login_failure_delay_ms": 0})
    with TestClient(create_app(fast, database), base_url="https://testserver") as client:
        yield client


def _sign_in_as(session: Session, client: TestClient, role: Role) -> None:
    user = create_user(session, role=role)
    session.commit()
    assert sign_in_with_form(client, user.username).status_code == 303


def _train(session: Session, settings: Settings, *, activate: bool = True) -> str:
    result = service.train_model(
        session, risk_settings(settings), now=NOW, as_of=NOW, activate=activate
    )
    session.commit()
    return result.model.version


@pytest.mark.slow
def test_managers_see_the_active_card_with_chart_baselines_and_fairness(
    page_client: TestClient, session: Session, settings: Settings
) -> None:
    create_trust(session, patients=300, past=2_500, future=50)
    version = _train(session, settings)
    _sign_in_as(session, page_client, Role.MANAGER)

    page = page_client.get("/model")

    assert page.status_code == 200
    assert 'href="/model"' in page.text  # in the navigation
    assert f"Active model {version}" in page.text
    assert "Is not an input of this model" in page.text
    assert "prior DNA rate alone" in page.text
    assert "This model minus each baseline" in page.text
    assert '<svg class="risk-calibration-chart" role="img"' in page.text
    assert '<title id="calibration-title">' in page.text
    assert "Calibration figures behind the chart" in page.text
    assert "<script" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "IMD quintile (Q1 = most deprived)" in page.text
    assert "as currently recorded" in page.text
    assert "overbooking clinics" in page.text
    assert "Risk bands" in page.text
    assert "share of a day's callable appointments" in page.text
    assert "Gradient boosting with default settings" in page.text
    assert "inflate AUROC" in page.text
    assert ">Activate<" not in page.text  # managers read; only admins activate


def test_navigators_cannot_open_the_model_card(page_client: TestClient, session: Session) -> None:
    _sign_in_as(session, page_client, Role.NAVIGATOR)
    assert page_client.get("/model").status_code == 403


def test_a_manager_without_models_is_told_none_is_active(
    page_client: TestClient, session: Session
) -> None:
    _sign_in_as(session, page_client, Role.MANAGER)
    page = page_client.get("/model")
    assert page.status_code == 200
    assert "No model is active" in page.text
    assert "No models have been trained." in page.text


@pytest.mark.slow
def test_admins_activate_an_older_model_with_csrf_and_it_is_audited(
    page_client: TestClient, session: Session, settings: Settings
) -> None:
    create_trust(session, patients=300, past=2_500, future=50)
    older = _train(session, settings)
    newer = _train(session, settings)
    _sign_in_as(session, page_client, Role.ADMIN)
    page = page_client.get("/model")
    assert f'action="/model/{older}/activate"' in page.text
    assert f'action="/model/{newer}/activate"' not in page.text  # already active

    refused = page_client.post(f"/model/{older}/activate", data={})
    assert refused.status_code == 403
    done = page_client.post(
        f"/model/{older}/activate",
        data={"csrf_token": form_token(page.text)},
        follow_redirects=False,
    )

    assert done.status_code == 303
    assert done.headers["location"] == "/model"
    session.expire_all()
    active = session.scalars(select(RiskModel).where(RiskModel.active)).all()
    assert [model.version for model in active] == [older]
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "risk_model.activated")
    ).all()
    assert [event.detail for event in audit] == [{"version": older}]


def test_the_calibration_chart_puts_perfect_calibration_on_the_diagonal() -> None:
    chart = calibration_chart(
        [
            {"predicted": 0.05, "observed": 0.05, "count": 100},
            {"predicted": 0.2, "observed": 0.1, "count": 100},
        ]
    )
    on_diagonal, below = chart["points"]
    # Same scale on both axes: a perfectly calibrated point has x + y == size.
    assert on_diagonal["x"] + on_diagonal["y"] == pytest.approx(chart["size"], abs=0.2)
    assert below["y"] > chart["size"] - below["x"]  # observed below predicted: under the line
    assert chart["ticks"][0]["value"] == "0%"


@pytest.mark.slow
def test_the_model_page_shows_drift_with_a_chart_and_table_and_every_review(
    page_client: TestClient, session: Session, settings: Settings
) -> None:
    from datetime import timedelta

    from app.risk.review import retrain_and_decide

    create_trust(session, patients=300, past=2_500, future=50)
    trained_before = NOW - timedelta(weeks=9)
    champion = service.train_model(
        session, risk_settings(settings), now=trained_before, as_of=trained_before
    ).model.version
    decision = retrain_and_decide(session, risk_settings(settings), now=NOW)
    session.commit()
    _sign_in_as(session, page_client, Role.MANAGER)

    page = page_client.get("/model").text

    drift = page.split('id="drift-heading"', 1)[1].split('id="reviews-heading"', 1)[0]
    # The text summary comes first, then the chart, then the same figures as a table.
    summary = drift.index("Since the model was trained on outcomes known before")
    chart = drift.index('<svg class="risk-drift-chart" role="img"')
    table = drift.index("Drift figures behind the chart, by month")
    assert summary < chart < table
    assert '<title id="drift-title">' in drift
    assert f"for model {champion}" in drift
    day = settings.calendar.today(NOW)
    assert f"{day.day} {day:%B %Y}" in drift  # UK dates, not ISO
    assert f"{day:%B %Y} (part)" in drift
    assert "Calibration by group since training" in drift
    assert "Ethnic group: White" in drift
    reviews = page.split('id="reviews-heading"', 1)[1].split("All models", 1)[0]
    assert decision.reason in reviews.replace("&#39;", "'")
    assert {"promoted": "Challenger made active", "kept": "Active model kept"}[
        decision.outcome
    ] in reviews
