"""A local HTTP server that speaks enough of Twilio's REST API for the real SDK to talk to.

It accepts `POST /2010-04-01/Accounts/{sid}/Messages.json` and `GET` of the same path (the
message list reconciliation asks), records every request byte for byte so tests can check it
against Twilio's OpenAPI description, and answers with Twilio's own error body shape for the
numbers below. Used by the tests and by scripts/bench_sms.py.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from app.clock import SYSTEM_CLOCK, Clock

# Recipients that make the fake answer like Twilio does for these errors (Ofcom drama range).
INVALID_NUMBER = "+447700900211"
UNSUBSCRIBED_NUMBER = "+447700900610"
RATE_LIMITED_NUMBER = "+447700900429"
SERVER_ERROR_NUMBER = "+447700900500"
SLOW_NUMBER = "+447700900408"

ERRORS: dict[str, tuple[int, int, str]] = {
    INVALID_NUMBER: (400, 21211, "The 'To' number +447700900211 is not a valid phone number."),
    UNSUBSCRIBED_NUMBER: (400, 21610, "Attempt to send to unsubscribed recipient"),
    RATE_LIMITED_NUMBER: (429, 20429, "Too Many Requests"),
    SERVER_ERROR_NUMBER: (500, 20500, "Internal Server Error"),
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the kill tests do it on purpose) is not an error here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class FakeTwilio:
    """The server's state; `start()` serves it on 127.0.0.1 in a background thread."""

    latency_seconds: float = 0.0
    slow_seconds: float = 2.0
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # Stamps each message's date_sent; the dispatcher under test shares it.
    clock: Clock = SYSTEM_CLOCK

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTwilio:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's algorithm
            # and delayed ACKs add ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                state.handle(self, "POST")

            def do_GET(self) -> None:
                state.handle(self, "GET")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests look at -----------------------------------------------------------------

    def sent_keys(self) -> Counter[str]:
        """How many accepted messages carried each idempotency key (in the callback URL)."""
        with self.lock:
            return Counter(str(message["_key"]) for message in self.messages)

    def message_posts(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    # -- the API ----------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        record = RecordedRequest(method, parts.path, parts.query, dict(handler.headers), body)
        with self.lock:
            self.requests.append(record)
        if not parts.path.endswith("/Messages.json"):
            self._reply(handler, 404, {"code": 20404, "message": "Not found", "status": 404})
            return
        if method == "GET":
            self._list(handler, parts.query)
            return
        form = record.form
        to = form.get("To", "")
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if to == SLOW_NUMBER:
            time.sleep(self.slow_seconds)
        if to in ERRORS:
            status, code, text = ERRORS[to]
            self._reply(
                handler,
                status,
                {
                    "code": code,
                    "message": text,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
            return
        callback = form.get("StatusCallback", "")
        key = parse_qs(urlsplit(callback).query).get("key", [""])[0]
        now = self.clock.now()
        sid = "SM" + uuid.uuid4().hex
        account = parts.path.split("/")[3]
        message: dict[str, object] = {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": format_datetime(now, usegmt=True),
            "date_sent": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {},
            "to": to,
            "uri": f"{parts.path[: -len('.json')]}/{sid}.json",
            "_key": key,
            "_at": now.timestamp(),
        }
        with self.lock:
            self.messages.append(message)
        self._reply(handler, 201, _public(message))

    def _list(self, handler: BaseHTTPRequestHandler, query: str) -> None:
        params = {key: values[0] for key, values in parse_qs(query).items()}
        since = params.get("DateSent>")
        since_ts = (
            datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            if since
            else 0.0
        )
        with self.lock:
            found = [
                _public(message)
                for message in self.messages
                if message["to"] == params.get("To", message["to"])
                and float(message["_at"]) >= since_ts  # type: ignore[arg-type]
            ]
        self._reply(
            handler,
            200,
            {
                "messages": found,
                "end": max(len(found) - 1, 0),
                "first_page_uri": "",
                "next_page_uri": None,
                "page": 0,
                "page_size": len(found),
                "previous_page_uri": None,
                "start": 0,
                "uri": "",
            },
        )

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away, as the slow number intends


def _public(message: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in message.items() if not key.startswith("_")}
