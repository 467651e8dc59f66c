"""Benchmark the DNA-risk model on the synthetic trust and print one JSON object.

Writes the synthetic trust with `app.synth.service.write_trust` (200,000 patients, 52 weeks of
history and 3 ahead: about 1,000,000 appointments; its DNAs have the documented interactions of
`app.synth.dna_model`), imports it with `app.imports.service` into a throwaway database
(PostgreSQL by default), then measures: AUROC/AP of the model against the baselines on the
temporal test period with paired bootstrap intervals of the differences, on all test
appointments and on the callable population (booked at least the call horizon ahead), and the
calibration slope; training time including the selection of settings; scoring time of the next
14 days and of a six-week backtest (about 100,000 appointments) end to end (features from the
database, predict, reasons, store); and feature building against predict_proba.

    .venv/bin/python scripts/bench_risk.py            # full run (several minutes)
    .venv/bin/python scripts/bench_risk.py --quick    # 5,000 patients
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.console import ProgressReporter
from app.db import migrate
from app.db.session import Database
from app.imports.service import import_appointments, import_patients
from app.risk import repository, service
from app.risk.features import build_features
from app.settings import Settings
from app.synth.service import write_trust
from tests.databases import temporary_database

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class StageTimer(ProgressReporter):
    """A progress reporter that records each training stage's wall-clock and CPU seconds (the
    CPU figure shows the work itself when other processes share the cores)."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.stages: dict[str, dict[str, float]] = {}
        self._current: str | None = None
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        if description is not None:
            self._close()
            self._current = description

    def _close(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        if self._current is not None:
            self.stages[self._current] = {
                "wall": round(wall - self._wall, 1),
                "cpu": round(cpu - self._cpu, 1),
            }
        self._wall, self._cpu = wall, cpu

    def finish(self) -> dict[str, dict[str, float]]:
        self._close()
        self._current = None
        return self.stages


def _best_of(repeats: int, work: Any) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def run(server_url: str, *, patients: int, weeks_history: int, seed: int) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    report: dict[str, Any] = {
        "backend": server_url.split(":", 1)[0],
        "patients": patients,
        "weeks_history": weeks_history,
    }
    with (
        tempfile.TemporaryDirectory() as workdir,
        temporary_database(server_url, Path(workdir)) as url,
    ):
        migrate.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, models_dir=Path(workdir) / "models")
        database = Database(settings)
        try:
            started = time.perf_counter()
            folder = Path(workdir) / "trust"
            summary = write_trust(
                folder,
                patients=patients,
                weeks_history=weeks_history,
                weeks_ahead=3,
                seed=seed,
                today=now.date(),
            )
            report["appointments"] = summary.appointments
            report["synth_dna_rate"] = summary.dna_rate
            report["synth_seconds"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            import_patients(database, folder / "patients.csv", now=now)
            import_appointments(database, folder / "appointments.csv", now=now)
            report["import_seconds"] = round(time.perf_counter() - started, 1)

            started, cpu_started = time.perf_counter(), time.process_time()
            timer = StageTimer()
            with database.unit_of_work() as session:
                result = service.train_model(session, settings, now=now, as_of=now, progress=timer)
            report["train_seconds"] = round(time.perf_counter() - started, 1)
            report["train_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
            report["train_stage_seconds"] = timer.finish()
            card = result.card
            report["training_rows"] = card["rows"]
            report["model"] = _headline(card["metrics"])
            report["baselines"] = {
                name: _headline(values) for name, values in card["baselines"].items()
            }
            report["model_beats_both_baselines"] = all(
                card["metrics"]["auroc"] > values["auroc"]
                and card["metrics"]["average_precision"] > values["average_precision"]
                for values in card["baselines"].values()
            )
            report["model_minus_baseline"] = _differences(card["comparison_with_baselines"])
            report["model_minus_baseline_callable"] = _differences(
                card["comparison_with_baselines_callable"]
            )
            report["callable"] = {
                "model": _headline(card["metrics"]["callable"]),
                **{
                    name: _headline(values["callable"])
                    for name, values in card["baselines"].items()
                },
            }
            report["selection"] = {
                "chosen": card["selection"]["chosen"],
                "mean_auroc": {
                    name: round(row["mean_auroc"], 4)
                    for name, row in card["selection"]["grid"].items()
                    if row["mean_auroc"] is not None
                },
            }
            report["active_scorer"] = card["active_scorer"]
            report["fairness_auroc_gaps"] = {
                name: round(table["auroc_gap"], 3) for name, table in card["fairness"].items()
            }

            started = time.perf_counter()
            with database.unit_of_work() as session:
                scored = service.score_appointments(session, settings, now=now)
            report["score_seconds_end_to_end"] = round(time.perf_counter() - started, 2)
            report["scored"] = len(scored.scored)
            report["score_stage_seconds"] = {k: round(v, 2) for k, v in scored.timings.items()}
            report["bands"] = scored.band_counts()
            # A backtest of the last six weeks: about 100,000 past appointments scored as they
            # would have been before each started (stored scores are left alone).
            started = time.perf_counter()
            with database.unit_of_work() as session:
                backtest = service.score_appointments(
                    session, settings, start=now - timedelta(weeks=6), end=now, now=now,
                    store=False,
                )  # fmt: skip
            report["backtest_scored"] = len(backtest.scored)
            report["backtest_seconds_end_to_end"] = round(time.perf_counter() - started, 2)
            report["backtest_stage_seconds"] = {k: round(v, 2) for k, v in backtest.timings.items()}
            report.update(_feature_cost(database, settings, now))
        finally:
            database.dispose()
    above_lr = {
        population: report[key].get("logistic_regression", {})
        for population, key in (
            ("all", "model_minus_baseline"),
            ("callable", "model_minus_baseline_callable"),
        )
    }
    report["targets"] = {
        "model_above_both_baselines": report["model_beats_both_baselines"],
        **{
            f"{metric}_above_logistic_regression_ci_above_0_{population}": bool(
                diff and diff[f"{metric}_ci"][0] > 0
            )
            for population, diff in above_lr.items()
            for metric in ("auroc", "average_precision")
        },
        "calibration_slope_0.9_to_1.1": 0.9 <= report["model"]["calibration_slope"] <= 1.1,
        "train_under_180s": report["train_seconds"] < 180,
        "score_under_30s": report["score_seconds_end_to_end"] < 30,
        "features_at_most_3x_predict": report["feature_to_predict_ratio"] <= 3,
        "reasons_under_predict": report["score_stage_seconds"].get("reasons", 0)
        < report["score_stage_seconds"].get("predict", 0),
        "backtest_100k_under_30s": report["backtest_seconds_end_to_end"] < 30,
    }
    return report


def _differences(table: dict[str, Any]) -> dict[str, Any]:
    """Model minus each baseline, with the paired 95% bootstrap intervals, rounded."""
    return {
        name: {
            "auroc": round(diff["auroc_difference"], 4),
            "auroc_ci": [round(v, 4) for v in diff["auroc_difference_ci"]],
            "average_precision": round(diff["average_precision_difference"], 4),
            "average_precision_ci": [round(v, 4) for v in diff["average_precision_difference_ci"]],
        }
        for name, diff in table.items()
    }


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        key: None if metrics[key] is None else round(metrics[key], 4)
        for key in ("auroc", "average_precision", "brier", "calibration_slope")
    }


def _feature_cost(database: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    """Feature building (from fetched columns) against predict_proba on the same rows."""
    end = now.timestamp() + 14 * 86_400
    with database.unit_of_work() as session:
        model = service.get_active_model(session)
        artefact = service.load_model_artefact(model)
        started = time.perf_counter()
        history = repository.load_history(
            session,
            repository.patients_with_appointments_between(now, datetime.fromtimestamp(end, UTC)),
        )
        fetch = time.perf_counter() - started
    rows = np.flatnonzero((history.start_s >= now.timestamp()) & (history.start_s < end))
    # Upcoming appointments are scored as known now.
    moments = np.full(len(rows), int(now.timestamp()), dtype=np.int64)
    features: list[Any] = []

    def build() -> None:
        features[:] = [
            build_features(
                history,
                rows,
                moments,
                artefact.vocabulary,
                timezone=settings.timezone,
                include_ethnicity=artefact.include_ethnicity,
            )
        ]

    feature_seconds = _best_of(3, build)
    predict_seconds = _best_of(3, lambda: artefact.predict_proba(features[0]))
    return {
        "feature_rows": len(rows),
        "history_rows": len(history),
        "fetch_seconds": round(fetch, 2),
        "feature_seconds": round(feature_seconds, 3),
        "predict_proba_seconds": round(predict_seconds, 3),
        "feature_to_predict_ratio": round(feature_seconds / predict_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    parser.add_argument("--database", default=POSTGRES, help="server URL (or sqlite://)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--patients", type=int, default=200_000)
    parser.add_argument("--weeks-history", type=int, default=52)
    args = parser.parse_args()
    patients = 5_000 if args.quick else args.patients
    report = run(args.database, patients=patients, weeks_history=args.weeks_history, seed=args.seed)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
