"""Scoring with the active model: stored scores, bands, reasons, backtests, bad artefacts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
import skops.io as sio
from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.errors import InvalidInputError, NotReadyError
from app.risk import service
from app.risk.artefacts import TamperedArtefactError, sha256_of
from app.risk.tables import RiskModel, RiskScore
from app.settings import Settings
from tests.risk.helpers import NOW, create_trust, risk_settings


def _trained(session: Session, settings: Settings) -> RiskModel:
    create_trust(session)
    return service.train_model(session, settings, now=NOW, as_of=NOW).model


def _stored_scores(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RiskScore)) or 0


def test_scoring_without_an_active_model_is_refused(session: Session, settings: Settings) -> None:
    create_trust(session, patients=50, past=100, future=20)
    with pytest.raises(NotReadyError, match="no risk model is active"):
        service.score_appointments(session, settings, now=NOW)
    assert _stored_scores(session) == 0


@pytest.mark.slow
def test_upcoming_appointments_get_a_band_and_plain_reasons(
    session: Session, settings: Settings
) -> None:
    settings = risk_settings(settings)
    model = _trained(session, settings)

    result = service.score_appointments(session, settings, now=NOW)
    again = service.score_appointments(session, settings, now=NOW)

    upcoming = session.scalar(
        select(func.count()).where(
            Appointment.start_at >= NOW, Appointment.start_at < NOW + timedelta(days=14)
        )
    )
    assert len(result.scored) == upcoming == len(again.scored) == _stored_scores(session)
    stored = session.scalars(select(RiskScore)).all()
    assert {score.model_version for score in stored} == {model.version}
    cutoffs = model.card["bands"]
    assert cutoffs["method"] == "capacity"
    for score in stored:
        assert 0 < score.risk < 1
        expected_band = (
            "high"
            if score.risk >= cutoffs["high"]
            else "medium"
            if score.risk >= cutoffs["medium"]
            else "low"
        )
        assert score.band == expected_band
        assert len(score.reasons) <= 3
    reasons = [reason for score in stored for reason in score.reasons]
    assert any(reason.startswith(("missed", "booked", "aged")) for reason in reasons)
    assert not any("nan" in reason for reason in reasons)


def _risks(session: Session, settings: Settings, start: datetime, end: datetime) -> list[float]:
    result = service.score_appointments(session, settings, start=start, end=end, now=NOW)
    return [row.risk for row in sorted(result.scored, key=lambda row: row.appointment_id)]


def _flip_outcomes(session: Session, condition: ColumnElement[bool]) -> None:
    session.execute(
        update(Appointment)
        .where(condition, Appointment.attendance_code != "0")
        .values(
            attendance_code=case((Appointment.attendance_code == "3", "5"), else_="3"),
            outcome_recorded_at=Appointment.start_at,
        )
    )
    session.flush()


@pytest.mark.slow
def test_a_backtest_does_not_use_the_outcomes_it_predicts(
    session: Session, settings: Settings
) -> None:
    settings = risk_settings(settings)
    _trained(session, settings)
    # One past day: every appointment on it is scored as known a week (or its booking)
    # before, so its own outcome and everything from that day on must not matter.
    day = datetime.combine((NOW - timedelta(weeks=3)).date(), time.min, tzinfo=UTC)
    day -= timedelta(days=day.weekday())  # a Monday
    next_day = day + timedelta(days=1)
    before = _risks(session, settings, day, next_day)

    _flip_outcomes(session, Appointment.start_at >= day)
    after_own_and_later = _risks(session, settings, day, next_day)
    _flip_outcomes(session, Appointment.start_at < day - timedelta(days=7))
    after_earlier = _risks(session, settings, day, next_day)

    assert len(before) > 5
    assert after_own_and_later == before
    assert after_earlier != before  # earlier outcomes are features: the check can fail


def test_a_tampered_artefact_is_refused(session: Session, settings: Settings) -> None:
    settings = risk_settings(settings)
    model = _trained(session, settings)
    path = Path(model.artefact_path)
    path.write_bytes(path.read_bytes() + b"\0")

    with pytest.raises(TamperedArtefactError, match="SHA-256"):
        service.score_appointments(session, settings, now=NOW)
    assert _stored_scores(session) == 0


def test_a_model_with_another_feature_list_is_refused(session: Session, settings: Settings) -> None:
    settings = risk_settings(settings)
    model = _trained(session, settings)
    path = Path(model.artefact_path)
    payload = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    payload["feature_names"] = [*payload["feature_names"][:-1], "postcode_area"]
    sio.dump(payload, path)
    model.artefact_sha256 = sha256_of(path)
    session.flush()

    with pytest.raises(InvalidInputError, match="different feature list"):
        service.score_appointments(session, settings, now=NOW)
    assert _stored_scores(session) == 0


def test_an_artefact_with_unexpected_types_is_refused(session: Session, settings: Settings) -> None:
    settings = risk_settings(settings)
    model = _trained(session, settings)
    path = Path(model.artefact_path)
    payload = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    payload["extra"] = Fraction(1, 3)  # any type outside the trusted list
    sio.dump(payload, path)
    model.artefact_sha256 = sha256_of(path)
    session.flush()

    with pytest.raises(TamperedArtefactError, match="unexpected types"):
        service.score_appointments(session, settings, now=NOW)


def test_an_empty_period_scores_nothing(session: Session, settings: Settings) -> None:
    settings = risk_settings(settings)
    model = _trained(session, settings)
    far = NOW + timedelta(days=400)
    result = service.score_appointments(
        session, settings, start=far, end=far + timedelta(days=1), now=NOW
    )
    assert result.scored == []
    assert result.model_version == model.version
