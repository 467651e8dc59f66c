"""A feed listener as a process of its own, for the kill-and-restart test.

    python -m tests.feed.listener_process DATABASE_URL PORT NOW

Runs the real `FeedListener` (what `navigator feed hl7` runs) on 127.0.0.1:PORT (0 for any
free port) with a fixed clock at NOW, and prints `ready <port>` once it is listening, so the
test waits on that line instead of polling the port.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from app.clock import FixedClock
from app.db.session import Database
from app.feed.listener import FeedListener
from app.settings import Settings


def main() -> None:
    database_url, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    database = Database(Settings(_env_file=None, database_url=database_url, log_level="WARNING"))
    listener = FeedListener(database, FixedClock(now))

    def ready(bound: int) -> None:
        print(f"ready {bound}", flush=True)

    async def run() -> None:
        listener.install_signal_handlers()
        await listener.serve("127.0.0.1", port, ready=ready)

    try:
        asyncio.run(run())
    finally:
        database.dispose()


if __name__ == "__main__":
    main()
