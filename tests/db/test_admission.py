"""Admission control keeps a process's requests in progress at or under its connections."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.db.admission import AdmissionMiddleware


def test_requests_beyond_the_pool_wait_their_turn_and_all_succeed() -> None:
    running = 0
    most = 0

    async def uses_the_database(_request: Request) -> PlainTextResponse:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)  # holding a connection
        running -= 1
        return PlainTextResponse("ok")

    app = AdmissionMiddleware(Starlette(routes=[Route("/api/x", uses_the_database)]), limit=3)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/api/x") for _ in range(20)))
        return [answer.status_code for answer in answers]

    assert asyncio.run(burst()) == [200] * 20
    assert most == 3
