"""What the per-request audit row costs a list endpoint (JSON).

    .venv/bin/python scripts/measure_audit_cost.py [--requests 300] [--database-url URL]

In process, on a throwaway migrated database (SQLite by default; a PostgreSQL server URL
gets a temporary database): 500 synthetic patients with an appointment each, a manager signed
in, then `GET /api/appointments?limit=50` and `GET /api/patients?limit=50` timed `--requests`
times with the audit row written (as served) and again with it switched off in this process
only, alternating the two so drift on a shared machine hits both. Prints p50/p95 of each and
the p95 difference in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

import app.appointments.router as appointments_router  # noqa: E402
import app.patients.router as patients_router  # noqa: E402
from app.auth.reads import record_patient_read  # noqa: E402
from app.auth.roles import Role  # noqa: E402
from app.clock import FixedClock  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.auth.helpers import create_user, sign_in  # noqa: E402
from tests.clock import TEST_NOW  # noqa: E402
from tests.databases import temporary_database  # noqa: E402
from tests.factories import create_appointment, create_clinic  # noqa: E402

ROUTES = ("/api/appointments?limit=50", "/api/patients?limit=50")


def _no_audit(*_args: Any, **_kwargs: Any) -> None:
    return None


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="sqlite://")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        temporary_database(args.database_url, Path(directory)) as url,
    ):
        migrate.upgrade(url)
        settings = Settings(
            _env_file=None,
            database_url=url,
            data_dir=Path(directory),
            secret_key="a" * 40,
            sms_provider="fake",
            read_limit_requests_per_minute=1_000_000,
            read_limit_patients_per_minute=100_000_000,
        )
        database = Database(settings)
        with database.unit_of_work() as session:
            clinic = create_clinic(session)
            for _ in range(500):
                create_appointment(session, clinic=clinic)
            manager = create_user(session, role=Role.MANAGER)
            username = manager.username
        app = create_app(settings, database, clock=FixedClock(TEST_NOW))
        timings: dict[str, dict[str, list[float]]] = {
            route: {"audited": [], "unaudited": []} for route in ROUTES
        }
        with TestClient(app) as client:
            sign_in(client, username)
            for _ in range(args.requests):
                for mode in ("audited", "unaudited"):
                    audit = record_patient_read if mode == "audited" else _no_audit
                    patients_router.record_patient_read = audit  # type: ignore[assignment,unused-ignore]
                    appointments_router.record_patient_read = audit  # type: ignore[assignment,unused-ignore]
                    for route in ROUTES:
                        started = time.perf_counter()
                        if client.get(route).status_code != 200:
                            raise SystemExit(f"{route} did not answer 200")
                        timings[route][mode].append(time.perf_counter() - started)
        database.dispose()
    report: dict[str, Any] = {"backend": url.split(":", 1)[0], "requests": args.requests}
    for route, modes in timings.items():
        audited, unaudited = _percentiles(modes["audited"]), _percentiles(modes["unaudited"])
        report[route] = {
            "audited": audited,
            "unaudited": unaudited,
            "p95_difference_ms": round(audited["p95_ms"] - unaudited["p95_ms"], 2),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
