"""The board pack prints on A4 in Chromium: every table fits its page's width (portrait, or a
landscape page for wide tables), partial weeks are marked, and the cover carries five figures.

Chromium lays out printed pages at the page's content width, so each check sets the viewport
to that width under print media: 186 mm (A4 portrait less 12 mm margins each side) for
everything outside a landscape table, 273 mm for the landscape tables. Then the pack is printed
to PDF, which must hold both portrait and landscape pages.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.analytics.pages import period_query
from app.analytics.periods import Period
from app.auth.roles import Role
from app.risk.tables import RiskModel
from tests.analytics.helpers import PERIOD_END, PERIOD_START, create_arm
from tests.auth.helpers import DEFAULT_PASSWORD, create_user
from tests.browser.conftest import BrowserPage

pytestmark = pytest.mark.browser

MM = 96 / 25.4  # CSS pixels per millimetre
PORTRAIT_WIDTH = round((210 - 24) * MM)
LANDSCAPE_WIDTH = round((297 - 24) * MM)
# Elements whose edges lie beyond the viewport, inside or outside landscape tables. NHS.UK
# summary lists and tables bleed 2 px each side by design (margin: 0 -2px), well inside the
# page's 12 mm margin, so 3 px is allowed.
OVERFLOWING = """
([landscape]) => {
  const limit = document.documentElement.clientWidth + 3;
  const found = [];
  for (const element of document.querySelectorAll("body *")) {
    const inLandscape = element.closest("[data-print=landscape]") !== null;
    if (inLandscape !== landscape) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not printed
    if (box.right > limit || box.left < -3) {
      found.push(`${element.tagName.toLowerCase()}#${element.id}.${element.className} ` +
                 `from ${Math.round(box.left)} to ${Math.round(box.right)} of ${limit}`);
    }
  }
  return found.slice(0, 10);
}
"""


def _card() -> dict[str, Any]:
    group = {"rows": 500, "observed": 0.07, "predicted": 0.07, "observed_minus_predicted": 0.0,
             "observed_minus_predicted_ci": [-0.01, 0.01], "calibration_slope": 1.0,
             "calibration_slope_ci": [0.8, 1.2]}  # fmt: skip
    return {
        "data_window": {"test_from": PERIOD_START.isoformat()},
        "calibration_by_group": {
            "limit": 0.02,
            "attributes": {"ethnic_group": {"groups": [{"group": "White", **group}]}},
            "flags": [],
        },
        "fairness": {
            "ethnic_group": {
                "auroc_gap": 0.01, "gap_limit": 0.05, "gap_flagged": False,
                "groups": [{"group": "White", "rows": 500, "auroc": 0.7,
                            "ci95": {"auroc": [0.66, 0.74]}}],
            }
        },
    }  # fmt: skip


def _programme(session: Session) -> None:
    for category, imd in (("A", 1), ("M", 3), ("H", 6), ("D", 9)):
        create_arm(
            session, arm="call", attended=60, dnas=6, reached_attended=30, reached_dnas=2,
            ethnic_category=category, imd_decile=imd,
        )  # fmt: skip
        create_arm(
            session, arm="holdout", attended=45, dnas=8, ethnic_category=category, imd_decile=imd
        )
    session.add(
        RiskModel(version="print-1", artefact_path="/nowhere", artefact_sha256="0" * 64,
                  card=_card(), active=True)
    )  # fmt: skip
    create_user(session, role=Role.MANAGER, username="manager.print")
    session.commit()


def _overflowing(page: Page, *, landscape: bool) -> list[str]:
    width = LANDSCAPE_WIDTH if landscape else PORTRAIT_WIDTH
    page.set_viewport_size({"width": width, "height": 1000})
    found: list[str] = page.evaluate(OVERFLOWING, [landscape])
    return found


def test_the_board_pack_fits_a4_and_prints_to_pdf(
    browser_page: BrowserPage, session: Session
) -> None:
    _programme(session)
    page = browser_page.page
    browser_page.goto("/sign-in")
    page.get_by_label("Username").fill("manager.print")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Starting on a Wednesday: the first and last weeks are partial.
    period = Period(PERIOD_START + timedelta(days=2), PERIOD_END + timedelta(days=2))
    browser_page.goto(f"/analytics/board-pack?{period_query(period)}")

    cover = page.get_by_test_id("cover")
    expect(cover.locator(".nhsuk-summary-list__row")).to_have_count(5)
    expect(cover).to_contain_text("DNAs avoided")
    expect(cover).to_contain_text("Follow-up tasks raised for navigators")
    expect(page.locator("#table-impact-over-time")).to_contain_text("partial: 5 of 7 days")
    assert page.locator("[data-print=landscape]").count() >= 3

    page.emulate_media(media="print")
    assert _overflowing(page, landscape=False) == []
    assert _overflowing(page, landscape=True) == []
    pdf = page.pdf(format="A4", prefer_css_page_size=True, print_background=True)

    assert pdf.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf)
    portrait = sum(1 for width, height in boxes if float(width) < float(height))
    landscape = sum(1 for width, height in boxes if float(width) > float(height))
    assert portrait >= 2, boxes
    assert landscape >= 1, boxes
    assert browser_page.console_errors == []
    assert browser_page.outside_requests == []
