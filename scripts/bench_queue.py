"""Benchmark: build a day's navigator call queue on a trust-sized PostgreSQL database.

Creates a throwaway database, migrates it, bulk-inserts synthetic rows with set-based SQL
(patients, clinics, 1,000,000 appointments of which 40,000 start in the call window, risk
scores for every future appointment), then times `build_queue` for today, a same-day rebuild
and a take-next. Then 50 navigators work that queue over loopback HTTP for a minute
(`scripts/load_calls.py`: uvicorn with two workers, each navigator pausing 1-3 s before each
click, confirming identity, and sending the call screen's lease heartbeat every ~3 s while a
call is open). Prints one JSON object; the database is dropped afterwards.

Targets: build < 10 s; take a call and record an outcome p95 < 150 ms and heartbeats p95
< 50 ms with 50 navigators, no call taken twice, no error.

    .venv/bin/python scripts/bench_queue.py [--server-url URL] [--appointments N] [--in-window N]
        [--navigators 50] [--load-seconds 60] [--think-seconds 2] [--heartbeat-seconds 3]
        [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_calls import create_navigators, run_navigators  # noqa: E402
from loadkit import serving  # noqa: E402

from app.calls.queue import build_queue, call_window  # noqa: E402
from app.calls.service import local_today, take_next_call  # noqa: E402
from app.db import migrate  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.databases import temporary_database  # noqa: E402

SEED_SQL = [
    # Patients: roughly a fifth Core20, a few with interpreter, communication needs or a
    # learning disability, some without a usable mobile or opted out of SMS.
    """
    INSERT INTO patients (pas_patient_id, birth_date, sex, ethnic_category, family_name,
        given_name, mobile_phone, landline_phone, imd_decile, core20, interpreter_needed,
        preferred_language, communication_needs, learning_disability, sms_opt_out,
        mobile_phone_invalid, landline_phone_invalid, source_hash, created_at, updated_at)
    SELECT 'BP' || g, DATE '1940-01-01' + (g % 25000), CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END,
        'A', 'Bench' || g, 'Pat',
        CASE WHEN g % 12 = 0 THEN NULL ELSE '+447700900' || lpad((g % 1000)::text, 3, '0') END,
        CASE WHEN g % 3 = 0 THEN '+441134960' || lpad((g % 1000)::text, 3, '0') END,
        (g % 10) + 1, (g % 10) < 2, g % 33 = 0, CASE WHEN g % 33 = 0 THEN 'pl' ELSE 'en' END,
        CASE WHEN g % 97 = 0 THEN 'bsl' ELSE '' END, g % 50 = 0, g % 29 = 0, false, false, '',
        now(), now()
    FROM generate_series(1, :patients) AS g
    """,
    """
    INSERT INTO clinics (code, site, specialty_code, sensitive)
    SELECT 'BC' || g, 'Site ' || (g % 3), (ARRAY['120','140','330','340','300'])[(g % 5) + 1],
        g % 25 = 0
    FROM generate_series(1, 50) AS g
    """,
    # Appointments outside the window: the past two years (with outcomes) and later weeks.
    """
    INSERT INTO appointments (pas_appointment_id, patient_id, clinic_id, booked_at, start_at,
        first_attendance, attendance_code, outcome_recorded_at, source_hash, created_at,
        updated_at)
    SELECT 'BA' || g, ((g * 7919) % :patients) + 1, (g % 50) + 1,
        s - interval '30 days', s, g % 3 = 0,
        CASE WHEN s < :now THEN (ARRAY['5','5','5','5','6','3','2','4'])[(g % 8) + 1] ELSE '0' END,
        CASE WHEN s < :now THEN s END, '', now(), now()
    FROM (
        SELECT g, CASE WHEN g % 10 = 0
            THEN :window_end + ((g % 60) * interval '1 day') + ((g % 9) * interval '1 hour')
            ELSE :now - ((g % 730) * interval '1 day') - ((g % 9) * interval '1 hour') END AS s
        FROM generate_series(1::bigint, :outside) AS g
    ) AS rows
    """,
    # Appointments in the window (booked, 08:00-17:00 local on the window day).
    """
    INSERT INTO appointments (pas_appointment_id, patient_id, clinic_id, booked_at, start_at,
        first_attendance, attendance_code, source_hash, created_at, updated_at)
    SELECT 'BW' || g, ((g * 104729) % :patients) + 1, (g % 50) + 1,
        :window_start - interval '40 days',
        :window_start + interval '8 hours' + ((g % 540) * interval '1 minute'),
        g % 3 = 0, '0', '', now(), now()
    FROM generate_series(1::bigint, :in_window) AS g
    """,
    # Scores for every future booked appointment: about 15% in the high band.
    """
    INSERT INTO risk_scores (appointment_id, model_version, risk, band, reasons, scored_at)
    SELECT id, 'bench-1', r,
        CASE WHEN r >= 0.3 THEN 'high' WHEN r >= 0.1 THEN 'medium' ELSE 'low' END,
        '["Missed an appointment before"]'::json, now()
    FROM (
        SELECT id, ((id * 2654435761) % 1000) / 1000.0 * 0.35 AS r
        FROM appointments WHERE start_at >= :now
    ) AS scored
    """,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--in-window", type=int, default=40_000)
    parser.add_argument("--patients", type=int, default=250_000)
    parser.add_argument(
        "--navigators", type=int, default=50, help="navigators in the load test (0: none)"
    )
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--think-seconds", type=float, default=2.0)
    parser.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=3.0,
        help="lease heartbeat interval while a call is open (0: none; the page uses 60)",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    args = parser.parse_args()
    with temporary_database(args.server_url, ROOT) as url:
        result = run(url, args)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    settings = Settings(
        _env_file=None,
        database_url=url,
        calls_navigators_on_duty=max(args.navigators, 1),
    )
    migrate.upgrade(url)
    # Today, so the served app (which reads the clock) offers the queue built here.
    now = datetime.now(UTC)
    queue_day = local_today(settings, now)
    window_start, window_end = call_window(settings, queue_day)
    params = {
        "patients": args.patients,
        "outside": args.appointments - args.in_window,
        "in_window": args.in_window,
        "now": now,
        "window_start": window_start,
        "window_end": window_end,
    }
    database = Database(settings)
    try:
        started = time.perf_counter()
        with database.engine.begin() as connection:
            for statement in SEED_SQL:
                connection.execute(text(statement), params)
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text("VACUUM ANALYZE"))
        seed_seconds = time.perf_counter() - started

        started = time.perf_counter()
        with database.unit_of_work() as session:
            first = build_queue(session, settings, queue_day, now=now)
        build_seconds = time.perf_counter() - started

        started = time.perf_counter()
        with database.unit_of_work() as session:
            again = build_queue(session, settings, queue_day, now=now)
        rebuild_seconds = time.perf_counter() - started

        started = time.perf_counter()
        with database.unit_of_work() as session:
            taken = take_next_call(session, settings, user_id=1, now=now)
        take_ms = (time.perf_counter() - started) * 1000

        with database.engine.connect() as connection:
            totals = connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM appointments), "
                    "(SELECT count(*) FROM appointments WHERE start_at >= :s AND start_at < :e), "
                    "(SELECT count(*) FROM risk_scores)"
                ),
                {"s": window_start, "e": window_end},
            ).one()
    finally:
        database.dispose()
    load: dict[str, Any] = {}
    if args.navigators:
        create_navigators(settings, args.navigators)
        with serving(url, args.workers) as (base, _pid):
            load = run_navigators(
                base,
                args.navigators,
                args.load_seconds,
                args.think_seconds,
                args.heartbeat_seconds,
            )
        load["server_workers"] = args.workers
        load["cpu_cores"] = os.cpu_count()
    return {
        "benchmark": "queue_build",
        "backend": "postgresql",
        "appointments_on_record": totals[0],
        "appointments_in_window": totals[1],
        "risk_scores": totals[2],
        "patients": args.patients,
        "seed_seconds": round(seed_seconds, 2),
        "build_seconds": round(build_seconds, 3),
        "rebuild_same_day_seconds": round(rebuild_seconds, 3),
        "take_next_ms": round(take_ms, 1),
        "took_a_call": taken is not None,
        "target_build_seconds": 10,
        "within_target": build_seconds < 10,
        "first_build": first.as_dict(),
        "rebuild": {
            "newly_eligible": again.newly_eligible,
            "calls_created": again.calls_created,
        },
        "navigator_load": load,
    }


if __name__ == "__main__":
    main()
