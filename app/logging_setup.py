"""Logging: structured JSON in production, readable lines in development, never patient data.

Log events, counts and internal ids only: no names, NHS numbers, phone numbers, postcodes or
message bodies. A request id and the signed-in user's id (never a name) are attached to every
line logged while serving a request.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
# The signed-in user of the request being served, by id (never a name). A holder the request
# middleware creates and the session dependency fills: the dependency runs in a worker
# thread, whose context changes would not come back, but a shared holder does.
request_user_var: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "request_user", default=None
)


def note_request_user(user_id: int) -> None:
    """Record the request's signed-in user id for its log lines."""
    holder = request_user_var.get()
    if holder is not None:
        holder["user_id"] = user_id


def request_user_id() -> int | None:
    holder = request_user_var.get()
    return holder.get("user_id") if holder is not None else None


QUIET_LIBRARIES = ("httpx", "httpcore", "twilio", "twilio.http_client", "sqlalchemy.engine")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # A line logged with an explicit request id (the request log, written after the
        # context has been reset) keeps it.
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        if getattr(record, "user_id", None) is None:
            user_id = request_user_id()
            record.user_id = user_id if user_id is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "user_id": getattr(record, "user_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s user=%(user_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs print query strings; the service's own middleware logs method, route, status.
    logging.getLogger("uvicorn.access").disabled = True
    # Libraries that log whole URLs, request bodies or SQL parameters at INFO/DEBUG (Twilio's
    # client logs the To number and Body of every message) stay at WARNING whatever the level.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
