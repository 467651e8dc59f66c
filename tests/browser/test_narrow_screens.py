"""Pages on a phone (390 px wide) in Chromium: nothing wider than the screen (a wide table
scrolls in its own box), and on the call screen the forms come before the script, which is
folded away; on a wide screen the script is open beside the forms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.tables import Call
from app.clock import FixedClock
from app.settings import Settings
from app.tasks.tables import NavigatorTask, TaskKind
from tests.auth.helpers import create_user
from tests.browser.conftest import LiveServer
from tests.browser.test_calls_pages import _queue_today, _sign_in, _take_and_answer

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
WIDE: ViewportSize = {"width": 1280, "height": 900}

# Elements whose right edge passes the viewport and that no scrolling box of their own holds.
TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (element) => {
    let node = element.parentElement;
    for (; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) return true;
    }
    return false;
  };
  const offenders = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if ((box.right > width + 1 || box.left < -1) && !scrolls(element)) {
      const classes = String(element.className || "").split(" ").join(".");
      const name = element.tagName.toLowerCase() + (classes ? "." + classes : "");
      offenders.push(`${name} (${Math.round(box.left)}..${Math.round(box.right)})`);
    }
  }
  return {
    offenders: offenders.slice(0, 10),
    pageWidth: document.documentElement.scrollWidth,
    width,
  };
}"""


def _fits(page: Page, what: str) -> None:
    result = page.evaluate(TOO_WIDE)
    assert result["offenders"] == [], (what, result)
    assert result["pageWidth"] <= result["width"], (what, result)


def _top(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return float(box["y"])


def _long_tasks(session: Session, patient_id: int, count: int) -> None:
    for number in range(count):
        session.add(
            NavigatorTask(
                kind=TaskKind.DATA_QUALITY,
                patient_id=patient_id,
                source="sms",
                source_ref=f"narrow-{number}",
                detail="Twilio rejected the mobile number as invalid (error 21211). "
                "Check the number with the patient and correct it: "
                "averyveryveryverylongwordwithoutanyspacesinsideitthatcouldwidenthepage",
            )
        )
    session.commit()


def test_queue_call_tasks_and_patient_pages_fit_a_390px_screen(
    browser: Browser,
    live_server: LiveServer,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock, patients=2)
    create_user(session, role=Role.NAVIGATOR, username="narrow-navigator")
    session.commit()
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    url = live_server.url
    try:
        _sign_in(page, url, "narrow-navigator")
        expect(page).to_have_url(re.compile(r"/queue"))
        _fits(page, "queue")

        _take_and_answer(page)
        _fits(page, "call screen")
        # The forms come first, below the person to check; the script is folded away.
        assert _top(page, "[data-testid=call-forms]") < _top(page, "[data-testid=script-details]")
        assert _top(page, "text=Check it is the right person") < _top(
            page, "[data-testid=call-forms]"
        )
        expect(page.get_by_test_id("script-details")).not_to_have_attribute("open", "")
        expect(page.get_by_test_id("script").first).to_be_hidden()
        page.get_by_text("Show the call script").click()
        expect(page.get_by_test_id("script").first).to_be_visible()
        _fits(page, "call screen, script unfolded")

        call_id = int(page.url.rsplit("/", 1)[1])
        session.expire_all()
        patient_id = session.scalars(select(Call.patient_id).where(Call.id == call_id)).one()
        _long_tasks(session, patient_id, 30)

        for path in (
            "/tasks",
            f"/patients/{patient_id}",
            f"/patients/{patient_id}/history",
            "/patients/search",
            "/history",
            "/account/password",
        ):
            page.goto(url + path)
            expect(page.locator("h1")).to_be_visible()
            _fits(page, path)
    finally:
        context.close()


def test_on_a_wide_screen_the_script_is_open_beside_the_forms(
    browser: Browser,
    live_server: LiveServer,
    session: Session,
    settings: Settings,
    clock: FixedClock,
) -> None:
    _queue_today(session, settings, clock, patients=1)
    create_user(session, role=Role.NAVIGATOR, username="wide-navigator")
    session.commit()
    context = browser.new_context(base_url=live_server.url, viewport=WIDE)
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _sign_in(page, live_server.url, "wide-navigator")
        _take_and_answer(page)
        expect(page.get_by_test_id("script").first).to_be_visible()
        forms = page.get_by_test_id("call-forms").bounding_box()
        script = page.get_by_test_id("script-details").bounding_box()
        assert forms is not None
        assert script is not None
        assert forms["x"] > script["x"]  # side by side: the forms in the right-hand column
    finally:
        context.close()
