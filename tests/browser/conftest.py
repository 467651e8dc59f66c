"""Browser test harness: the real app under uvicorn on a free local port, driven by Chromium.

The server runs in a thread against the test run's database (SQLite file or the PostgreSQL
test database). Chromium is Debian's (`NAVIGATOR_CHROMIUM` or /usr/bin/chromium), launched
by Playwright's sync API; `playwright install` is never needed. Screenshots go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

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


@pytest.fixture
def live_server(settings: Settings, database: Database) -> Iterator[LiveServer]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_settings = settings.model_copy(
        update={"public_base_url": url, "login_failure_delay_ms": 0}
    )
    config = uvicorn.Config(
        create_app(server_settings, database),
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
    yield LiveServer(url=url, settings=server_settings)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
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

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(browser: Browser, live_server: LiveServer) -> Iterator[BrowserPage]:
    context = browser.new_context(base_url=live_server.url)
    # The NHS.UK stylesheet asks assets.nhs.uk for the Frutiger web font; tests run offline,
    # so that request is refused at once rather than left to time out.
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    wrapper = BrowserPage(page=page, base_url=live_server.url)

    def keep_errors(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            wrapper.console_errors.append(message.text)

    page.on("console", keep_errors)
    page.on("pageerror", lambda error: wrapper.console_errors.append(str(error)))
    yield wrapper
    context.close()
