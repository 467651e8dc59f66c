"""`/targeting` in Chromium: no WCAG 2.2 A/AA violations (axe-core) with the full report, with
the "not enough trial data" message and with the period's error summary; no CSP violation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.clock import FixedClock
from app.settings import Settings
from app.targeting import service
from tests.auth.helpers import create_user
from tests.browser import conftest as browser_fixtures
from tests.browser import test_accessibility
from tests.browser.conftest import BrowserPage, LiveServer
from tests.browser.test_accessibility import violations
from tests.browser.test_calls_pages import _sign_in
from tests.clock import CALENDAR
from tests.targeting.helpers import create_trial, targeting_settings

pytestmark = pytest.mark.browser

# The browser tests' fixtures (tests/browser/conftest.py is not seen from this directory).
browser = browser_fixtures.browser
browser_page = browser_fixtures.browser_page
live_server = browser_fixtures.live_server
axe_page = test_accessibility.axe_page


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return targeting_settings(settings, calls_queue_policy="benefit")


def test_the_targeting_page_has_no_wcag_violations(
    axe_page: Page, live_server: LiveServer, session: Session, settings: Settings, clock: FixedClock
) -> None:
    create_trial(session, clock.now(), base_dna=0.4)
    service.train_benefit_model(session, settings, now=clock.now())
    create_user(session, role=Role.MANAGER, username="axe-manager")
    session.commit()
    url = live_server.url
    _sign_in(axe_page, url, "axe-manager")
    expect(axe_page).not_to_have_url(url + "/sign-in")

    axe_page.goto(url + "/targeting")
    expect(axe_page.get_by_role("heading", name="Whom a call helps")).to_be_visible()
    expect(axe_page.locator("caption", has_text="Priority group")).to_be_visible()
    found = [f"/targeting: {line}" for line in violations(axe_page)]

    axe_page.goto(url + "/targeting?from=01/09/2026")
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"/targeting (error): {line}" for line in violations(axe_page)]

    # A period before the trial: the plain message instead of the tables.
    before = CALENDAR.today(clock.now()) - timedelta(weeks=150)
    axe_page.goto(url + f"/targeting?from={before}&to={before + timedelta(weeks=4)}")
    expect(axe_page.get_by_text("Not enough trial data")).to_be_visible()
    found += [f"/targeting (no trial): {line}" for line in violations(axe_page)]
    assert found == [], "\n".join(found)


def test_the_targeting_page_keeps_the_content_security_policy(
    browser_page: BrowserPage, session: Session, clock: FixedClock
) -> None:
    create_trial(session, clock.now())
    create_user(session, role=Role.MANAGER, username="csp-manager")
    session.commit()
    _sign_in(browser_page.page, browser_page.base_url, "csp-manager")

    browser_page.goto("/targeting")

    expect(browser_page.page.get_by_text("The queue stays on the risk policy")).to_be_visible()
    assert browser_page.console_errors == []
