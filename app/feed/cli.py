"""`navigator feed hl7`: the third process type, beside `serve` and `worker`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.clock import current_clock
from app.db.session import Database
from app.feed.listener import run_listener
from app.logging_setup import configure_logging
from app.settings import get_settings

feed_app = typer.Typer(help="Live feeds from the PAS.", no_args_is_help=True)


@feed_app.command("hl7")
def hl7(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default NAVIGATOR_FEED_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default NAVIGATOR_FEED_PORT, 2575).")
    ] = None,
) -> None:
    """Listen for HL7 v2 SIU and ADT messages over MLLP; ACK each once it is committed."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.env == "production")
    database = Database(settings)
    try:
        run_listener(
            database,
            current_clock(),
            host or settings.feed_host,
            settings.feed_port if port is None else port,
        )
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(feed_app, name="feed")
