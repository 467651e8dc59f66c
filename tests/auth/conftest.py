"""Auth test fixtures. Failed sign-ins answer at once here: the delay is tested on its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"login_failure_delay_ms": 0})


@pytest.fixture
def page_client(settings: Settings, database: Database, clock: FixedClock) -> Iterator[TestClient]:
    """A client for the HTML pages over https, so the Secure cookies travel as in a browser."""
    with TestClient(
        create_app(settings, database, clock=clock), base_url="https://testserver"
    ) as client:
        yield client
