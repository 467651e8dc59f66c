"""The sign-in page, the admin's user pages and the managers' audit log page."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.audit import record_audit
from app.auth.passwords import verify_password
from app.auth.roles import Role
from app.auth.tables import AuditEvent, User
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, form_token, sign_in_with_form
from tests.clock import TEST_NOW, TODAY


def test_signing_in_on_the_page_lands_on_the_home_page(
    page_client: TestClient, session: Session
) -> None:
    create_user(session, role=Role.NAVIGATOR, username="nina")
    session.commit()

    response = sign_in_with_form(page_client, "nina")
    assert response.status_code == 303
    assert response.headers["location"] == "/"

    home = page_client.get("/")
    assert home.status_code == 200
    assert "nina" in home.text
    assert "Sign out" in home.text
    assert 'href="/admin/users"' not in home.text  # navigation is role-aware


def test_a_wrong_password_shows_an_error_summary_linked_to_the_field(
    page_client: TestClient, session: Session
) -> None:
    create_user(session, username="wendy")
    session.commit()

    response = sign_in_with_form(page_client, "wendy", "not-her-password")

    assert response.status_code == 401
    assert 'class="nhsuk-error-summary"' in response.text
    assert '<a href="#username">Enter a correct username and password</a>' in response.text
    assert "<title>Error: Sign in" in response.text
    assert 'value="wendy"' in response.text  # what was typed stays, the password does not
    assert "not-her-password" not in response.text


def test_empty_fields_are_named_in_the_error_summary(
    page_client: TestClient, session: Session
) -> None:
    page = page_client.get("/sign-in")
    response = page_client.post(
        "/sign-in", data={"username": "", "password": "", "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 422
    assert '<a href="#username">Enter your username</a>' in response.text
    assert '<a href="#password">Enter your password</a>' in response.text
    assert 'aria-describedby="password-error"' in response.text


def test_after_signing_in_the_user_returns_to_the_page_they_asked_for_on_this_site_only(
    page_client: TestClient, session: Session
) -> None:
    create_user(session, role=Role.MANAGER, username="mia")
    session.commit()

    redirect = page_client.get("/audit?patient_id=7", follow_redirects=False)
    assert redirect.headers["location"] == "/sign-in?next=%2Faudit%3Fpatient_id%3D7"

    back = sign_in_with_form(page_client, "mia", next_path="/audit?patient_id=7")
    assert back.headers["location"] == "/audit?patient_id=7"

    page_client.cookies.clear()
    elsewhere = sign_in_with_form(page_client, "mia", next_path="//evil.example/steal")
    assert elsewhere.headers["location"] == "/"


def test_a_navigator_gets_a_403_page_for_the_admin_pages(
    page_client: TestClient, session: Session
) -> None:
    create_user(session, username="nav-only")
    session.commit()
    sign_in_with_form(page_client, "nav-only")

    response = page_client.get("/admin/users")

    assert response.status_code == 403
    assert "You do not have permission to view this page" in response.text
    assert "nav-only" in response.text  # still the signed-in layout


def _admin_client(page_client: TestClient, session: Session) -> tuple[User, str]:
    admin = create_user(session, role=Role.ADMIN, username="root-admin")
    session.commit()
    sign_in_with_form(page_client, "root-admin")
    return admin, form_token(page_client.get("/admin/users/new").text)


def test_an_admin_creates_a_user_who_can_then_sign_in(
    page_client: TestClient, session: Session
) -> None:
    admin, token = _admin_client(page_client, session)

    response = page_client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "New.Person",
            "role": "manager",
            "password": "tangerine ladder window",
            "password_confirm": "tangerine ladder window",
        },
    )

    assert response.status_code == 200
    assert "Account new.person created." in response.text
    created = session.scalars(select(User).where(User.username == "new.person")).one()
    assert created.role == "manager"
    assert verify_password(created.password_hash, "tangerine ladder window")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).one()
    assert event.user_id == admin.id
    assert event.detail == {"target_user_id": created.id, "role": "manager"}


def test_creating_a_user_enforces_the_password_policy_and_unique_names(
    page_client: TestClient, session: Session
) -> None:
    _, token = _admin_client(page_client, session)
    base = {"csrf_token": token, "role": "navigator"}

    weak = page_client.post(
        "/admin/users",
        data={
            **base,
            "username": "weak",
            "password": "password1234",
            "password_confirm": "password1234",
        },
    )
    taken = page_client.post(
        "/admin/users",
        data={
            **base,
            "username": "Root-Admin",
            "password": "tangerine ladder window",
            "password_confirm": "tangerine ladder window",
        },
    )
    mismatch = page_client.post(
        "/admin/users",
        data={
            **base,
            "username": "typo",
            "password": "tangerine ladder window",
            "password_confirm": "x",
        },
    )

    assert weak.status_code == 422
    assert '<a href="#password">Password is too common' in weak.text
    assert taken.status_code == 422
    assert "That username is taken" in taken.text
    assert mismatch.status_code == 422
    assert '<a href="#password_confirm">The passwords do not match</a>' in mismatch.text
    assert session.scalars(select(User.username).order_by(User.username)).all() == ["root-admin"]


def test_an_admin_changes_a_role_deactivates_and_unlocks(
    page_client: TestClient, session: Session
) -> None:
    _, token = _admin_client(page_client, session)
    other = create_user(session, username="changing", locked_until=TEST_NOW + timedelta(minutes=10))
    session.commit()

    listing = page_client.get("/admin/users")
    assert "Locked" in listing.text
    page_client.post(f"/admin/users/{other.id}/role", data={"csrf_token": token, "role": "manager"})
    page_client.post(f"/admin/users/{other.id}/unlock", data={"csrf_token": token})
    unconfirmed = page_client.post(
        f"/admin/users/{other.id}/deactivate", data={"csrf_token": token}, follow_redirects=False
    )
    assert unconfirmed.headers["location"] == f"/admin/users/{other.id}/deactivate"
    question = page_client.get(f"/admin/users/{other.id}/deactivate")
    assert "Deactivate changing?" in question.text
    assert "Yes, deactivate changing" in question.text
    done = page_client.post(
        f"/admin/users/{other.id}/deactivate", data={"csrf_token": token, "confirm": "yes"}
    )

    assert "Account changing deactivated and signed out." in done.text
    session.expire_all()
    changed = session.get(User, other.id)
    assert changed is not None
    assert (changed.role, changed.active, changed.locked_until) == ("manager", False, None)
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("user.%")).order_by(AuditEvent.id)
    ).all()
    assert actions == ["user.role_changed", "user.unlocked", "user.deactivated"]


def test_the_last_admin_cannot_be_demoted_or_deactivate_themselves(
    page_client: TestClient, session: Session
) -> None:
    admin, token = _admin_client(page_client, session)

    demoted = page_client.post(
        f"/admin/users/{admin.id}/role", data={"csrf_token": token, "role": "navigator"}
    )
    deactivated = page_client.post(
        f"/admin/users/{admin.id}/deactivate", data={"csrf_token": token, "confirm": "yes"}
    )

    assert demoted.status_code == 409
    assert (
        f'<a href="#role-{admin.id}">The last active administrator cannot lose the admin role: '
        "give another account the admin role first" in demoted.text
    )
    assert "permission" not in demoted.text
    assert deactivated.status_code == 409
    assert '<a href="#account">You cannot deactivate your own account' in deactivated.text
    asked = page_client.get(f"/admin/users/{admin.id}/deactivate")
    assert "You cannot deactivate your own account: ask another administrator" in asked.text
    assert "Yes, deactivate" not in asked.text
    session.expire_all()
    still = session.get(User, admin.id)
    assert still is not None
    assert (still.role, still.active) == ("admin", True)


def test_every_problem_creating_a_user_is_listed_at_once(
    page_client: TestClient, session: Session
) -> None:
    _, token = _admin_client(page_client, session)

    empty = page_client.post("/admin/users", data={"csrf_token": token})
    several = page_client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "root-admin",
            "role": "navigator",
            "password": "password1234",
            "password_confirm": "password1234",
        },
    )

    assert empty.status_code == 422
    for field, message in [
        ("username", "Enter a username"),
        ("role", "Select a role"),
        ("password", "Enter a password"),
    ]:
        assert f'<a href="#{field}">{message}</a>' in empty.text
    assert several.status_code == 422
    assert '<a href="#username">That username is taken</a>' in several.text
    assert '<a href="#password">Password is too common' in several.text
    assert session.scalars(select(User.username)).all() == ["root-admin"]


def test_managers_filter_the_audit_log_by_user_patient_and_date(
    page_client: TestClient, session: Session
) -> None:
    manager = create_user(session, role=Role.MANAGER, username="auditor")
    navigator = create_user(session, username="caller")
    record_audit(session, user_id=navigator.id, action="patient.viewed", patient_id=41)
    record_audit(session, user_id=navigator.id, action="patient.viewed", patient_id=42)
    old = record_audit(session, user_id=manager.id, action="patient.viewed", patient_id=41)
    old.occurred_at = TEST_NOW - timedelta(days=3)
    session.commit()
    sign_in_with_form(page_client, "auditor")

    by_patient = page_client.get("/audit", params={"patient_id": "41"})
    by_user = page_client.get("/audit", params={"username": "caller"})
    three_days_ago = TODAY - timedelta(days=3)
    by_date = page_client.get(
        "/audit",
        params={
            "date-day": str(three_days_ago.day),
            "date-month": str(three_days_ago.month),
            "date-year": str(three_days_ago.year),
        },
    )
    bad = page_client.get(
        "/audit",
        params={"patient_id": "abc", "date-day": "31", "date-month": "2", "date-year": "2026"},
    )

    assert "2 entries" in by_patient.text
    assert "2 entries" in by_user.text
    assert "1 entry" in by_date.text
    assert bad.status_code == 422
    assert '<a href="#patient_id">Patient id must be a number</a>' in bad.text
    assert '<a href="#date">' in bad.text


def test_the_return_address_after_sign_in_never_leaves_the_site() -> None:
    from app.auth.pages import safe_next

    assert safe_next("/audit?patient_id=7") == "/audit?patient_id=7"
    for hostile in [
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "https://evil.example",
        "",
        None,
    ]:
        assert safe_next(hostile) == "/"


def test_the_sign_in_page_throttles_failures_with_retry_after_but_not_the_right_password(
    settings: Settings, database: Database, session: Session, clock: FixedClock
) -> None:
    create_user(session, username="clinic.pc")
    session.commit()
    limited = settings.model_copy(
        update={"login_attempts_per_minute": 2, "login_throttled_delay_ms": 0}
    )
    app = create_app(limited, database, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        wrong = [
            sign_in_with_form(client, "clinic.pc", "not it at all").status_code for _ in range(3)
        ]
        refused = sign_in_with_form(client, "clinic.pc", "still not it")
        right = sign_in_with_form(client, "clinic.pc")

    assert wrong == [401, 401, 429]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in refused.text
    assert right.status_code == 303
