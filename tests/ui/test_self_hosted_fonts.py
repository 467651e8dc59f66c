"""No page waits on a host outside the trust: the NHS.UK fonts are served by Navigator (or
fall back to the system stack), and the content security policy names no outside host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.ui.fonts import self_host_fonts
from app.ui.security import CONTENT_SECURITY_POLICY
from app.ui.setup import STATIC_DIR
from tests.auth.helpers import create_user, sign_in

PACKAGE_CSS = (
    Path(__file__).resolve().parents[2]
    / "node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css"
)
# A URL a stylesheet or page would fetch from another host (http(s):// or protocol-relative).
CSS_OUTSIDE = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"]?)(?:https?:)?//", re.IGNORECASE)
HTML_OUTSIDE = re.compile(r"(?:src|href|action|srcset)=\"(?:https?:)?//", re.IGNORECASE)
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)"')

NHS_FONT_FACE = (
    "@font-face{font-family:Frutiger W01;font-style:normal;font-weight:400;"
    "font-display:fallback;src:url(https://assets.nhs.uk/fonts/FrutigerLTW01-55Roman.woff2) "
    'format("woff2"),url(https://assets.nhs.uk/fonts/FrutigerLTW01-55Roman.woff) format("woff")}'
    "body{font-family:Frutiger W01,arial,sans-serif}"
)


def test_a_shipped_font_file_is_served_by_navigator(tmp_path: Path) -> None:
    (tmp_path / "FrutigerLTW01-55Roman.woff2").write_bytes(b"wOF2")

    css = self_host_fonts(NHS_FONT_FACE, tmp_path)

    assert "assets.nhs.uk" not in css
    assert 'url(/static/nhsuk/assets/fonts/FrutigerLTW01-55Roman.woff2) format("woff2")' in css
    # The .woff the package did not ship is dropped, not left pointing outside.
    assert ".woff)" not in css
    assert self_host_fonts(css, tmp_path) == css


def test_without_font_files_the_rule_goes_and_the_fallback_stack_stays(tmp_path: Path) -> None:
    css = self_host_fonts(NHS_FONT_FACE, tmp_path)

    assert css == "body{font-family:Frutiger W01,arial,sans-serif}"


@pytest.mark.skipif(not PACKAGE_CSS.exists(), reason="nhsuk-frontend not installed (npm ci)")
def test_the_packaged_stylesheet_keeps_no_outside_url() -> None:
    css = PACKAGE_CSS.read_text("utf-8")
    assert "assets.nhs.uk" in css  # what the rewrite is for

    rewritten = self_host_fonts(css, PACKAGE_CSS.parent / "assets" / "fonts")

    assert not CSS_OUTSIDE.search(rewritten)
    assert "font-family:Frutiger W01,arial,sans-serif" in rewritten
    # Nothing else in the stylesheet changed.
    assert len(css) - len(rewritten) < 1_000


def test_the_content_security_policy_names_no_outside_host() -> None:
    for directive in CONTENT_SECURITY_POLICY.split(";"):
        _name, *sources = directive.split()
        for source in sources:
            assert source in {"'self'", "'none'", "data:"}, (directive, source)


@pytest.mark.skipif(
    not (STATIC_DIR / "nhsuk" / "nhsuk-frontend.min.css").exists(),
    reason="the NHS.UK frontend was not copied (scripts/setup.sh)",
)
def test_no_served_page_or_stylesheet_refers_to_an_outside_host(
    session: Session, app_client: TestClient
) -> None:
    create_user(session, role=Role.MANAGER, username="fonts-manager")
    session.commit()
    sign_in_page = app_client.get("/sign-in").text
    sign_in(app_client, "fonts-manager")
    pages = [sign_in_page] + [app_client.get(path).text for path in ("/", "/analytics")]

    stylesheets: set[str] = set()
    for html in pages:
        assert not HTML_OUTSIDE.search(html)
        stylesheets |= set(STYLESHEET.findall(html))
    assert "/static/nhsuk/nhsuk-frontend.min.css" in stylesheets
    for href in stylesheets:
        response = app_client.get(href)
        assert response.status_code == 200, href
        assert not CSS_OUTSIDE.search(response.text), href
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
