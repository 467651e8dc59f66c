"""`navigator synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.clock import current_clock
from app.console import JsonFlag, emit, handles_domain_errors
from app.isodate import parse_iso_date
from app.settings import get_settings
from app.synth.service import CATCHMENTS, write_trust


def register(app: typer.Typer) -> None:
    """Add the synth command to the root CLI."""

    @app.command("synth")
    @handles_domain_errors
    def synth(
        out: Annotated[Path, typer.Option("--out", help="Folder for the CSV files.")],
        patients: Annotated[int, typer.Option(help="Synthetic patients.")] = 5_000,
        weeks_history: Annotated[int, typer.Option(help="Weeks of past appointments.")] = 52,
        weeks_ahead: Annotated[int, typer.Option(help="Weeks of future appointments.")] = 3,
        catchment: Annotated[
            str, typer.Option(help=f"Catchment: {', '.join(CATCHMENTS)}.")
        ] = "leicester",
        seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
        today: Annotated[
            str | None, typer.Option(help="The trust's today (YYYY-MM-DD); default today.")
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Write a synthetic trust as PAS CSV files (patients.csv, appointments.csv)."""
        if today is None:
            today_date = get_settings().calendar.today(current_clock().now())
        else:
            try:
                today_date = parse_iso_date(today)
            except ValueError:
                raise typer.BadParameter(f"'{today}' is not a date (YYYY-MM-DD)") from None
        summary = write_trust(
            out,
            patients=patients,
            weeks_history=weeks_history,
            weeks_ahead=weeks_ahead,
            catchment=catchment,
            seed=seed,
            today=today_date,
        )
        emit(summary.as_dict(), summary.human(), as_json=as_json)
