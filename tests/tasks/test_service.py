"""Opening navigator tasks through the tasks feature's own service: once per source ref."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.tasks.service import open_task
from app.tasks.tables import NavigatorTask, TaskKind, TaskStatus
from tests.factories import create_patient


def test_a_task_is_opened_once_for_the_same_source_ref(session: Session, clock: FixedClock) -> None:
    patient = create_patient(session)
    first = open_task(
        session,
        kind=TaskKind.SEND_LETTER,
        patient_id=patient.id,
        source="call_queue",
        source_ref="1:2",
        detail="Send a letter",
        now=clock.now(),
    )
    again = open_task(
        session,
        kind=TaskKind.SEND_LETTER,
        patient_id=patient.id,
        source="call_queue",
        source_ref="1:2",
        detail="Send a letter",
        now=clock.now(),
    )

    assert again.id == first.id
    assert first.status == TaskStatus.OPEN
    assert first.created_at == clock.now()
    assert session.scalar(select(func.count(NavigatorTask.id))) == 1
