"""The sign-in and admin pages in Chromium: what a navigator and an admin see and do."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import User
from tests.auth.helpers import DEFAULT_PASSWORD, create_user
from tests.browser.conftest import BrowserPage

pytestmark = pytest.mark.browser


def _sign_in(browser_page: BrowserPage, username: str, password: str = DEFAULT_PASSWORD) -> None:
    page = browser_page.page
    browser_page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_navigator_signs_in_and_lands_on_their_queue(
    browser_page: BrowserPage, session: Session
) -> None:
    create_user(session, role=Role.NAVIGATOR, username="nav.browser")
    session.commit()

    _sign_in(browser_page, "nav.browser")

    page = browser_page.page
    expect(page.get_by_role("heading", level=1)).to_have_text("My queue for today")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("nav.browser")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    browser_page.screenshot("navigator-home")
    # The NHS.UK JavaScript ran (loaded as a file under the CSP) and nothing was blocked.
    expect(page.locator("body")).to_have_class(re.compile(r"\bjs-enabled\b"))
    assert browser_page.console_errors == []


def test_a_wrong_password_shows_an_nhs_error_summary(
    browser_page: BrowserPage, session: Session
) -> None:
    create_user(session, username="typo.user")
    session.commit()

    _sign_in(browser_page, "typo.user", "not the right one")

    page = browser_page.page
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()  # focus moves to the summary for screen reader users
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    link = summary.get_by_role("link", name="Enter a correct username and password")
    browser_page.screenshot("sign-in-error")
    link.click()
    expect(page.get_by_label("Username")).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Error: "))


def test_a_navigator_cannot_open_the_admin_users_page(
    browser_page: BrowserPage, session: Session
) -> None:
    create_user(session, username="curious.nav")
    session.commit()
    _sign_in(browser_page, "curious.nav")
    expect(browser_page.page.get_by_role("heading", level=1)).to_have_text("My queue for today")

    response = browser_page.page.goto(browser_page.base_url + "/admin/users")

    assert response is not None
    assert response.status == 403
    expect(browser_page.page.get_by_role("heading", level=1)).to_have_text(
        "You do not have permission to view this page"
    )
    browser_page.screenshot("navigator-forbidden")


def test_an_admin_creates_a_user_in_the_browser(
    browser_page: BrowserPage, session: Session
) -> None:
    create_user(session, role=Role.ADMIN, username="admin.browser")
    session.commit()
    _sign_in(browser_page, "admin.browser")
    page = browser_page.page

    # An admin's header has more links than fit: the rest fold into the header's "More" menu.
    browser_page.open_header_link("Users")
    page.get_by_role("button", name="Create a user").or_(
        page.get_by_role("link", name="Create a user")
    ).click()
    page.get_by_label("Username").fill("new.manager")
    page.get_by_label("Manager").check()
    page.get_by_label("Password", exact=True).fill("tangerine ladder window")
    page.get_by_label("Confirm password").fill("tangerine ladder window")
    page.get_by_role("button", name="Create user").click()

    expect(page.get_by_text("Account new.manager created.")).to_be_visible()
    row = page.locator("tr[data-username='new.manager']")
    expect(row).to_contain_text("Manager")
    expect(row).to_contain_text("Active")
    browser_page.screenshot("admin-created-user")
    session.expire_all()
    created = session.scalars(select(User).where(User.username == "new.manager")).one()
    assert created.role == "manager"
    session.rollback()  # end the read: on SQLite an open transaction holds the write lock

    page.get_by_role("button", name="Sign out").click()
    _sign_in(browser_page, "new.manager", "tangerine ladder window")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("new.manager")
    # A manager's header offers the audit log (shown, or folded into "More" when it does not fit).
    expect(
        page.locator("a.nhsuk-header__navigation-link", has_text="Audit log").first
    ).to_be_attached()
