"""`navigator sms schedule [--date DATE]` and `navigator sms dispatch [--once]`."""

from __future__ import annotations

import signal
from datetime import date
from typing import Annotated, Any

import typer

from app.clock import current_clock
from app.console import JsonFlag, emit, handles_domain_errors, progress_bar
from app.db.session import Database
from app.isodate import parse_iso_date
from app.settings import get_settings
from app.sms import service
from app.sms.dispatcher import Dispatcher
from app.sms.providers import build_sender

sms_app = typer.Typer(help="SMS reminders through Twilio.", no_args_is_help=True)


@sms_app.command("schedule")
@handles_domain_errors
def schedule(
    on_date: Annotated[
        str | None,
        typer.Option("--date", help="Day to schedule for, YYYY-MM-DD (default today)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue the reminders due on DATE (default: today, in the trust's time zone)."""
    settings = get_settings()
    now = current_clock().now()
    try:
        day: date = parse_iso_date(on_date) if on_date else settings.calendar.today(now)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            service.seed_default_templates(session, now=now)
            summary = service.schedule_reminders(session, settings, on_date=day, now=now)
    finally:
        database.dispose()
    emit(summary.as_dict(), summary.human(), as_json=as_json)


@sms_app.command("dispatch")
@handles_domain_errors
def dispatch(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Send queued messages (forever, polling; or once with --once)."""
    settings = get_settings()
    clock = current_clock()
    sender = build_sender(settings, clock)
    database = Database(settings)
    dispatcher = Dispatcher(database, settings, sender, clock=clock)
    try:
        if once:
            with progress_bar("Sending SMS") as bar:
                summary = dispatcher.run_once(on_progress=bar.advance)
            emit(summary.as_dict(), summary.human(), as_json=as_json)
            return
        stopping = {"now": False}

        def _stop(*_args: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        dispatcher.run_forever(should_stop=lambda: stopping["now"])
        emit({"stopped": True}, "Dispatcher stopped.", as_json=as_json)
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(sms_app, name="sms")
