"""A small in-process limit on failed sign-ins per client address.

Only failures count, so a whole clinic signing in from behind one NAT address is never held
up by its own successful sign-ins. Per process: with several workers the effective limit is
multiplied by the worker count; the per-account lockout (stored in the database) is the
control that holds across processes.
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

    def record_failure(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # bound memory under a spray of addresses
                self._failures = {}
            self._recent(client, now).append(now)
