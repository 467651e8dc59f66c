"""Features are what was known at the scoring moment, and nothing later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from app.risk import repository
from app.risk.features import (
    NEVER,
    Vocabulary,
    build_features,
    feature_names,
    scoring_moments,
)
from tests.factories import create_appointment, create_clinic, create_patient
from tests.risk.helpers import NOW, create_trust

NAMES = feature_names(include_ethnicity=False)


def _features(session: Session, appointment_id: int, moment: datetime) -> dict[str, float]:
    history = repository.load_history(session)
    row = int(np.flatnonzero(history.appointment_id == appointment_id)[0])
    vocabulary = Vocabulary.learn(history, np.arange(len(history)))
    matrix = build_features(
        history,
        np.array([row]),
        np.array([int(moment.timestamp())]),
        vocabulary,
        timezone="Europe/London",
        include_ethnicity=False,
    )
    return dict(zip(NAMES, matrix[0].tolist(), strict=True))


def test_history_counts_only_outcomes_recorded_before_the_moment(session: Session) -> None:
    patient = create_patient(session, imd_decile=2)
    clinic = create_clinic(session, specialty_code="340")
    outcomes = ["3", "5", "3", "5", "2"]
    for weeks, code in zip((20, 16, 12, 8, 6), outcomes, strict=True):
        start = NOW - timedelta(weeks=weeks)
        create_appointment(
            session,
            patient=patient,
            clinic=clinic,
            start_at=start,
            attendance_code=code,
            outcome_recorded_at=start,
        )
    # Started before T but its DNA was only recorded after T (a later re-import).
    late = NOW - timedelta(weeks=4)
    create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=late,
        attendance_code="3",
        outcome_recorded_at=NOW + timedelta(days=1),
    )
    target_start = NOW + timedelta(days=10)
    target = create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=target_start,
        booked_at=target_start - timedelta(days=60),
        first_attendance=True,
    )

    features = _features(session, target.id, NOW)

    assert features["n_prior_dna"] == 2
    assert features["n_prior_attended"] == 2
    assert features["dna_last_4"] == 2
    assert features["known_last_4"] == 4
    assert features["prior_dna_rate"] == 0.5
    assert features["n_prior_patient_cancellations"] == 1
    assert features["n_prior_appointments"] == 6  # the late-recorded one did start before T
    assert features["days_since_last_dna"] == 12 * 7
    assert features["lead_time_days"] == 60
    assert features["first_attendance"] == 1
    assert features["imd_decile"] == 2


def test_local_weekday_and_hour_follow_british_summer_time(session: Session) -> None:
    # 08:30 UTC on Wednesday 1 July 2026 is 09:30 in London.
    start = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    appointment = create_appointment(session, start_at=start)
    features = _features(session, appointment.id, start - timedelta(days=7))
    assert features["weekday"] == 2
    assert features["hour"] == 9


def test_missing_deprivation_and_first_attendance_are_missing_not_zero(session: Session) -> None:
    patient = create_patient(session, imd_decile=None)
    appointment = create_appointment(session, patient=patient, first_attendance=None)
    features = _features(session, appointment.id, NOW)
    assert np.isnan(features["imd_decile"])
    assert np.isnan(features["first_attendance"])
    assert np.isnan(features["days_since_last_dna"])


def test_no_feature_changes_when_later_outcomes_and_own_outcome_change(session: Session) -> None:
    create_trust(session, patients=150, past=1_500, future=0)
    history = repository.load_history(session)
    rows = np.flatnonzero(history.attendance_code != 0)
    moments = scoring_moments(history, rows, horizon_days=7)
    vocabulary = Vocabulary.learn(history, rows)

    def features() -> np.ndarray:
        return build_features(
            history, rows, moments, vocabulary, timezone="Europe/London", include_ethnicity=False
        )

    before = features()
    # Rewrite every outcome that nobody could have known at the earliest moment scored, and
    # move recordings around, including each scored appointment's own outcome.
    rng = np.random.default_rng(1)
    earliest = int(moments.min())
    known_at = np.maximum(history.start_s, history.recorded_s)
    later = known_at >= earliest
    history.attendance_code[later] = rng.choice([2, 3, 4, 5, 7], int(later.sum()))
    # Per row, the leak test needs "after its own T": shift each later outcome's recording
    # even later, so it stays unknown to every moment that could not see it before.
    history.recorded_s[later] = np.where(
        rng.random(int(later.sum())) < 0.5, NEVER, history.recorded_s[later] + 86_400 * 3
    )
    after = features()

    # Rows whose moment is the earliest see exactly the same history.
    same_moment = moments == earliest
    np.testing.assert_array_equal(before[same_moment], after[same_moment])


def test_each_row_ignores_outcomes_recorded_at_or_after_its_own_moment(session: Session) -> None:
    create_trust(session, patients=120, past=1_200, future=0, seed=3)
    history = repository.load_history(session)
    rows = np.flatnonzero(history.attendance_code != 0)
    moments = scoring_moments(history, rows, horizon_days=7)
    vocabulary = Vocabulary.learn(history, rows)
    before = build_features(
        history, rows, moments, vocabulary, timezone="Europe/London", include_ethnicity=False
    )
    rng = np.random.default_rng(2)
    for index in rng.choice(len(rows), 25, replace=False):
        row, moment = rows[index], moments[index]
        changed = history.attendance_code.copy()
        known_at = np.maximum(history.start_s, history.recorded_s)
        unknown_then = (history.patient == history.patient[row]) & (known_at >= moment)
        assert unknown_then[row]  # its own outcome is never known at its moment
        changed[unknown_then] = np.where(changed[unknown_then] == 3, 5, 3)
        original = history.attendance_code
        history.attendance_code = changed
        after = build_features(
            history,
            rows[index : index + 1],
            moments[index : index + 1],
            vocabulary,
            timezone="Europe/London",
            include_ethnicity=False,
        )
        history.attendance_code = original
        np.testing.assert_array_equal(before[index : index + 1], after)


def test_ethnicity_is_an_input_only_when_asked() -> None:
    assert "ethnic_group" not in feature_names(include_ethnicity=False)
    assert feature_names(include_ethnicity=True)[-1] == "ethnic_group"


def test_same_day_counts_the_london_day_not_the_utc_day(session: Session) -> None:
    patient = create_patient(session)
    clinic = create_clinic(session)
    booked = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    # 23:30 UTC on 31 May is 00:30 on 1 June in London (BST): the same local day as the
    # afternoon appointment, though the UTC dates differ.
    late_evening = create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=datetime(2026, 5, 31, 23, 30, tzinfo=UTC),
        booked_at=booked,
    )
    create_appointment(
        session,
        patient=patient,
        clinic=clinic,
        start_at=datetime(2026, 6, 1, 14, 0, tzinfo=UTC),
        booked_at=booked,
    )
    features = _features(session, late_evening.id, datetime(2026, 5, 20, tzinfo=UTC))
    assert features["n_same_day"] == 1.0
