"""Domain errors specific to signing in and permissions."""

from __future__ import annotations

from app.errors import DomainError, TooManyRequestsError


class NotSignedInError(DomainError):
    """No valid session: the API answers 401, pages redirect to the sign-in page."""

    status_code = 401
    code = "not_signed_in"


class CsrfError(DomainError):
    status_code = 403
    code = "csrf_failed"


class TooManyAttemptsError(TooManyRequestsError):
    code = "too_many_attempts"
