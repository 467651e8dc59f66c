"""`navigator queue build`: the daily call queue (the service runs it every morning)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from app.calls import documents
from app.calls.queue import BuildResult, build_queue
from app.clock import SYSTEM_CLOCK, Clock, current_clock
from app.console import JsonFlag, emit, handles_domain_errors
from app.db.session import Database
from app.isodate import parse_iso_date
from app.settings import Settings, get_settings


def build_for_day(
    database: Database, settings: Settings, day: date, *, clock: Clock = SYSTEM_CLOCK
) -> BuildResult:
    """Build one day's queue in its own unit of work (the CLI, the demo, a morning job)."""
    with database.unit_of_work() as session:
        documents.ensure_default_documents(session)
        return build_queue(session, settings, day, now=clock.now())


queue_app = typer.Typer(help="Navigator call queues.", no_args_is_help=True)


@queue_app.command("build")
@handles_domain_errors
def build(
    queue_date: Annotated[
        str | None,
        typer.Option("--date", help="Queue date (YYYY-MM-DD, local); default today."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build that day's navigator call queue (safe to run again: it only adds)."""
    settings = get_settings()
    clock = current_clock()
    if queue_date is None:
        day = settings.calendar.today(clock.now())
    else:
        try:
            day = parse_iso_date(queue_date)
        except ValueError:
            raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    database = Database(settings)
    try:
        result = build_for_day(database, settings, day, clock=clock)
    finally:
        database.dispose()
    human = (
        f"Queue for {result.queue_date}: {result.calls_in_queue} calls "
        f"(capacity {result.capacity}); {result.calls_created} new calls, "
        f"{result.newly_eligible} newly eligible appointments "
        f"({result.assigned_call} call arm, {result.assigned_holdout} held out), "
        f"{result.appointments_added_to_existing_calls} added to existing calls, "
        f"{result.patients_waiting_beyond_capacity} patients waiting beyond capacity, "
        f"{result.letters_instead_of_calls} without a phone given a letter task instead."
    )
    emit(result.as_dict(), human, as_json=as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")
