"""`navigator demo`: a working service on the embedded database with a synthetic trust.

Every step is safe to run again: migrations are idempotent, the synthetic trust is
deterministic for its seed and date, and imports of unchanged rows change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.db import migrate
from app.settings import Settings


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


def _demo_accounts(settings: Settings) -> str:
    from app.auth.demo import ensure_demo_accounts
    from app.db.session import Database

    database = Database(settings)
    try:
        return ensure_demo_accounts(database)
    finally:
        database.dispose()


def prepare_demo(settings: Settings, *, patients: int, show_progress: bool) -> DemoSummary:
    summary = DemoSummary()
    migrate.upgrade(settings.database_url)
    summary.add("migrate", f"database at revision {migrate.head_revision()}")
    summary.add("accounts", _demo_accounts(settings))
    return summary
