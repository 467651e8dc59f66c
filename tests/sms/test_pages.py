"""The managers' SMS pages: volumes and templates, and editing a template with a preview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from app.sms.tables import SmsTemplate
from tests.auth.helpers import create_user, form_token, sign_in_with_form
from tests.sms.helpers import create_message


@pytest.fixture
def page_client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"login_failure_delay_ms": 0})
    app = create_app(fast, database, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def sign_in_as(session: Session, client: TestClient, role: Role) -> None:
    user = create_user(session, role=role)
    session.commit()
    assert sign_in_with_form(client, user.username).status_code == 303


def test_managers_see_volumes_and_every_template_with_its_cost(
    page_client: TestClient, session: Session
) -> None:
    create_message(
        session, state="submitted", provider_sid="SM" + "1" * 32, delivery_status="delivered"
    )
    sign_in_as(session, page_client, Role.MANAGER)
    page = page_client.get("/sms")
    assert page.status_code == 200
    assert 'href="/sms"' in page.text  # in the navigation
    assert "100.0%" in page.text
    assert 'href="/sms/templates/reminder/gu"' in page.text
    assert "(UCS-2)" in page.text


def test_navigators_cannot_open_the_sms_pages(page_client: TestClient, session: Session) -> None:
    sign_in_as(session, page_client, Role.NAVIGATOR)
    assert page_client.get("/sms").status_code == 403
    assert page_client.get("/sms/templates/reminder/en").status_code == 403


def test_editing_previews_with_segments_then_saves_a_new_version(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    form = page_client.get("/sms/templates/reminder/pl")
    assert "Przypomnienie" in form.text
    token = form_token(form.text)

    preview = page_client.post(
        "/sms/templates/reminder/pl",
        data={"csrf_token": token, "body": "Wizyta {date} o {time}", "action": "preview"},
    )
    assert "Wizyta wtorek, 1 grudnia 2026 o 09:30" in preview.text
    assert "GSM-7: 1 segment" in preview.text

    refused = page_client.post(
        "/sms/templates/reminder/pl",
        data={"csrf_token": token, "body": "Wizyta {nazwisko}", "action": "save"},
    )
    assert refused.status_code == 422
    assert 'class="nhsuk-error-summary"' in refused.text

    saved = page_client.post(
        "/sms/templates/reminder/pl",
        data={"csrf_token": token, "body": "Wizyta {date} o {time}", "action": "save"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    session.expire_all()
    stored = session.scalars(select(SmsTemplate)).all()
    assert [(t.kind, t.language, t.version, t.body) for t in stored] == [
        ("reminder", "pl", 1, "Wizyta {date} o {time}")
    ]


def test_a_form_without_the_csrf_token_is_refused(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    response = page_client.post(
        "/sms/templates/reminder/en", data={"body": "Hi {date}", "action": "save"}
    )
    assert response.status_code == 403
    session.expire_all()
    assert session.scalars(select(SmsTemplate)).all() == []


def test_saving_unchanged_text_says_so_and_makes_no_version_or_audit_entry(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    token = form_token(page_client.get("/sms/templates/help/en").text)
    data = {"csrf_token": token, "body": "Your appointment is {date} at {time}.", "action": "save"}

    saved = page_client.post("/sms/templates/help/en", data=data)
    again = page_client.post("/sms/templates/help/en", data=data)

    assert saved.status_code == 200
    assert "The template Help text (English) was saved as a new version." in saved.text, saved.text
    assert again.status_code == 200
    assert 'data-testid="success-banner"' in again.text
    assert "Nothing was saved: the text is the same as the current version." in again.text
    session.expire_all()
    assert session.scalars(select(SmsTemplate.version)).all() == [1]
    audited = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "sms.template_saved")
    ).all()
    assert audited == ["sms.template_saved"]


def _save(client: TestClient, token: str, body: str) -> None:
    response = client.post(
        "/sms/templates/reminder/en",
        data={"csrf_token": token, "body": body, "action": "save"},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_a_manager_compares_versions_side_by_side_and_restores_an_earlier_one(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    token = form_token(page_client.get("/sms/templates/reminder/en").text)
    _save(page_client, token, "First {date} at {time}.")
    _save(page_client, token, "Second {date} at {time}.")

    listing = page_client.get("/sms/templates/reminder/en")
    compared = page_client.get("/sms/templates/reminder/en/compare")
    restored = page_client.post(
        "/sms/templates/reminder/en/restore", data={"csrf_token": token, "version": "1"}
    )
    again = page_client.post(
        "/sms/templates/reminder/en/restore", data={"csrf_token": token, "version": "3"}
    )
    unknown = page_client.post(
        "/sms/templates/reminder/en/restore", data={"csrf_token": token, "version": "99"}
    )

    versions = listing.text.split('data-testid="versions"', 1)[1]
    assert "2 (current)" in versions
    assert "Built-in default" in versions
    assert 'Restore<span class="nhsuk-u-visually-hidden"> version 1</span>' in versions
    assert "Compare version 1 with version 2" in compared.text
    assert "<del>First {date} at {time}.</del>" in compared.text
    assert "<ins>Second {date} at {time}.</ins>" in compared.text
    assert "The earlier version was restored as a new version." in restored.text
    assert "Nothing was saved: the text is the same as the current version." in again.text
    assert unknown.status_code == 422
    assert '<li><a href="#version">Choose a version to restore from the list</a>' in unknown.text
    session.expire_all()
    stored = session.scalars(select(SmsTemplate).order_by(SmsTemplate.version)).all()
    assert [(row.version, row.body) for row in stored] == [
        (1, "First {date} at {time}."),
        (2, "Second {date} at {time}."),
        (3, "First {date} at {time}."),
    ]
    restores = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "sms.template_restored")
    ).all()
    assert [event.detail for event in restores] == [
        {"kind": "reminder", "language": "en", "version": 3, "from_version": 1}
    ]


def test_comparing_a_version_that_does_not_exist_is_not_found(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)

    assert page_client.get("/sms/templates/reminder/en/compare?old=0").status_code == 200
    assert page_client.get("/sms/templates/reminder/en/compare?old=5").status_code == 404
    assert page_client.get("/sms/templates/reminder/xx/compare").status_code == 404
