"""What a manager sees at `/targeting` and gets from `/api/targeting`: the effects by subgroup,
the benefit model and the queue policy; a plain message (page) or 409 (API) when the trial
cannot answer, and the queue policy still on risk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from app.targeting import service
from tests.auth.helpers import create_user, sign_in
from tests.clock import CALENDAR
from tests.targeting.helpers import create_trial, targeting_settings

ClientFor = Callable[..., TestClient]


@pytest.fixture
def client_for(
    settings: Settings, database: Database, clock: FixedClock, session: Session
) -> Iterator[ClientFor]:
    """A signed-in manager's client on an app with the targeting settings (and overrides)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        app_settings = targeting_settings(settings, **overrides)
        client = TestClient(create_app(app_settings, database, clock=clock))
        client.__enter__()
        clients.append(client)
        if not clients[1:]:
            create_user(session, role=Role.MANAGER, username="manager1")
            session.commit()
        sign_in(client, "manager1")
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _text(html: str) -> str:
    return " ".join(unescape(html).split())


def test_a_manager_sees_whom_a_call_helps_and_the_queue_policy(
    session: Session, settings: Settings, clock: FixedClock, client_for: ClientFor
) -> None:
    create_trial(session, clock.now(), base_dna=0.4)
    model = service.train_benefit_model(
        session, targeting_settings(settings), now=clock.now()
    ).model
    session.commit()
    client = client_for(calls_queue_policy="benefit")

    page = client.get("/targeting")
    api = client.get("/api/targeting/report")
    policy = client.get("/api/targeting/policy")

    assert page.status_code == 200
    text = _text(page.text)
    assert "Whom a call helps" in text
    assert "960 call-arm and 240 hold-out appointments with an outcome" in text
    for caption in (
        "Risk band",
        "Priority group",
        "First or follow-up",
        "Lead time",
        "IMD quintile (Q1 = most deprived)",
        "Specialty",
    ):
        assert f'<caption class="nhsuk-table__caption">{caption}</caption>' in unescape(page.text)
    assert "fewer than 20 appointments in an arm: not shown" in text  # a small subgroup
    assert model.version in text
    assert "Out-of-time Qini area" in text
    assert "(3 rolling-origin folds)" in text
    assert "choosing who is held out of the trial" in text
    assert f"The queue ranks calls by expected DNAs avoided (benefit model {model.version})" in text
    assert api.status_code == 200
    report = api.json()
    assert report["overall"]["n_call"] == 960
    assert report["benefit_model"]["version"] == model.version
    assert report["queue_policy"]["effective"] == "benefit"
    small = [
        level
        for table in report["subgroups"].values()
        for level in table["levels"]
        if level["suppressed"]
    ]
    assert small
    assert all(level["difference"] is None for level in small)
    assert policy.json()["effective"] == "benefit"


@pytest.mark.parametrize(
    ("overrides", "trial", "message"),
    [
        ({}, {"appointments": 60}, "Too little trial data for the call's effect"),
        (
            {"calls_holdout_share": 0.0},
            {},
            "The hold-out share (NAVIGATOR_CALLS_HOLDOUT_SHARE) is 0",
        ),
        ({}, {"holdout_every": 10_000}, "The hold-out has no appointments with an outcome"),
        ({}, {"holdout_every": 1}, "The call arm has no appointments with an outcome"),
    ],
)
def test_when_the_trial_cannot_answer_the_page_says_so_and_the_api_answers_409(
    session: Session,
    clock: FixedClock,
    client_for: ClientFor,
    overrides: dict[str, Any],
    trial: dict[str, Any],
    message: str,
) -> None:
    create_trial(session, clock.now(), **trial)
    session.commit()
    client = client_for(calls_queue_policy="benefit", **overrides)

    page = client.get("/targeting")
    api = client.get("/api/targeting/report")
    policy = client.get("/api/targeting/policy")

    assert page.status_code == 200
    text = _text(page.text)
    assert "Not enough trial data" in text
    assert message in text
    assert "The queue stays on the risk policy" in text
    assert "<table" not in page.text
    assert api.status_code == 409
    assert message in api.json()["detail"]
    assert policy.status_code == 200
    assert policy.json()["effective"] == "risk"
    assert policy.json()["requested"] == "benefit"


def test_a_period_that_is_not_a_date_is_listed_in_the_error_summary(
    session: Session, clock: FixedClock, client_for: ClientFor
) -> None:
    create_trial(session, clock.now())
    session.commit()
    client = client_for()
    today = CALENDAR.today(clock.now())

    page = client.get("/targeting", params={"from": "01/09/2026"})
    backwards = client.get(
        "/targeting", params={"from": today.isoformat(), "to": today.isoformat()}
    )
    api = client.get("/api/targeting/report", params={"from": "01/09/2026"})

    assert page.status_code == 200
    assert "nhsuk-error-summary" in page.text
    assert "From must be a date like 2026-09-01" in _text(page.text)
    assert "nhsuk-error-summary" in backwards.text
    assert "must end after it starts" in _text(backwards.text)
    assert api.status_code == 422


def test_navigators_cannot_see_targeting(
    session: Session, settings: Settings, database: Database, clock: FixedClock
) -> None:
    create_user(session, role=Role.NAVIGATOR, username="navigator1")
    session.commit()
    with TestClient(create_app(targeting_settings(settings), database, clock=clock)) as client:
        sign_in(client, "navigator1")
        assert client.get("/api/targeting/report").status_code == 403
        assert client.get("/api/targeting/policy").status_code == 403
        assert client.get("/targeting").status_code == 403
