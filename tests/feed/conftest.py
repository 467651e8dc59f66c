"""The feed tests' fixtures: a real MLLP listener on a free loopback port, and a sender."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.clock import FixedClock
from app.db.session import Database
from app.feed.listener import FeedListener
from tests.feed.helpers import MllpClient, running_listener


@pytest.fixture
def listener(database: Database, clock: FixedClock) -> Iterator[FeedListener]:
    with running_listener(database, clock) as running:
        yield running


@pytest.fixture
def client(listener: FeedListener) -> Iterator[MllpClient]:
    assert listener.port is not None
    sender = MllpClient(listener.port)
    yield sender
    sender.close()
