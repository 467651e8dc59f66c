"""Browser test harness: the real app under uvicorn on a free local port, driven by Chromium.

The server runs in a thread against the test run's database (SQLite file or the PostgreSQL
test database). Chromium is Debian's (`NAVIGATOR_CHROMIUM` or /usr/bin/chromium), launched
by Playwright's sync API; `playwright install` is never needed. Screenshots go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings

CHROMIUM = os.environ.get("NAVIGATOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    settings: Settings
    clock: FixedClock


@pytest.fixture
def live_server(settings: Settings, database: Database, clock: FixedClock) -> Iterator[LiveServer]:
    """The app served on a free port, on the test's clock (move it and the pages follow)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_settings = settings.model_copy(
        update={"public_base_url": url, "login_failure_delay_ms": 0}
    )
    config = uvicorn.Config(
        create_app(server_settings, database, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="navigator-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    yield LiveServer(url=url, settings=server_settings, clock=clock)
    server.should_exit = True
    thread.join(timeout=10)


# Module scope, not session: Playwright's sync API runs its event loop in a greenlet of the
# main thread, so while it is started every other test on the worker sees a running loop and
# `asyncio.run()` fails ("cannot be called from a running event loop"). Pytest stops it when the
# worker moves on to a test in another module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM} (.ci/run installs it)")
        pytest.skip(f"Chromium not found at {CHROMIUM}; set NAVIGATOR_CHROMIUM")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class BrowserPage:
    """A fresh browser context and page; script errors and CSP violations are kept."""

    page: Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def open_header_link(self, name: str) -> None:
        """Follow a header navigation link, opening the header's "More" menu if it folded there.

        The NHS.UK header script folds the links that do not fit into "More" and marks the
        header initialised once it has; a frame later the layout is settled.
        """
        page = self.page
        page.locator("header[data-nhsuk-header-init]").wait_for(state="attached")
        page.wait_for_function("() => new Promise(done => requestAnimationFrame(() => done(true)))")
        links = page.locator("a.nhsuk-header__navigation-link").filter(has_text=name)
        if links.filter(visible=True).count() == 0:
            page.locator("#toggle-menu").click()
        links.filter(visible=True).first.click()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(browser: Browser, live_server: LiveServer) -> Iterator[BrowserPage]:
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    wrapper = BrowserPage(page=page, base_url=live_server.url)

    # Pages must not wait on any host outside the trust (fonts included: see app/ui/fonts.py).
    # Tests run offline: such a request is refused at once and kept for tests to assert on.
    def refuse_outside(route: Route) -> None:
        wrapper.outside_requests.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + re.escape(live_server.url) + r")https?://"), refuse_outside)

    def keep_errors(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            wrapper.console_errors.append(message.text)

    page.on("console", keep_errors)
    page.on("pageerror", lambda error: wrapper.console_errors.append(str(error)))
    yield wrapper
    context.close()
