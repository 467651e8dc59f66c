"""Database errors a client can cause, answered as a client error instead of a 500.

A number too large for its column (an id of 2**31 on PostgreSQL's integer) or a value the
database cannot read is a bad request, not a server fault. Ids in paths are bounded by
`RecordId` so the request is refused before any query; this handler is the safety net for
every other parameter.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import FastAPI, Path, Request, Response
from sqlalchemy.exc import DataError

from app.errors import InvalidInputError
from app.ui.errors import domain_error_response

logger = logging.getLogger("navigator.db")

MAX_RECORD_ID = 2**31 - 1  # PostgreSQL integer, the type of every id column
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]


def install_database_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DataError)
    async def data_error(request: Request, error: DataError) -> Response:
        # The statement and parameters can hold patient data: log the error class only.
        logger.warning("database refused a value: %s", type(error.orig).__name__)
        return domain_error_response(
            request, InvalidInputError("A value in the request is out of range or malformed.")
        )
