"""The demo's risk steps: train a model once (kept on later runs), then score the next 14 days."""

from __future__ import annotations

from app.clock import SYSTEM_CLOCK, Clock
from app.db.session import Database
from app.errors import DomainError
from app.risk import repository, service
from app.settings import Settings


def train_and_score(
    database: Database, settings: Settings, clock: Clock = SYSTEM_CLOCK
) -> list[tuple[str, str]]:
    now = clock.now()
    steps: list[tuple[str, str]] = []
    with database.unit_of_work() as session:
        active = repository.active_model(session)
        if active is not None:
            steps.append(("train", f"kept the active model {active.version}"))
    if active is None:
        try:
            with database.unit_of_work() as session:
                result = service.train_model(session, settings, now=now)
        except DomainError as error:
            # A demo trust too small to train on still serves everything else.
            return [("train", f"skipped: {error.message}")]
        auroc = result.card["metrics"]["auroc"]
        steps.append(
            ("train", f"{result.model.version} active, test AUROC {auroc:.3f}" if auroc else "")
        )
    with database.unit_of_work() as session:
        scored = service.score_appointments(session, settings, now=now)
    bands = scored.band_counts()
    steps.append(
        (
            "score",
            f"{len(scored.scored):,} appointments in the next 14 days: {bands['high']:,} high, "
            f"{bands['medium']:,} medium, {bands['low']:,} low risk",
        )
    )
    return steps
