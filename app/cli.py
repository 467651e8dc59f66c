"""The `navigator` command line. Each feature registers its own commands in its `cli.py`."""

from __future__ import annotations

from typing import Annotated

import typer

from app import __version__, worker
from app.analytics import cli as analytics_cli
from app.auth import cli as auth_cli
from app.calls import cli as calls_cli
from app.clock import current_clock
from app.console import JsonFlag, emit, handles_domain_errors
from app.db import migrate
from app.feed import cli as feed_cli
from app.imports import cli as imports_cli
from app.risk import cli as risk_cli
from app.settings import get_settings
from app.sms import cli as sms_cli
from app.synth import cli as synth_cli
from app.targeting import cli as targeting_cli

app = typer.Typer(
    name="navigator",
    help="Navigator: patient navigator call management for NHS outpatient clinics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit


@db_app.command("upgrade")
@handles_domain_errors
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Apply all migrations to NAVIGATOR_DATABASE_URL."""
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    head = migrate.head_revision()
    emit({"revision": head}, f"Database migrated to revision {head}.", as_json=as_json)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the web service."""
    from app.web import run_server

    run_server(host=host, port=port, workers=workers)


@app.command("demo")
@handles_domain_errors
def demo(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Prepare the demo data but do not serve.")
    ] = False,
    patients: Annotated[int, typer.Option(help="Synthetic patients.")] = 5000,
    as_json: JsonFlag = False,
) -> None:
    """Migrate, synthesise a trust, import, train, score, queue, remind, then serve."""
    from app.demo import prepare_demo

    summary = prepare_demo(
        get_settings(), patients=patients, show_progress=not as_json, clock=current_clock()
    )
    emit(summary.as_dict(), summary.human(), as_json=as_json)
    if not no_serve:
        from app.web import run_server

        run_server(host=host, port=port, workers=1)


auth_cli.register(app)
imports_cli.register(app)
calls_cli.register(app)
synth_cli.register(app)
sms_cli.register(app)
risk_cli.register(app)
analytics_cli.register(app)
targeting_cli.register(app)
worker.register(app)
feed_cli.register(app)


def main() -> None:
    app()
