"""Admission control: no more requests in progress per process than it has connections.

A request takes a PostgreSQL connection on its first query and keeps it until the session
dependency commits, which (like every sync dependency and endpoint) runs on a thread from
AnyIO's pool of 40. When more requests arrive at once than the pool has connections, the late
ones sit on threads waiting for a connection; if they take every thread, the requests that
hold the connections cannot get a thread to finish and commit. Nothing moves until the pool's
30 s timeout fails the waiters: the service load test saw exactly that in its first minute
(30 s stalls and 500s) once the pool was sized to stay under `max_connections`.

So requests queue here, on the event loop and holding nothing, until one of as many slots as
the process has connections is free. Once admitted, a request always finds a connection and a
thread. Health checks and static files do not touch the pool's limit: they are not admitted
through it.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

UNLIMITED_PATHS = ("/static/", "/health")


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED_PATHS):
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # created on the server's event loop, not at import
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)
