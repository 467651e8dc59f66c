"""Database errors answered as what they are instead of a 500.

A number too large for its column (an id of 2**31 on PostgreSQL's integer) or a value the
database cannot read is a bad request, not a server fault. Ids in paths are bounded by
`RecordId` so the request is refused before any query; this handler is the safety net for
every other parameter. A database that cannot be reached (a restart, a failover) answers
503 with Retry-After.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import FastAPI, Path, Request, Response
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.errors import DomainError, InvalidInputError
from app.ui.errors import domain_error_response

logger = logging.getLogger("navigator.db")


class DatabaseUnavailableError(DomainError):
    """The database cannot be reached right now (restart, failover): try again shortly."""

    status_code = 503
    code = "database_unavailable"


MAX_RECORD_ID = 2**31 - 1  # PostgreSQL integer, the type of every id column
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]


def install_database_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)  # SQLite's driver refuses ints beyond 64 bits
    async def data_error(request: Request, error: DataError | OverflowError) -> Response:
        # The statement and parameters can hold patient data: log the error class only.
        cause = error.orig if isinstance(error, DataError) else error
        logger.warning("database refused a value: %s", type(cause).__name__)
        return domain_error_response(
            request, InvalidInputError("A value in the request is out of range or malformed.")
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def database_unavailable(
        request: Request, error: DBAPIError | PoolTimeoutError
    ) -> Response:
        # A restart or failover: the pool drops dead connections (pre-ping) and the next
        # request reconnects; this one is answered 503 so clients and balancers retry. The
        # same when no connection came free in time (PoolTimeoutError): busy, not broken.
        if isinstance(error, DBAPIError):
            logger.warning(
                "database unavailable: %s (connection invalidated: %s)",
                type(error.orig).__name__,
                error.connection_invalidated,
            )
        else:
            logger.warning("no database connection came free in time")
        response = domain_error_response(
            request,
            DatabaseUnavailableError(
                "The service is briefly unavailable. Try again in a few seconds."
            ),
        )
        response.headers["Retry-After"] = "5"
        return response
