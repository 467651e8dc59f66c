"""The managers' dashboard in Chromium: a manager picks a period and reads the impact, with
charts drawn as SVG under the Content-Security-Policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from app.analytics.periods import uk_date
from app.auth.roles import Role
from tests.analytics.helpers import PERIOD_END, PERIOD_START, create_arm
from tests.auth.helpers import DEFAULT_PASSWORD, create_user
from tests.browser.conftest import BrowserPage

pytestmark = pytest.mark.browser


def test_a_manager_chooses_a_period_and_reads_the_impact(
    browser_page: BrowserPage, session: Session
) -> None:
    create_arm(session, arm="call", attended=95, dnas=5, reached_attended=39, reached_dnas=1)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    create_user(session, role=Role.MANAGER, username="manager.browser")
    session.commit()
    page = browser_page.page
    browser_page.goto("/sign-in")
    page.get_by_label("Username").fill("manager.browser")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    browser_page.open_header_link("Analytics")
    page.get_by_label("Custom range").check()
    page.get_by_label("From (first day)").fill(uk_date(PERIOD_START))
    page.get_by_label("To (last day, included)").fill(uk_date(PERIOD_END - timedelta(days=1)))
    page.get_by_role("button", name="Show this period").click()

    expect(page.get_by_test_id("avoided-dnas")).to_have_text("7 avoided DNAs")
    expect(
        page.get_by_role("img", name="DNA rate by IMD decile (1 = most deprived)")
    ).to_be_visible()
    expect(page.locator("#table-impact-by-ethnic-group")).to_be_visible()
    browser_page.screenshot("analytics-dashboard")
    page.get_by_role("link", name="Printable board pack").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Navigator board pack")
    assert browser_page.console_errors == []
