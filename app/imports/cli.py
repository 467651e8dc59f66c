"""`navigator import patients|appointments FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.clock import current_clock
from app.console import JsonFlag, emit, fail, handles_domain_errors, progress_bar
from app.db.session import Database
from app.errors import InvalidInputError
from app.imports import service
from app.settings import get_settings

FileArgument = Annotated[Path, typer.Argument(help="The PAS extract (CSV, UTF-8, header row).")]
SkipInvalid = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Load the valid rows and write the rejected ones to <stem>.rejects.csv.",
    ),
]
HUMAN_PROBLEM_LIMIT = 50

import_app = typer.Typer(
    help="Load PAS extracts (see CONTRACT.md for the formats).", no_args_is_help=True
)


def _run(kind: str, file: Path, skip_invalid: bool, as_json: bool) -> None:
    importer = service.import_patients if kind == "patients" else service.import_appointments
    database = Database(get_settings())
    try:
        with progress_bar(f"Importing {kind}") as progress:
            report = importer(
                database,
                file,
                skip_invalid=skip_invalid,
                progress=progress,
                now=current_clock().now(),
            )
    except service.ImportRejectedError as error:
        if as_json:
            emit({"error": error.message, **error.report.as_dict()}, "", as_json=True)
            raise fail(error.message) from None
        raise
    except InvalidInputError as error:
        if as_json:
            emit({"error": error.message, "problems": error.details}, "", as_json=True)
            raise fail(error.message) from None
        raise
    finally:
        database.dispose()
    human = report.human()
    if report.problems:
        listed = [
            f"  row {p['row']}"
            + (f", column {p['column']}" if "column" in p else "")
            + f": {p['message']}"
            for p in report.problems[:HUMAN_PROBLEM_LIMIT]
        ]
        if len(report.problems) > HUMAN_PROBLEM_LIMIT:
            listed.append(f"  ... and {len(report.problems) - HUMAN_PROBLEM_LIMIT:,} more")
        human += "\nProblems:\n" + "\n".join(listed)
    emit(report.as_dict(), human, as_json=as_json)


@import_app.command("patients")
@handles_domain_errors
def import_patients(
    file: FileArgument, skip_invalid: SkipInvalid = False, as_json: JsonFlag = False
) -> None:
    """Load a patients.csv extract."""
    _run("patients", file, skip_invalid, as_json)


@import_app.command("appointments")
@handles_domain_errors
def import_appointments(
    file: FileArgument, skip_invalid: SkipInvalid = False, as_json: JsonFlag = False
) -> None:
    """Load an appointments.csv extract (its patients must be imported first)."""
    _run("appointments", file, skip_invalid, as_json)


def register(app: typer.Typer) -> None:
    """Add the import commands to the root CLI."""
    app.add_typer(import_app, name="import")
