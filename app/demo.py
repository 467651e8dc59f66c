"""`navigator demo`: a working service on the embedded database with a synthetic trust.

Every step is safe to run again: migrations are idempotent, the synthetic trust is
deterministic for its seed and date, and imports of unchanged rows change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock
from app.console import NULL_PROGRESS, progress_bar
from app.db import migrate
from app.db.session import Database
from app.settings import Settings

DEMO_SEED = 20_261_124
# Weeks of programme history the demo simulates before today.
PROGRAMME_WEEKS = 8


@dataclass
class DemoSummary:
    steps: list[tuple[str, str]] = field(default_factory=list)

    def add(self, step: str, outcome: str) -> None:
        self.steps.append((step, outcome))

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [{"step": step, "outcome": outcome} for step, outcome in self.steps]}

    def human(self) -> str:
        width = max((len(step) for step, _ in self.steps), default=0)
        return "\n".join(f"{step.ljust(width)}  {outcome}" for step, outcome in self.steps)


@dataclass
class DemoContext:
    """What the demo steps share: settings, the database, the clock and the demo's options."""

    settings: Settings
    database: Database
    patients: int
    show_progress: bool
    summary: DemoSummary
    clock: Clock = SYSTEM_CLOCK

    @property
    def today(self) -> date:
        """The trust's local day now: the demo is built around whatever day it is run on."""
        return self.settings.calendar.today(self.clock.now())


DemoStep = Callable[[DemoContext], None]


def _migrate(context: DemoContext) -> None:
    migrate.upgrade(context.settings.database_url)
    context.summary.add("migrate", f"database at revision {migrate.head_revision()}")


def _synthesise_and_import(context: DemoContext) -> None:
    from app.clock import SYSTEM_CLOCK
    from app.imports.service import import_appointments, import_patients
    from app.synth.service import write_trust

    settings = context.settings
    out_dir = settings.data_dir / "demo"
    today = context.today
    trust = write_trust(
        out_dir,
        patients=context.patients,
        weeks_history=52,
        weeks_ahead=3,
        catchment="leicester",
        seed=DEMO_SEED,
        today=today,
    )
    context.summary.add(
        "synthesise",
        f"{trust.patients:,} patients, {trust.appointments:,} appointments in {out_dir}",
    )
    for kind, importer in (("patients", import_patients), ("appointments", import_appointments)):
        with (
            progress_bar(f"Importing {kind}")
            if context.show_progress
            else nullcontext(NULL_PROGRESS) as progress
        ):
            report = importer(
                context.database,
                out_dir / f"{kind}.csv",
                progress=progress,
                now=SYSTEM_CLOCK.now(),
            )
        context.summary.add(
            f"import {kind}",
            f"{report.inserted:,} inserted, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged",
        )


def _accounts(context: DemoContext) -> None:
    from app.auth.demo import ensure_demo_accounts

    context.summary.add("accounts", ensure_demo_accounts(context.database))


def _queue(context: DemoContext) -> None:
    from app.calls.cli import build_for_day

    today = context.today
    result = build_for_day(context.database, context.settings, today, clock=context.clock)
    context.summary.add(
        "queue",
        f"{result.calls_in_queue} calls queued for {today} "
        f"({result.assigned_call} call arm, {result.assigned_holdout} held out newly assigned)",
    )


def _reminders(context: DemoContext) -> None:
    from app.sms.service import schedule_reminders, seed_default_templates

    now = context.clock.now()
    today = context.settings.calendar.today(now)
    with context.database.unit_of_work() as session:
        seed_default_templates(session, now=now)
        reminders = schedule_reminders(session, context.settings, on_date=today, now=now)
    context.summary.add(
        "sms reminders",
        f"{reminders.created} queued, {reminders.already_scheduled} already queued, "
        f"{reminders.no_sms_channel} with no SMS channel",
    )


def _train_and_score(context: DemoContext) -> None:
    from app.risk.demo import train_and_score

    for step, outcome in train_and_score(context.database, context.settings):
        context.summary.add(step, outcome)


def _programme_history(context: DemoContext) -> None:
    """Eight weeks of the programme so far, so the managers' figures come from records.

    The past weeks are scored as a backtest first (features as known a call horizon before
    each appointment), so the simulated daily queues pick patients by risk as well as need.
    """
    from sqlalchemy import select

    from app.analytics.simulation import simulate_programme
    from app.auth.roles import Role
    from app.auth.tables import User
    from app.risk import repository as risk_repository
    from app.risk.service import score_appointments

    settings = context.settings
    today = context.today
    first_day = today - timedelta(weeks=PROGRAMME_WEEKS)
    with context.database.unit_of_work() as session:
        navigator_ids = tuple(
            session.scalars(select(User.id).where(User.role == Role.NAVIGATOR).order_by(User.id))
        )
        if risk_repository.active_model(session) is not None:
            score_appointments(
                session,
                settings,
                start=settings.calendar.day_start(first_day),
                end=settings.calendar.day_start(today),
                now=settings.calendar.day_start(today),
            )
    history = simulate_programme(
        context.database,
        settings,
        weeks=PROGRAMME_WEEKS,
        today=today,
        navigator_user_ids=navigator_ids or (0,),
    )
    context.summary.add("programme history", history.human())


# Each step is safe to run again; later steps use what earlier ones made.
DEMO_STEPS: list[DemoStep] = [
    _migrate,
    _synthesise_and_import,
    _accounts,
    _train_and_score,
    _programme_history,
    _reminders,
    _queue,
]


def prepare_demo(
    settings: Settings, *, patients: int, show_progress: bool, clock: Clock = SYSTEM_CLOCK
) -> DemoSummary:
    """Prepare the demo around the clock's local day (the system clock: the demo is live)."""
    summary = DemoSummary()
    database = Database(settings)
    try:
        context = DemoContext(settings, database, patients, show_progress, summary, clock)
        for step in DEMO_STEPS:
            step(context)
    finally:
        database.dispose()
    return summary
