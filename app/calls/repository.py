"""Reading calls: one read scope, `visible_to(user)`, behind every door.

The JSON API, the pages, the patient history and any export build their reads of calls from
`readable_calls(user)` (or `visible_to(user)` inside a larger query), so they cannot disagree
about who may see a call. A call outside the scope does not exist for that user: it answers
404, never 403, so its existence (and the patient behind it) is not given away.

Who sees what:

- managers and admins: every call;
- a navigator: the calls they hold now or held, and the calls they worked on (dialled, recorded
  an outcome of, completed). The queue is shared: a queued call becomes a navigator's when
  they take it (or a manager hands it to them), and then it is on their queue.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from app.auth.roles import Role
from app.auth.tables import User
from app.calls.tables import Call, CallAttempt, CallOutcome
from app.errors import NotFoundError

NOT_FOUND = "No call with that id."


def sees_every_call(user: User) -> bool:
    return user.has_role(Role.MANAGER)


def worked_by(user_id: int) -> ColumnElement[bool]:
    """Calls this user holds or held, dialled, recorded an outcome of or completed."""
    return or_(
        Call.taken_by == user_id,
        Call.completed_by == user_id,
        exists().where(CallAttempt.call_id == Call.id, CallAttempt.attempted_by == user_id),
        exists().where(CallOutcome.call_id == Call.id, CallOutcome.recorded_by == user_id),
    )


def visible_to(user: User) -> ColumnElement[bool]:
    """The one read scope of calls (module docstring)."""
    if sees_every_call(user):
        return true()
    return worked_by(user.id)


def readable_calls(user: User) -> Select[Any]:
    return select(Call).where(visible_to(user))


def get_visible(session: Session, user: User, call_id: int, *, lock: bool = False) -> Call:
    """The call if this user may see it; `NotFoundError` otherwise (whether or not it exists)."""
    query: Select[Any] = readable_calls(user).where(Call.id == call_id)
    if lock:
        query = query.with_for_update()
    call = session.scalar(query.execution_options(populate_existing=True))
    if call is None:
        raise NotFoundError(NOT_FOUND)
    return call


def calls_of_patient(session: Session, user: User, patient_id: int) -> list[Call]:
    """The patient's calls this user may see, newest queue day first."""
    return list(
        session.scalars(
            readable_calls(user)
            .where(Call.patient_id == patient_id)
            .order_by(Call.queue_date.desc(), Call.id.desc())
        )
    )


def calls_worked_by(
    session: Session, user_id: int, *, limit: int = 100, offset: int = 0
) -> list[Call]:
    """A navigator's own calls ("My calls"), the most recently finished or taken first."""
    return list(
        session.scalars(
            select(Call)
            .where(worked_by(user_id))
            .order_by(func.coalesce(Call.completed_at, Call.taken_at).desc(), Call.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
