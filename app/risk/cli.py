"""`navigator train`, `navigator score` and `navigator model list|activate|review`."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from app.clock import current_clock
from app.console import JsonFlag, emit, handles_domain_errors, progress_bar
from app.db.session import Database
from app.isodate import parse_iso_date
from app.risk import repository, service
from app.risk.review import retrain_and_decide
from app.settings import Settings, get_settings

model_app = typer.Typer(
    help="DNA-risk models: list them, activate one, review the active one.", no_args_is_help=True
)


def _local_midnight(day: date, settings: Settings) -> datetime:
    return settings.calendar.day_start(day)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except ValueError:
        message = f"{value!r} is not a date like 2026-11-24"
        raise typer.BadParameter(message, param_hint=option) from None


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def train(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Use outcomes known before this date.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the model files.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, evaluate and register a DNA-risk model; it becomes the active model."""
    settings = get_settings()
    now = current_clock().now()
    day = _parse_day(as_of, "--as-of")
    moment = _local_midnight(day, settings) if day else None
    database = Database(settings)
    try:
        with progress_bar("Training") as progress, database.unit_of_work() as session:
            result = service.train_model(
                session, settings, now=now, as_of=moment, out_dir=out, progress=progress
            )
    finally:
        database.dispose()
    card = result.card
    metrics = card["metrics"]
    lines = [
        f"Trained {card['version']} on {card['rows']['eligible']} appointments "
        f"({card['rows']['dnas']} DNAs) in {result.seconds:.1f}s; it is now active.",
        f"Test period from {card['data_window']['test_from'][:10]} "
        f"({card['rows']['test']} appointments):",
        f"  {'model':<22} AUROC  AP     Brier   slope",
    ]
    for name, values in [("this model", metrics), *card["baselines"].items()]:
        lines.append(
            f"  {name.replace('_', ' '):<22} {_fmt(values['auroc'])}  "
            f"{_fmt(values['average_precision'])}  {_fmt(values['brier'], 4)}  "
            f"{_fmt(values['calibration_slope'], 2)}"
        )
    flagged = [name for name, table in card["fairness"].items() if table["gap_flagged"]]
    lines.append("Fairness gaps above the limit: " + (", ".join(flagged) if flagged else "none"))
    lines.append(f"Model card: {result.directory / 'card.md'}")
    emit(
        {"version": card["version"], "directory": str(result.directory), "card": card},
        "\n".join(lines),
        as_json=as_json,
    )


def score(
    start: Annotated[str | None, typer.Option("--from", help="First day (default today).")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Day after the last (default 14 days on).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write appointment_id,risk as CSV.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score appointments starting in [from, to) with the active model."""
    settings = get_settings()
    first_day = _parse_day(start, "--from")
    after_day = _parse_day(end, "--to")
    now = current_clock().now()
    period_start = _local_midnight(first_day, settings) if first_day else None
    period_end = _local_midnight(after_day, settings) if after_day else None
    if period_start is None and period_end is not None:
        period_start = _local_midnight(settings.calendar.today(now), settings)
    database = Database(settings)
    try:
        with progress_bar("Scoring") as progress, database.unit_of_work() as session:
            progress.update(total=5)
            result = service.score_appointments(
                session,
                settings,
                start=period_start,
                end=period_end,
                now=now,
                on_stage=lambda _stage: progress.advance(),
            )
            empty_note = (
                None
                if result.scored
                else _empty_period_note(
                    result.period, repository.appointment_extent(session), settings
                )
            )
            if out is not None:
                ids = repository.pas_ids(session, [row.appointment_id for row in result.scored])
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["appointment_id", "risk"])
                    for row in result.scored:
                        writer.writerow([ids[row.appointment_id], f"{row.risk:.6f}"])
    finally:
        database.dispose()
    bands = result.band_counts()
    human = (
        f"Scored {len(result.scored)} appointments with {result.model_version}: "
        f"{bands['high']} high, {bands['medium']} medium, {bands['low']} low risk."
    )
    if empty_note is not None:
        human += "\n" + empty_note
    if out is not None:
        human += f"\nWrote {out}."
    emit(
        {
            "model_version": result.model_version,
            "scored": len(result.scored),
            "bands": bands,
            "out": str(out) if out else None,
            "note": empty_note,
        },
        human,
        as_json=as_json,
    )


def _empty_period_note(
    period: tuple[datetime, datetime], extent: tuple[datetime, datetime] | None, settings: Settings
) -> str:
    """Why nothing was scored: no appointments at all, or the period lies outside the data."""
    first_day = settings.calendar.today(period[0])
    last_day = settings.calendar.today(period[1] - timedelta(seconds=1))
    if extent is None:
        return "There are no appointments yet: import an extract first (navigator import)."
    earliest = settings.calendar.today(extent[0])
    latest = settings.calendar.today(extent[1])
    if period[1] <= extent[0]:
        where = f"before the first appointment in the data ({earliest})"
    elif period[0] > extent[1]:
        where = f"after the last appointment in the data ({latest}); import a newer extract"
    else:
        where = f"within the data ({earliest} to {latest}) but on days with no appointments"
    return f"No appointments start from {first_day} to {last_day}: that period is {where}."


@model_app.command("list")
@handles_domain_errors
def model_list(as_json: JsonFlag = False) -> None:
    """List trained models, newest first; the active one is marked."""
    settings = get_settings()
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            models = [
                {
                    "version": m.version,
                    "trained_at": m.trained_at,
                    "active": m.active,
                    "auroc": (m.card.get("metrics") or {}).get("auroc"),
                    "artefact_sha256": m.artefact_sha256,
                }
                for m in service.list_models(session)
            ]
    finally:
        database.dispose()
    lines = [
        f"{'*' if m['active'] else ' '} {m['version']}  trained {m['trained_at']:%Y-%m-%d %H:%M}"
        f"  AUROC {_fmt(m['auroc'])}"
        for m in models
    ] or ["No models yet: run `navigator train`."]
    emit({"models": models}, "\n".join(lines), as_json=as_json)


@model_app.command("activate")
@handles_domain_errors
def model_activate(
    version: Annotated[str, typer.Argument(help="The model version to activate.")],
    as_json: JsonFlag = False,
) -> None:
    """Make an existing model version the active one (its file is checked first)."""
    settings = get_settings()
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            model = service.activate_model(session, version, now=current_clock().now())
            result = {"version": model.version, "active": True}
    finally:
        database.dispose()
    emit(result, f"Risk model {version} is now active.", as_json=as_json)


@model_app.command("review")
@handles_domain_errors
def model_review(as_json: JsonFlag = False) -> None:
    """Run the monthly review now: drift, a challenger, and a recorded decision."""
    settings = get_settings()
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            decision = retrain_and_decide(session, settings, now=current_clock().now())
            alerts = [str(alert["message"]) for alert in decision.drift.get("alerts") or []]
            summary = decision.drift.get("summary")
            result: dict[str, Any] = {
                "outcome": decision.outcome,
                "champion_version": decision.champion_version,
                "challenger_version": decision.challenger_version,
                "active_version": decision.active_version,
                "reason": decision.reason,
                "comparison": decision.comparison,
                "drift_summary": summary,
                "drift_alerts": alerts,
            }
    finally:
        database.dispose()
    lines = [str(result["reason"]), *([str(summary)] if summary else []), *alerts]
    emit(result, "\n".join(lines), as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add the risk commands to the root CLI."""
    app.command("train")(handles_domain_errors(train))
    app.command("score")(handles_domain_errors(score))
    app.add_typer(model_app, name="model")
