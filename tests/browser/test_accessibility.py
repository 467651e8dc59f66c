"""Every main page passes axe-core's WCAG 2.2 A and AA rules in Chromium.

axe-core (the npm package, installed by `scripts/setup.sh` with the NHS.UK frontend) runs in
the page after it has loaded. It checks what a machine can: labels, names, contrast, landmarks,
heading order, ARIA use, duplicate ids. Keyboard use and the error summary's focus are checked
by the flow tests; judgement calls (plain English, sensible order) are for people.

The axe script is added to the page by the test, so this browser context bypasses the pages'
Content-Security-Policy; the other browser tests keep it and fail on any violation of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.tables import Call
from app.clock import FixedClock
from app.settings import Settings
from tests.auth.helpers import create_user
from tests.browser.conftest import LiveServer
from tests.browser.test_calls_pages import _queue_today, _sign_in, _take_and_answer
from tests.clock import CALENDAR

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture
def axe_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run scripts/setup.sh (npm ci)")
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    # Offline: any request to another host is refused at once (pages should make none).
    outside = re.compile(r"^(?!" + re.escape(live_server.url) + r")https?://")
    context.route(outside, lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def violations(page: Page) -> list[str]:
    """axe's WCAG A/AA violations on the current page, one readable line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    assert result["passes"], "axe checked nothing: is the page empty?"
    return [
        f"{item['id']} ({item['impact']}): {item['help']} at "
        + json.dumps([node["target"] for node in item["nodes"]][:3])
        for item in result["violations"]
    ]


def test_the_check_finds_a_field_without_a_label_and_an_image_without_text(axe_page: Page) -> None:
    # The harness itself: a page with two known failures must report both.
    axe_page.set_content(
        '<html lang="en"><head><title>Bad</title></head><body><main><h1>Bad page</h1>'
        '<form><input type="text" name="nhs_number"></form><img src="x.png"></main></body></html>'
    )
    found = {line.split(" ")[0] for line in violations(axe_page)}
    assert {"label", "image-alt"} <= found


def check(page: Page, url: str, path: str) -> list[str]:
    page.goto(url + path)
    return [f"{path}: {line}" for line in violations(page)]


def test_the_pages_navigators_use_have_no_wcag_violations(
    axe_page: Page, live_server: LiveServer, session: Session, settings: Settings, clock: FixedClock
) -> None:
    _queue_today(session, settings, clock, patients=2)
    create_user(session, role=Role.NAVIGATOR, username="axe-navigator")
    session.commit()
    url = live_server.url
    found = check(axe_page, url, "/sign-in")

    # The sign-in page showing its error summary.
    axe_page.get_by_label("Username").fill("axe-navigator")
    axe_page.get_by_label("Password").fill("not the password")
    axe_page.get_by_role("button", name="Sign in").click()
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"/sign-in (error): {line}" for line in violations(axe_page)]

    _sign_in(axe_page, url, "axe-navigator")
    found += check(axe_page, url, "/queue")
    axe_page.goto(url + "/queue")
    _take_and_answer(axe_page)
    found += [f"call screen: {line}" for line in violations(axe_page)]

    # The outcome form refused (support arranged and declined at once) shows its summary.
    axe_page.get_by_label("Help with travel costs").check()
    axe_page.get_by_label("Patient declined help").check()
    axe_page.get_by_role("button", name="Save outcomes").click()
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"call screen (error): {line}" for line in violations(axe_page)]

    found += check(axe_page, url, "/history")
    session.expire_all()
    patient_id = session.scalars(select(Call.patient_id).where(Call.taken_by.is_not(None))).first()
    session.rollback()  # end the read, so the server can write its audit rows
    for path in (
        "/tasks",
        "/tasks?kind=nonsense",  # the filters' error summary
        f"/patients/{patient_id}",
        f"/patients/{patient_id}/history",
        "/patients/search",
        "/patients/search?by=phone&q=12345&reason=",  # the search's error summary
        "/account/password",
    ):
        found += check(axe_page, url, path)
    assert found == [], "\n".join(found)


