"""Fairness beside impact: the active risk model's calibration and ranking by group (read from
its card) and the targeting's reach by group, in plain words first, on the analytics page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.analytics import fairness, service
from app.analytics.pages import period_query
from app.auth.roles import Role
from app.risk.tables import RiskModel
from app.settings import Settings
from tests.analytics.helpers import PERIOD, create_arm, create_outcomes
from tests.auth.helpers import create_user, sign_in

UNDER = (
    "The model under-predicts DNAs for Black patients by 6.0 points (14.0% missed against a "
    "mean predicted risk of 8.0%): their calls are ranked too low."
)


def _card(*, flagged: bool) -> dict[str, Any]:
    black = {
        "group": "Black or Black British",
        "rows": 400,
        "observed": 0.14,
        "predicted": 0.08,
        "observed_minus_predicted": 0.06,
        "observed_minus_predicted_ci": [0.03, 0.09],
        "calibration_slope": 0.9,
        "calibration_slope_ci": [0.7, 1.1],
    }
    if flagged:
        black |= {"flag": "under-predicted", "message": UNDER}
    white = {
        "group": "White",
        "rows": 3000,
        "observed": 0.07,
        "predicted": 0.071,
        "observed_minus_predicted": -0.001,
        "observed_minus_predicted_ci": [-0.01, 0.008],
    }
    return {
        "data_window": {"test_from": "2026-06-01"},
        "calibration_by_group": {
            "limit": 0.02,
            "attributes": {"ethnic_group": {"groups": [white, black]}},
            "flags": [{"attribute": "ethnic_group", **black}] if flagged else [],
        },
        "fairness": {
            "ethnic_group": {
                "auroc_gap": 0.04,
                "gap_limit": 0.05,
                "gap_flagged": False,
                "gap_beyond_noise": False,
                "groups": [
                    {"group": "White", "rows": 3000, "auroc": 0.71,
                     "ci95": {"auroc": [0.69, 0.73]}},
                    {"group": "Black or Black British", "rows": 400, "auroc": 0.67,
                     "ci95": {"auroc": [0.61, 0.73]}, "calibration_slope": 0.9},
                ],
            }
        },
    }  # fmt: skip


def _activate(session: Session, card: dict[str, Any]) -> None:
    session.add(
        RiskModel(
            version="card-1", artefact_path="/nowhere", artefact_sha256="0" * 64, card=card,
            active=True,
        )
    )  # fmt: skip
    session.flush()


def test_a_calibration_flag_is_said_in_plain_words_before_the_tables(
    session: Session, settings: Settings
) -> None:
    create_outcomes(session, attended=30, dnas=10)
    _activate(session, _card(flagged=True))

    section = fairness.fairness(session, service.reach(session, settings, PERIOD))

    findings = (section.message or "").splitlines()
    assert findings[0] == UNDER
    assert any(line.startswith("Ranking: the model sorts") for line in findings)
    assert any(line.startswith("Targeting:") for line in findings)
    calibration = next(t for t in section.tables if t.slug == "model-calibration-by-ethnic-group")
    black = next(r for r in calibration.rows if r["group"] == "Black or Black British")
    assert (black["gap"], black["gap_low"], black["gap_high"]) == (0.06, 0.03, 0.09)
    assert black["flag"] == "under-predicted"
    ranking = next(t for t in section.tables if t.slug == "model-ranking-by-ethnic-group")
    assert [r["auroc"] for r in ranking.rows] == [0.71, 0.67]
    assert any(t.slug == "targeting-reach-by-ethnic-group" for t in section.tables)


def test_without_an_active_model_the_page_says_so(session: Session, settings: Settings) -> None:
    create_outcomes(session, attended=30, dnas=10)

    section = fairness.fairness(session, service.reach(session, settings, PERIOD))

    assert (section.message or "").startswith("No risk model is active")
    assert all(t.slug.startswith("targeting-") for t in section.tables)


def test_the_analytics_page_shows_fairness_beside_impact(
    session: Session, app_client: TestClient
) -> None:
    create_arm(session, arm="call", attended=95, dnas=5, reached_attended=39, reached_dnas=1)
    create_arm(session, arm="holdout", attended=88, dnas=12)
    _activate(session, _card(flagged=False))
    create_user(session, role=Role.MANAGER, username="fair-manager")
    session.commit()
    sign_in(app_client, "fair-manager")

    text = re.sub(r"\s+", " ", app_client.get(f"/analytics?{period_query(PERIOD)}").text)

    impact = text.index('id="impact-heading"')
    fair = text.index('id="fairness-heading"')
    assert impact < fair < text.index('id="dna-heading"')
    assert "predicts DNAs about as often as they happened in every group checked" in text
    assert "Risk model calibration by ethnic group" in text
    assert "Risk model ranking by ethnic group" in text
    assert "Targeting: who the calls reach, by ethnic group" in text
