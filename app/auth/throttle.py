"""A small in-process limit on failed sign-ins per client address.

Only failures count, and the limit only slows and refuses further *failures*: the right
password always signs in, so one person mistyping (or an attacker guessing) cannot lock a
whole clinic behind one NAT address out. The client address is the TCP peer, or the
forwarded address only when the peer is a configured trusted proxy (`app/web.py`).

Per process: with several workers the effective limit is multiplied by the worker count; the
per-account lockout (stored in the database) is the control that holds across processes.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    def __init__(self, failures_per_window: int, window_seconds: float = 60.0) -> None:
        self.failures_per_window = failures_per_window
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] >= self.window_seconds:
            failures.popleft()
        return failures

    def blocked(self, client: str, now: float | None = None) -> bool:
        """Whether `client` has used up its failed attempts for the current window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._recent(client, now)) >= self.failures_per_window

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until `client` has a failed attempt to spare again (0 when it has one)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.failures_per_window:
                return 0.0
            return failures[-self.failures_per_window] + self.window_seconds - now

    def record_failure(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # bound memory under a spray of addresses
                self._failures = {}
            self._recent(client, now).append(now)