def test_the_pages_managers_and_admins_use_have_no_wcag_violations(
    axe_page: Page, live_server: LiveServer, session: Session, settings: Settings, clock: FixedClock
) -> None:
    from app.calls import documents
    from app.sms import service as sms_service

    _queue_today(session, settings, clock, patients=1)
    create_user(session, role=Role.ADMIN, username="axe-admin")
    other = create_user(session, role=Role.NAVIGATOR, username="axe-leaver")
    documents.add_version(
        session, slug="sop", body="# SOP\n\nA changed first line.\n\n- a new item", user_id=other.id
    )
    # A saved template, so its page lists versions with Restore buttons.
    sms_service.save_template(
        session,
        kind="reminder",
        language="pa",
        body="{date} {time}",
        user_id=other.id,
        now=clock.now(),
    )
    session.commit()
    url = live_server.url
    _sign_in(axe_page, url, "axe-admin")
    expect(axe_page).not_to_have_url(url + "/sign-in")
    found: list[str] = []
    yesterday = CALENDAR.today(clock.now()) - timedelta(days=1)
    for path in (
        "/dashboard",
        "/analytics/board-pack",
        f"/manage/queues?date-day={yesterday.day}&date-month={yesterday.month}"
        f"&date-year={yesterday.year}",  # an earlier day
        "/manage/queues",
        "/manage/queues?date-day=31&date-month=2&date-year=2026",  # the day's error summary
        "/manage/scripts",
        "/manage/scripts/script",
        "/manage/scripts/sop/compare",  # a side-by-side comparison with changes
        "/analytics",
        "/model",
        "/sms",
        "/sms?from=31/2/2026&to=",  # the period's error summary
        "/sms/templates/reminder/pa",
        "/sms/templates/reminder/pa/compare",  # versions side by side
        "/audit",
        "/audit?date-day=31&date-month=2&date-year=2026",  # the filters' error summary
        "/admin/users",
        f"/admin/users/{other.id}/deactivate",
    ):
        found += check(axe_page, url, path)

    # Pages showing their error summaries after a POST.
    axe_page.goto(url + "/manage/scripts/script")
    axe_page.get_by_label("Text (Markdown)").fill("# Script\n\n<b>bold</b> [x](javascript:go())")
    axe_page.get_by_role("button", name="Save new version").click()
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"script refused: {line}" for line in violations(axe_page)]
    axe_page.goto(url + "/sms/templates/reminder/en")
    axe_page.get_by_label("Message text").fill("Hi {name} on {clinic}")
    axe_page.get_by_role("button", name="Save new version").click()
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"template refused: {line}" for line in violations(axe_page)]
    axe_page.goto(url + "/audit")
    axe_page.get_by_label("NHS number").fill("123")
    axe_page.get_by_role("button", name="Filter").click()
    expect(axe_page.locator(".nhsuk-error-summary")).to_be_visible()
    found += [f"audit NHS number refused: {line}" for line in violations(axe_page)]
    assert found == [], "\n".join(found)


def test_the_manager_dashboard_analytics_and_board_pack_with_figures_have_no_violations(
    axe_page: Page, live_server: LiveServer, session: Session
) -> None:
    from app.analytics.pages import period_query
    from app.feed.tables import FeedMessage
    from app.jobs.tables import JobRun
    from tests.analytics.helpers import PERIOD, create_arm
    from tests.clock import TODAY

    create_arm(session, arm="call", attended=95, dnas=5, reached_attended=39, reached_dnas=1)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    # Alerts on the dashboard: a failed job and a dead letter.
    session.add(JobRun(name="queue_build", day=TODAY, status="failed", worker="w", error="E"))
    session.add(
        FeedMessage(control_id="AXE1", message_type="SIU^S12", status="rejected", ack_code="AR",
                    raw="x", size_bytes=1)
    )  # fmt: skip
    create_user(session, role=Role.MANAGER, username="axe-manager")
    session.commit()
    url = live_server.url
    _sign_in(axe_page, url, "axe-manager")
    expect(axe_page).to_have_url(url + "/dashboard")
    expect(axe_page.locator("[data-alert]")).to_have_count(2)
    found = [f"/dashboard: {line}" for line in violations(axe_page)]
    query = period_query(PERIOD)
    found += check(axe_page, url, f"/analytics?{query}")
    found += check(axe_page, url, f"/analytics/board-pack?{query}")
    assert found == [], "\n".join(found)


def test_the_model_page_with_a_card_drift_and_reviews_has_no_violations(
    axe_page: Page, live_server: LiveServer, session: Session, settings: Settings
) -> None:
    from datetime import timedelta

    from app.risk import service
    from app.risk.review import retrain_and_decide
    from tests.risk.helpers import NOW, create_trust, risk_settings

    create_trust(session, patients=300, past=2_500, future=50)
    trained_before = NOW - timedelta(weeks=9)
    service.train_model(session, risk_settings(settings), now=trained_before, as_of=trained_before)
    retrain_and_decide(session, risk_settings(settings), now=NOW)
    create_user(session, role=Role.MANAGER, username="axe-model")
    session.commit()
    url = live_server.url
    _sign_in(axe_page, url, "axe-model")

    found = check(axe_page, url, "/model")

    expect(axe_page.locator("svg.risk-drift-chart")).to_be_visible()
    assert found == [], "\n".join(found)
