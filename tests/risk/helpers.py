"""Helpers for risk tests: a small synthetic trust and settings that let it train."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.settings import Settings
from tests.clock import TEST_NOW
from tests.risk.synthetic import generate_trust, insert_trust

# Every trust is generated around the tests' clock (`tests.clock.TEST_NOW`), never a pinned day.
NOW = TEST_NOW


def risk_settings(settings: Settings, **overrides: object) -> Settings:
    """Test settings with training minimums a few thousand rows can meet."""
    values: dict[str, object] = {
        "risk_min_training_rows": 300,
        "risk_min_training_dnas": 20,
        "risk_bootstrap_replicates": 50,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def create_trust(
    session: Session, *, patients: int = 500, past: int = 4_000, future: int = 300, seed: int = 0
) -> dict[str, int]:
    trust = generate_trust(patients=patients, past=past, future=future, now=NOW, seed=seed)
    return insert_trust(session, trust)
