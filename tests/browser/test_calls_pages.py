"""The navigator's day in Chromium: take a call, record outcomes, see the history; a second
navigator never gets the same call; managers' pages are theirs; script editing; the error
summary. Screenshots of the main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.queue import build_queue
from app.calls.tables import Call, CallOutcome
from app.clock import FixedClock
from app.settings import Settings
from tests.auth.helpers import DEFAULT_PASSWORD, create_user
from tests.browser.conftest import BrowserPage, LiveServer
from tests.calls.helpers import create_eligible_appointment, working_day_ahead
from tests.clock import CALENDAR
from tests.factories import create_patient

pytestmark = pytest.mark.browser


def _queue_today(
    session: Session, settings: Settings, clock: FixedClock, patients: int = 1
) -> list[int]:
    today = CALENDAR.today(clock.now())
    start = CALENDAR.at(today + timedelta(days=7), time(12))
    ids = []
    for i in range(patients):
        patient = create_patient(
            session,
            given_name="Ada",
            family_name=f"Lovelace{i}",
            communication_needs="bsl",
            learning_disability=i == 0,
        )
        ids.append(create_eligible_appointment(session, patient=patient, start_at=start).id)
    build_queue(
        session,
        settings.model_copy(update={"calls_holdout_share": 0.0}),
        today,
        now=clock.now(),
    )
    session.commit()
    return ids


def _sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url + "/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _take_and_answer(page: Page) -> None:
    page.get_by_role("button", name="Take next call").click()
    expect(page).to_have_url(re.compile(r"/calls/\d+$"))
    page.get_by_label("Answered").check()
    page.get_by_role("button", name="Save attempt").click()
    expect(page.get_by_test_id("call-so-far")).to_contain_text("Attempt 1: answered")


def test_a_navigator_rebooks_with_a_bsl_interpreter_and_sees_it_in_the_history(
    browser_page: BrowserPage, session: Session, settings: Settings, clock: FixedClock
) -> None:
    (appointment_id,) = _queue_today(session, settings, clock)
    create_user(session, username="nav.one")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "nav.one")
    expect(page.get_by_role("heading", level=1)).to_have_text("My queue for today")
    browser_page.screenshot("calls-queue")

    _take_and_answer(page)
    expect(page.get_by_test_id("patient-name")).to_have_text("Ada Lovelace0")
    expect(page.get_by_test_id("risk-note")).to_contain_text("only for offering help")
    browser_page.screenshot("calls-call-screen")
    new_day = working_day_ahead(clock, 21)
    page.get_by_label("Rebook: ask the booking team for a new date and time").check()
    page.get_by_label("Day").fill(str(new_day.day))
    page.get_by_label("Month").fill(str(new_day.month))
    page.get_by_label("Year").fill(str(new_day.year))
    page.get_by_label("New time").fill("14:30")
    page.get_by_label("BSL interpreter booked").check()
    page.get_by_role("button", name="Save outcomes").click()

    expect(page.get_by_text("The call was completed and saved.")).to_be_visible()
    browser_page.open_header_link("My calls")
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("Ada Lovelace0")
    expect(history).to_contain_text("Rebooking requested; BSL interpreter booked")
    browser_page.screenshot("calls-history")
    assert browser_page.console_errors == []
    kinds = sorted(session.scalars(select(CallOutcome.kind)))
    session.rollback()
    assert kinds == ["bsl_interpreter", "rebooked"]
    assert appointment_id > 0


def test_a_second_navigator_signed_in_at_the_same_time_never_gets_the_same_call(
    browser: Browser,
    browser_page: BrowserPage,
    live_server: LiveServer,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock, patients=2)
    create_user(session, username="nav.first")
    create_user(session, username="nav.second")
    session.commit()
    first = browser_page.page
    _sign_in(first, live_server.url, "nav.first")
    other = browser.new_context(base_url=live_server.url)
    other.route("https://assets.nhs.uk/**", lambda route: route.abort())
    second = other.new_page()
    try:
        _sign_in(second, live_server.url, "nav.second")
        first.get_by_role("button", name="Take next call").click()
        expect(first).to_have_url(re.compile(r"/calls/\d+$"))
        first_call = first.url.rsplit("/", 1)[1]

        second.get_by_role("button", name="Take next call").click()
        expect(second).to_have_url(re.compile(r"/calls/\d+$"))
        assert second.url.rsplit("/", 1)[1] != first_call
        # The first navigator's call is not the second's to open.
        response = second.goto(f"{live_server.url}/calls/{first_call}")
        assert response is not None
        assert response.status == 404
        expect(second.get_by_text("Lovelace")).to_have_count(0)
        # Both calls are taken: a third take gives the navigator their own call back.
        second.goto(f"{live_server.url}/queue")
        expect(second.get_by_role("link", name=re.compile("Go back to call"))).to_be_visible()
    finally:
        other.close()
    takers = dict(session.execute(select(Call.id, Call.taken_by)).all())
    session.rollback()
    assert len(set(takers.values())) == 2


def test_a_navigator_cannot_open_the_manager_pages(
    browser_page: BrowserPage, session: Session
) -> None:
    create_user(session, username="nav.curious")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "nav.curious")
    expect(page.get_by_role("link", name="Queues today")).to_have_count(0)

    for path in ("/manage/queues", "/manage/scripts"):
        response = page.goto(browser_page.base_url + path)
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "You do not have permission to view this page"
        )


def test_a_manager_sees_the_overview_and_edits_a_script(
    browser_page: BrowserPage, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, patients=2)
    create_user(session, role=Role.MANAGER, username="manager.one")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "manager.one")

    browser_page.open_header_link("Queues today")
    expect(page.get_by_role("heading", level=1)).to_have_text("Call queues today")
    expect(page.get_by_test_id("overview")).to_contain_text("Held out (comparison group)")
    browser_page.screenshot("calls-manager-overview")

    browser_page.open_header_link("Scripts")
    page.locator("table a").first.click()
    expect(page.get_by_test_id("current-version")).to_have_text("Current version: 1.")
    page.get_by_label("Text (Markdown)").fill(
        "# Opening\n\n- Say who you are\n- Check the date of birth"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview").locator("li")).to_have_count(2)
    browser_page.screenshot("calls-script-editing")
    page.get_by_role("button", name="Save new version").click()

    expect(page.get_by_test_id("current-version")).to_have_text("Current version: 2.")
    expect(page.get_by_test_id("versions").locator("tbody tr").first).to_contain_text("manager.one")
    assert browser_page.console_errors == []


def test_an_invalid_outcome_form_shows_the_error_summary(
    browser_page: BrowserPage, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    create_user(session, username="nav.hasty")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "nav.hasty")
    _take_and_answer(page)

    page.get_by_label("Help with travel costs").check()
    page.get_by_label("Patient declined help").check()
    page.get_by_role("button", name="Save outcomes").click()

    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Declined help cannot go with support that was arranged.")
    expect(page).to_have_title(re.compile(r"^Error: "))
    browser_page.screenshot("calls-error-summary")
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("Help with travel costs")).to_be_focused()
    saved = session.scalars(select(CallOutcome)).all()
    session.rollback()
    assert saved == []


def test_a_35_minute_interpreter_call_keeps_its_lease_and_saves_its_outcomes(
    browser_page: BrowserPage,
    live_server: LiveServer,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock)
    create_user(session, username="nav.long")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "nav.long")
    _take_and_answer(page)
    lease = page.get_by_test_id("call-lease")
    expect(lease).to_contain_text("held for you until")
    expect(lease).to_have_attribute("data-lease-ready", "true")

    for renewal in range(1, 8):  # 35 minutes on the server's clock
        live_server.clock.advance(minutes=5)
        # The script renews on its timer and whenever the page becomes visible again; the
        # test prompts it rather than waiting a real minute.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        expect(lease).to_have_attribute("data-renewals", str(renewal))
    expect(page.locator("[data-lease-warning]")).to_be_hidden()

    page.get_by_label("Confirmed: the patient will attend").check()
    page.get_by_role("button", name="Save outcomes").click()

    expect(page.get_by_text("The call was completed and saved.")).to_be_visible()
    assert browser_page.console_errors == []
    kinds = sorted(session.scalars(select(CallOutcome.kind)))
    session.rollback()
    assert kinds == ["confirmed"]


def test_after_a_save_the_success_banner_takes_focus_and_identity_is_a_step(
    browser_page: BrowserPage, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock)
    create_user(session, username="nav.focus")
    session.commit()
    page = browser_page.page
    _sign_in(page, browser_page.base_url, "nav.focus")
    _take_and_answer(page)

    page.get_by_label("Confirmed: name and date of birth match").check()
    page.get_by_role("button", name="Save identity check").click()

    banner = page.get_by_test_id("success-banner")
    expect(banner).to_contain_text("Identity confirmed")
    expect(banner).to_be_focused()
    expect(page.get_by_test_id("call-so-far")).to_contain_text("identity confirmed")
    page.get_by_label("Add a note to this call").fill("Prefers mornings")
    page.get_by_role("button", name="Save note").click()
    expect(page.get_by_test_id("success-banner")).to_be_focused()
    expect(page.get_by_test_id("call-note")).to_contain_text("Prefers mornings")
