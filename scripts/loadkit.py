"""What the loopback load tests share: serving the app, signing in, recording latencies.

The clients use aiohttp on one asyncio loop per process. The load generator shares the
machine's cores with the server and PostgreSQL, so it must be cheap: httpx's async client
spent about 6 ms of CPU per request here, which starved the server it was measuring.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(
    database_url: str, workers: int, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[tuple[str, int]]:
    """`navigator serve` with several workers on a loopback port; yields (base URL, pid)."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "navigator"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "NAVIGATOR_DATABASE_URL": database_url,
            "NAVIGATOR_LOG_LEVEL": "WARNING",
            **(env or {}),
        },
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not become healthy")
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def percentiles_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50, p95 and max of latencies given in seconds, in milliseconds."""
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


class Recorder:
    """Latency and status of every request, by route label (a template, never an id)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.timeline: list[tuple[float, float]] = []  # (seconds since start, latency)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.transport_errors: dict[str, int] = defaultdict(int)

    async def call(
        self, client: aiohttp.ClientSession, label: str, method: str, url: str, **kwargs: Any
    ) -> tuple[int, Any] | None:
        """(status, JSON body or None) of one request; None on a transport error."""
        started = time.perf_counter()
        try:
            async with client.request(method, url, **kwargs) as response:
                body = (
                    await response.json()
                    if response.content_type == "application/json"
                    else await response.read()
                )
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            self.transport_errors[label] += 1
            return None
        latency = time.perf_counter() - started
        self.latencies[label].append(latency)
        self.timeline.append((time.time() - self.started - latency, latency))
        self.statuses[label][status] += 1
        return status, body

    def merge(self, other: dict[str, Any]) -> None:
        """Add what a `Recorder` in another process recorded (see `dump`)."""
        for label, values in other["latencies"].items():
            self.latencies[label].extend(values)
        for label, statuses in other["statuses"].items():
            for code, count in statuses.items():
                self.statuses[label][int(code)] += count
        for label, count in other["transport_errors"].items():
            self.transport_errors[label] += count
        offset = other["started"] - self.started
        self.timeline.extend((at + offset, latency) for at, latency in other["timeline"])

    def dump(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "timeline": self.timeline,
            "latencies": dict(self.latencies),
            "statuses": {label: dict(codes) for label, codes in self.statuses.items()},
            "transport_errors": dict(self.transport_errors),
        }

    def report(self, seconds: float) -> dict[str, Any]:
        """Errors are 5xx and transport errors; 4xx are counted apart (a flow may expect
        them, such as a call completed by someone else)."""
        routes = {}
        total = errors = client_errors = 0
        for label in sorted(set(self.latencies) | set(self.transport_errors)):
            samples = self.latencies.get(label, [])
            statuses = self.statuses.get(label, {})
            failed = self.transport_errors.get(label, 0)
            route_errors = failed + sum(n for code, n in statuses.items() if code >= 500)
            count = len(samples) + failed
            total += count
            errors += route_errors
            client_errors += sum(n for code, n in statuses.items() if 400 <= code < 500)
            routes[label] = {
                "requests": count,
                "errors": route_errors,
                "statuses": {str(code): n for code, n in sorted(statuses.items())},
                **percentiles_ms(samples),
            }
        return {
            "requests": total,
            "errors": errors,
            "error_rate": round(errors / total, 5) if total else None,
            "client_errors_4xx": client_errors,
            "throughput_rps": round(total / seconds, 1),
            "routes": routes,
            "p95_ms_by_minute": self.by_minute(),
        }

    def by_minute(self) -> list[dict[str, Any]]:
        """Requests and p95 of all routes in each minute of the run (is it steady?)."""
        minutes: dict[int, list[float]] = defaultdict(list)
        for at, latency in self.timeline:
            minutes[int(max(at, 0) // 60)].append(latency)
        return [
            {"minute": minute + 1, "requests": len(values), **percentiles_ms(values)}
            for minute, values in sorted(minutes.items())
        ]


async def sign_in(client: aiohttp.ClientSession, username: str, password: str) -> str:
    """Sign in through the API (the session cookie stays in the client); the CSRF token."""
    async with client.post(
        "/api/auth/session", json={"username": username, "password": password}
    ) as response:
        response.raise_for_status()
        csrf: str = (await response.json())["csrf_token"]
        return csrf


def client_session(base: str, connections: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=base,
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=connections),
        # Loopback http: the session cookie is Secure only in production.
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )
