"""Reasons: the batched counterfactuals give the same contributions as re-predicting each
group over every row, so skipping rows that already hold the typical values changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.risk import repository, service
from app.risk.features import build_features, scoring_moments
from app.risk.reasons import REASON_GROUPS, contributions, explain
from app.settings import Settings
from tests.risk.helpers import NOW, create_trust, risk_settings


@pytest.mark.slow
def test_batched_contributions_equal_every_row_counterfactuals(
    session: Session, settings: Settings
) -> None:
    settings = risk_settings(settings)
    create_trust(session, patients=300, past=2_500, future=50)
    model = service.train_model(session, settings, now=NOW, as_of=NOW).model
    artefact = service.load_model_artefact(model)
    history = repository.load_history(session)
    rows = np.arange(len(history), dtype=np.int64)[:400]
    features = build_features(
        history,
        rows,
        scoring_moments(history, rows, settings.call_horizon_days),
        artefact.vocabulary,
        timezone=settings.timezone,
        include_ethnicity=artefact.include_ethnicity,
    )
    logit = artefact.raw_logit(features)

    groups, fast = contributions(artefact, features, logit)

    index = {name: i for i, name in enumerate(artefact.feature_names)}
    for column, group in enumerate(groups):
        modified = features.copy()
        for name in REASON_GROUPS[group]:
            modified[:, index[name]] = artefact.reference[index[name]]
        np.testing.assert_allclose(fast[:, column], logit - artefact.raw_logit(modified))
    reasons = explain(artefact, features, logit)
    assert len(reasons) == len(rows)
    assert any(reasons)
    assert all(len(row) <= 3 for row in reasons)
