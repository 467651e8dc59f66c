"""Domain errors: what went wrong, in words a user can act on, with the HTTP status to use.

Services raise these; one handler renders them for the JSON API and another for pages, and
the CLI prints the message and exits non-zero.
"""

from __future__ import annotations

import math
from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"


class ConflictError(DomainError):
    status_code = 409
    code = "conflict"


class InvalidInputError(DomainError):
    status_code = 422
    code = "invalid"


class PermissionDeniedError(DomainError):
    status_code = 403
    code = "forbidden"


class NotReadyError(DomainError):
    """A prerequisite is missing (no active model, no data for a period...)."""

    status_code = 409
    code = "not_ready"


class TooManyRequestsError(DomainError):
    """Slow down: answered 429 with `Retry-After` (whole seconds until a retry can succeed)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))
