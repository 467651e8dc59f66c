"""The queue's policy hook: which waiting call-arm patients get today's free capacity.

`app.calls.queue.build_queue` hands over the patients it would call (already ranked by risk
priority, hold-out already drawn and excluded) and its free room. Under the risk policy, or
whenever the switching rule keeps the queue on risk, the answer is exactly today's: the top of
the ranking. Under the benefit policy each patient is scored by the active benefit model
(the largest expected benefit of their waiting appointments) and `select_calls` applies the
equity floor and exploration.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.errors import DomainError
from app.settings import Settings
from app.targeting import repository, service
from app.targeting.policy import equity_floors, select_calls

logger = logging.getLogger("navigator.targeting.queue")
Item = TypeVar("Item", bound=tuple[int, Sequence[Any]])


def exploration_key(settings: Settings, queue_date: date, patient_id: int) -> float:
    """A reproducible uniform number per patient and day, keyed like the hold-out."""
    digest = hmac.new(
        settings.calls_programme_seed.encode(),
        f"explore:{queue_date.isoformat()}:{patient_id}".encode(),
        hashlib.sha256,
    ).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_calls(
    session: Session,
    settings: Settings,
    ranked: list[Item],
    room: int,
    *,
    queue_date: date,
    window: tuple[datetime, datetime],
) -> list[Item]:
    """The patients (items `(patient_id, assignment rows)`) to call, at most `room`."""
    if room <= 0 or not ranked:
        return ranked[: max(room, 0)]
    decision = service.queue_decision(session, settings)
    if not decision.switched:
        if decision.requested == "benefit":
            logger.info("queue %s: %s", queue_date, decision.message)
        return ranked[:room]
    try:
        artefact = service.load_active_artefact(session)
    except DomainError as error:
        logger.warning("queue %s stays on the risk policy: %s", queue_date, error.message)
        return ranked[:room]
    # One read of the window's assignments (both arms) serves both the floors' DNA burden
    # and the waiting patients' features; filtering by id in Python, not an IN list of every
    # waiting assignment, keeps the query's parameters few however big the window is.
    start, end = window
    window_rows = repository.load_trial_rows(
        session, Appointment.start_at >= start, Appointment.start_at < end
    )
    index_of = {
        assignment: index for index, assignment in enumerate(window_rows.assignment_id.tolist())
    }
    benefit = artefact.benefit(window_rows.columns.matrix())
    waiting = [[index_of[row.id] for row in rows] for _patient, rows in ranked]
    score = np.array([benefit[indices].max() for indices in waiting])
    membership = np.array(
        [window_rows.membership[indices].any(axis=0) for indices in waiting], dtype=bool
    ).reshape(len(ranked), -1)
    floors = equity_floors(
        np.nan_to_num(window_rows.columns.risk, nan=0.0),
        window_rows.membership,
        room,
        settings.targeting_floor_scale,
    )
    keys = np.array([exploration_key(settings, queue_date, patient) for patient, _ in ranked])
    picked = select_calls(
        score,
        membership,
        room,
        floors=floors,
        exploration_share=settings.targeting_exploration_share,
        exploration_keys=keys,
    )
    logger.info("queue %s: benefit policy chose %d of %d", queue_date, len(picked), len(ranked))
    return [ranked[index] for index in picked.tolist()]


__all__ = ["choose_calls", "exploration_key"]
