"""A small in-process limit on sign-in attempts per client address.

Per process, so with several workers the effective limit is multiplied by the worker count;
the per-account lockout (stored in the database) is the control that holds across processes.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    def __init__(self, per_minute: int, window_seconds: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_seconds = window_seconds
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        """Record an attempt by `client`; False when it is over the limit for the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts.setdefault(client, deque())
            while attempts and now - attempts[0] >= self.window_seconds:
                attempts.popleft()
            if len(attempts) >= self.per_minute:
                return False
            attempts.append(now)
            if len(self._attempts) > 10_000:  # bound memory under a spray of addresses
                self._attempts = {client: attempts}
            return True
