"""Patient-level reads: one audit row per request, and a per-user limit on bulk reading.

Every route that returns patient data (one record or a list) takes `PatientReaderDep`
instead of a bare role: it signs the navigator in, refuses a user past their read limit with
429 and `Retry-After`, and carries the request's time. After the read the route calls
`record_patient_read` with the ids it is about to return: one audit row per request holding
the filter and the ids (a single record also fills `patient_id`), and the rows count toward
the limit. The limit is per process, like the sign-in throttle; the audit trail is the record.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from app.auth.audit import READ_ACTIONS, record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.errors import TooManyRequestsError
from app.settings import Settings

WINDOW_SECONDS = 60.0
__all__ = ["READ_ACTIONS", "PatientReaderDep", "record_patient_read"]


class TooManyReadsError(TooManyRequestsError):
    code = "too_many_reads"


class ReadLimiter:
    """Per user: requests and patient rows read in the last minute (by the app's clock)."""

    def __init__(self, requests_per_window: int, patients_per_window: int) -> None:
        self.requests_per_window = requests_per_window
        self.patients_per_window = patients_per_window
        self._reads: dict[int, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def _recent(self, user_id: int, now: float) -> deque[tuple[float, int]]:
        reads = self._reads.setdefault(user_id, deque())
        while reads and now - reads[0][0] >= WINDOW_SECONDS:
            reads.popleft()
        return reads

    def retry_after(self, user_id: int, now: float) -> float:
        """0 when `user_id` may read now, else the seconds until enough reads expire."""
        with self._lock:
            reads = self._recent(user_id, now)
            if len(reads) >= self.requests_per_window:
                return reads[-self.requests_per_window][0] + WINDOW_SECONDS - now
            total = sum(count for _, count in reads)
            if total < self.patients_per_window:
                return 0.0
            for moment, count in reads:  # oldest first: when does the total drop below?
                total -= count
                if total < self.patients_per_window:
                    return moment + WINDOW_SECONDS - now
            return WINDOW_SECONDS

    def record(self, user_id: int, patients: int, now: float) -> None:
        with self._lock:
            if len(self._reads) > 10_000:
                self._reads = {}
            self._recent(user_id, now).append((now, patients))


def read_limiter(request: Request) -> ReadLimiter:
    limiter: ReadLimiter | None = getattr(request.app.state, "read_limiter", None)
    if limiter is None:
        settings: Settings = request.app.state.settings
        limiter = ReadLimiter(
            settings.read_limit_requests_per_minute, settings.read_limit_patients_per_minute
        )
        request.app.state.read_limiter = limiter
    return limiter


@dataclass(frozen=True)
class PatientReader:
    """The signed-in user reading patient data, at the request's time."""

    user: User
    now: datetime
    limiter: ReadLimiter

    @property
    def id(self) -> int:
        return self.user.id

    def has_role(self, required: Role) -> bool:
        return self.user.has_role(required)


def patient_reader(
    request: Request,
    user: Annotated[User, Depends(require_role(Role.NAVIGATOR))],
    clock: ClockDep,
) -> PatientReader:
    """A navigator (or above) within their read limit; 429 with Retry-After past it."""
    now = clock.now()
    limiter = read_limiter(request)
    wait = limiter.retry_after(user.id, now.timestamp())
    if wait > 0:
        raise TooManyReadsError(
            "You have opened a lot of patient records in the last minute. Wait a moment and "
            "try again.",
            retry_after=wait,
        )
    return PatientReader(user=user, now=now, limiter=limiter)


PatientReaderDep = Annotated[PatientReader, Depends(patient_reader)]


def record_patient_read(
    session: Any,
    reader: PatientReader,
    *,
    action: str,
    patient_ids: Iterable[int],
    filters: Mapping[str, Any] | None = None,
    appointment_id: int | None = None,
) -> None:
    """One audit row for this request's read: the filter and every patient id returned."""
    ids = sorted(set(patient_ids))
    detail: dict[str, Any] = {"patient_ids": ids, "count": len(ids)}
    if filters:
        detail["filter"] = {key: value for key, value in filters.items() if value is not None}
    record_audit(
        session,
        user_id=reader.id,
        action=action,
        patient_id=ids[0] if len(ids) == 1 else None,
        appointment_id=appointment_id,
        detail=detail,
        now=reader.now,
    )
    reader.limiter.record(reader.id, len(ids), reader.now.timestamp())
