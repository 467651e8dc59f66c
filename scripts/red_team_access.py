"""Horizontal-access red team: every GET route (API and pages), every role, own and another's
record (JSON).

    .venv/bin/python scripts/red_team_access.py
    .venv/bin/python scripts/red_team_access.py --base-url http://127.0.0.1:8000

Without `--base-url` it builds the app in process on a throwaway migrated SQLite database with
synthetic data: two patients, each with an appointment and a call held by a different
navigator; the navigator account holds the first call only.

With `--base-url` it tries a running server (`navigator demo` or `navigator serve`, loopback
or a test instance only) with the demo accounts (`--password`, `--username-prefix`): the
navigator takes the next call on today's queue (its "own" records), and a manager picks
"another's": a call nobody has given this navigator (not held, completed or attempted by
them) whose patient has no call they worked, with that patient's first appointment.

Either way it signs in as a navigator, a manager and an admin and calls every GET route of
the app with each id parameter filled from "own" and "another's"; routes without an id are
called bare and their bodies searched for the other patient (local id, record id, history
link). A *horizontal read* is a navigator getting a 200 for another's record, or a list that
carries it. A 429 (read limit) is waited out as its Retry-After says, so the answer is the
real one. Every request has a timeout; the run ends by itself. It prints the findings and
the totals as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from app.auth.dependencies import SESSION_COOKIE  # noqa: E402
from app.auth.roles import Role  # noqa: E402
from app.calls.tables import Call, CallStatus  # noqa: E402
from app.clock import FixedClock  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.auth.helpers import create_user, sign_in  # noqa: E402
from tests.clock import CALENDAR, TEST_NOW, TODAY  # noqa: E402
from tests.factories import create_appointment, create_patient  # noqa: E402
from tests.test_access_policy import app_routes  # noqa: E402

_PARAM = re.compile(r"\{([^}]+)\}")
ID_PARAMS = ("patient_id", "appointment_id", "call_id")
MAX_RETRIES = 3
TIMEOUT_SECONDS = 20.0

Get = Callable[[str], httpx.Response]


@dataclass
class Records:
    ids: dict[str, dict[str, int]]  # "own" / "other" -> id parameter -> value
    other_markers: list[str]  # text that gives the other patient away in a list


def get_routes() -> list[str]:
    """Every GET route template of the app (API and pages), the same code the server runs."""
    app = create_app(Settings(_env_file=None, database_url="sqlite://"))
    return [path for method, path in app_routes(app) if method == "GET"]


def markers(patient_id: int, pas_patient_id: str) -> list[str]:
    return [
        pas_patient_id,
        f'"patient_id":{patient_id},',
        f'"patient_id":{patient_id}}}',
        f"/patients/{patient_id}/history",
    ]


def probe(clients: dict[Role, Get], routes: list[str], records: Records) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    for role, get in clients.items():
        for path in routes:
            params = _PARAM.findall(path)
            if params and not all(p in ID_PARAMS for p in params):
                continue  # slugs, versions, template kinds: no patient record behind them
            for whose in ("own", "other") if params else ("list",):
                concrete = path
                for name in params:
                    value = records.ids["other" if whose == "other" else "own"][name]
                    concrete = concrete.replace("{" + name + "}", str(value))
                response = get(concrete)
                if whose == "list":
                    leaked = response.status_code == 200 and any(
                        marker in response.text for marker in records.other_markers
                    )
                else:
                    leaked = whose == "other" and response.status_code == 200
                findings.append(
                    {
                        "role": role.value,
                        "route": path,
                        "record": whose,
                        "status": response.status_code,
                        "another_patient_in_answer": leaked,
                    }
                )
    navigator_leaks = [
        f for f in findings if f["role"] == "navigator" and f["another_patient_in_answer"]
    ]
    return {
        "requests": len(findings),
        "routes": len({f["route"] for f in findings}),
        "api_routes": len({f["route"] for f in findings if f["route"].startswith("/api/")}),
        "page_routes": len({f["route"] for f in findings if not f["route"].startswith("/api/")}),
        "horizontal_reads_by_a_navigator": len(navigator_leaks),
        "navigator_leaks": navigator_leaks,
        "navigator_own_records_read": sum(
            1
            for f in findings
            if f["role"] == "navigator" and f["record"] == "own" and f["status"] == 200
        ),
        "managers_and_admins_read_others": sum(
            1
            for f in findings
            if f["role"] != "navigator" and f["record"] == "other" and f["status"] == 200
        ),
        "server_errors": sum(1 for f in findings if f["status"] >= 500),
        "statuses": _count(f["status"] for f in findings),
    }


def _count(values: Iterator[int] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))


# --- in process -------------------------------------------------------------------------


def run_in_process() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/navigator.sqlite3"
        migrate.upgrade(url)
        settings = Settings(
            _env_file=None,
            database_url=url,
            data_dir=Path(directory),
            secret_key="r" * 40,
            sms_provider="fake",
            login_failure_delay_ms=0,
        )
        database = Database(settings)
        clock = FixedClock(TEST_NOW)
        with database.unit_of_work() as session:
            users = {role: create_user(session, role=role) for role in Role}
            colleague = create_user(session, role=Role.NAVIGATOR)
            ids: dict[str, dict[str, int]] = {}
            other_markers: list[str] = []
            for label, holder in (("own", users[Role.NAVIGATOR]), ("other", colleague)):
                patient = create_patient(session)
                appointment = create_appointment(
                    session, patient=patient, start_at=CALENDAR.at(TODAY + timedelta(days=7))
                )
                call = Call(
                    patient_id=patient.id,
                    queue_date=TODAY,
                    priority=1.0,
                    status=CallStatus.IN_PROGRESS,
                    taken_by=holder.id,
                    taken_at=TEST_NOW,
                    lease_expires_at=TEST_NOW + timedelta(minutes=20),
                )
                session.add(call)
                session.flush()
                ids[label] = {
                    "patient_id": patient.id,
                    "appointment_id": appointment.id,
                    "call_id": call.id,
                }
                if label == "other":
                    other_markers = markers(patient.id, patient.pas_patient_id)
            usernames = {role: user.username for role, user in users.items()}
        app = create_app(settings, database, clock=clock)
        with ExitStack() as stack:
            clients: dict[Role, Get] = {}
            for role in Role:
                client = stack.enter_context(TestClient(app))
                sign_in(client, usernames[role])
                clients[role] = client.get
            report = probe(clients, get_routes(), Records(ids, other_markers))
        database.dispose()
    return {"mode": "in-process", **report}


# --- a running server ---------------------------------------------------------------------


def _patient_get(client: httpx.Client) -> Get:
    def get(path: str) -> httpx.Response:
        for _ in range(MAX_RETRIES):
            response = client.get(path, follow_redirects=False)
            if response.status_code != 429:
                return response
            time.sleep(float(response.headers.get("retry-after", "1")) + 0.5)
        return response

    return get


@contextmanager
def signed_in(base_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS) as client:
        response = client.post(
            "/api/auth/session", json={"username": username, "password": password}
        )
        response.raise_for_status()
        # The cookie is Secure when the public URL is https: hold it for plain http too.
        token = response.cookies.get(SESSION_COOKIE)
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, token or "")
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def _worked_by(call: dict[str, Any], attempts: list[dict[str, Any]], user_id: int) -> bool:
    return (
        call["taken_by"] == user_id
        or call["completed_by"] == user_id
        or any(attempt["attempted_by"] == user_id for attempt in attempts)
    )


def live_records(
    navigator: httpx.Client, manager_client: httpx.Client, max_call_id: int
) -> Records:
    manager = _patient_get(manager_client)
    navigator_id = navigator.get("/api/auth/me").json()["user"]["id"]
    taken = navigator.post("/api/calls/next")
    taken.raise_for_status()
    held = taken.json()
    if held is None:
        raise SystemExit("today's queue is empty: build one (navigator queue build) and retry")
    own_call = held["id"]
    own_detail = navigator.get(f"/api/calls/{own_call}").json()
    own = {
        "patient_id": held["patient_id"],
        "appointment_id": own_detail["appointments"][0]["id"],
        "call_id": own_call,
    }
    for call_id in range(1, max_call_id + 1):
        detail = manager(f"/api/calls/{call_id}")
        if detail.status_code != 200:
            continue
        body = detail.json()
        patient_id = body["call"]["patient_id"]
        if patient_id == own["patient_id"] or _worked_by(
            body["call"], body["attempts"], navigator_id
        ):
            continue
        calls = manager(f"/api/calls/patients/{patient_id}").json()
        histories = [manager(f"/api/calls/{c['id']}/history").json() for c in calls]
        if any(_worked_by(h["call"], h["attempts"], navigator_id) for h in histories):
            continue
        items = manager(f"/api/appointments?patient_id={patient_id}").json()["items"]
        if not items:
            continue
        patient = manager(f"/api/patients/{patient_id}").json()
        other = {"patient_id": patient_id, "appointment_id": items[0]["id"], "call_id": call_id}
        return Records({"own": own, "other": other}, markers(patient_id, patient["pas_patient_id"]))
    raise SystemExit("no call outside the navigator's scope was found")


def run_live(base_url: str, prefix: str, password: str, max_call_id: int) -> dict[str, Any]:
    if not re.match(r"https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", base_url):
        raise SystemExit("--base-url must be a loopback address (a test instance)")
    names = {role: f"{prefix}{role.value}" for role in Role}
    with ExitStack() as stack:
        sessions = {
            role: stack.enter_context(signed_in(base_url, names[role], password)) for role in Role
        }
        records = live_records(sessions[Role.NAVIGATOR], sessions[Role.MANAGER], max_call_id)
        clients = {role: _patient_get(client) for role, client in sessions.items()}
        report = probe(clients, get_routes(), records)
    return {"mode": "live", "base_url": base_url, "records": records.ids, **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running test server on loopback")
    parser.add_argument("--username-prefix", default="demo.")
    parser.add_argument("--password", default="demo only, not for live use")
    parser.add_argument("--max-call-id", type=int, default=2000)
    args = parser.parse_args()
    if args.base_url:
        report = run_live(
            args.base_url.rstrip("/"), args.username_prefix, args.password, args.max_call_id
        )
    else:
        report = run_in_process()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
