"""Benchmark: synthesise a trust, then import it into throwaway SQLite and PostgreSQL databases.

Prints one JSON object: synth seconds, and per backend the import seconds (patients,
appointments, total) and the peak resident memory of the importing process, which runs in a
subprocess so its `ru_maxrss` is the import's alone. Targets (README): PostgreSQL < 60 s,
SQLite < 120 s, peak < 500 MB, synth of 200,000 patients < 60 s.

    .venv/bin/python scripts/bench_import.py                  # 1,000,000 appointments
    .venv/bin/python scripts/bench_import.py --appointments 50000 --backends sqlite
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.databases import temporary_database  # noqa: E402

APPOINTMENTS_PER_PATIENT = 5.0  # what the synthetic trust gives over 52 + 3 weeks
# The import runs "on" the synthetic trust's today, so results never depend on the real date.
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def child_import(database_url: str, folder: Path) -> dict[str, Any]:
    """Runs in the subprocess: migrate, import both files, report times and peak RSS."""
    from app.db import migrate
    from app.db.session import Database
    from app.imports.service import import_appointments, import_patients
    from app.settings import Settings

    migrate.upgrade(database_url)
    database = Database(Settings(_env_file=None, database_url=database_url))
    started = time.perf_counter()
    patients = import_patients(database, folder / "patients.csv", now=NOW)
    middle = time.perf_counter()
    appointments = import_appointments(database, folder / "appointments.csv", now=NOW)
    finished = time.perf_counter()
    database.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "patients": patients.inserted,
        "appointments": appointments.inserted,
        "rejected": patients.rejected + appointments.rejected,
        "patients_seconds": round(middle - started, 1),
        "appointments_seconds": round(finished - middle, 1),
        "seconds": round(finished - started, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM rather than ru_maxrss: on Linux ru_maxrss
    survives fork and exec, so a child would report its (large) parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def truncate_appointments(path: Path, limit: int) -> int:
    """Keep the header and the first `limit` appointments (whole lines)."""
    kept = path.with_suffix(".tmp")
    count = 0
    with path.open("rb") as source, kept.open("wb") as target:
        target.write(source.readline())
        for line in source:
            if count == limit:
                break
            target.write(line)
            count += 1
    kept.replace(path)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--child", nargs=2, metavar=("URL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_import(args.child[0], Path(args.child[1]))))
        return

    from app.synth.service import write_trust

    results: dict[str, Any] = {"appointments_requested": args.appointments}
    with tempfile.TemporaryDirectory(prefix="navigator-bench-") as tmp:
        workdir = Path(tmp)
        patients = max(100, round(args.appointments / APPOINTMENTS_PER_PATIENT))
        started = time.perf_counter()
        summary = write_trust(workdir, patients=patients, weeks_history=52, weeks_ahead=3,
                              catchment="leicester", seed=1, today=date(2026, 11, 25))  # fmt: skip
        results["synth"] = {
            "patients": patients,
            "appointments": summary.appointments,
            "seconds": round(time.perf_counter() - started, 1),
            "dna_rate": summary.dna_rate,
        }
        appointments = truncate_appointments(workdir / "appointments.csv", args.appointments)
        results["appointments_imported"] = appointments
        for backend in [name.strip() for name in args.backends.split(",") if name.strip()]:
            with temporary_database(
                "sqlite://" if backend == "sqlite" else args.postgres_url, workdir
            ) as url:
                completed = subprocess.run(
                    [sys.executable, __file__, "--child", url, str(workdir)],
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd=ROOT,
                )
            if completed.returncode != 0:
                results[backend] = {"error": completed.stderr.strip().splitlines()[-1:]}
            else:
                results[backend] = json.loads(completed.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
