"""Reading the task worklist: one scope, filters and paging, for the page and the API alike.

Scope (as `app.patients.repository`): the team's open tasks are everybody's work, so every
navigator sees them; a done task is seen by whoever marked it done, and by managers.
"Mine" narrows to tasks that came from a call this navigator worked, or that they marked done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import User
from app.calls import repository as calls_repository
from app.calls.tables import Call
from app.localtime import TrustCalendar
from app.tasks.tables import NavigatorTask, TaskStatus


class TaskAge(StrEnum):
    TODAY = "today"  # opened on the trust's local day
    OLDER = "older"  # opened before today
    OVER_A_WEEK = "over_a_week"  # opened seven or more days ago


class TaskScope(StrEnum):
    TEAM = "team"
    MINE = "mine"


@dataclass(frozen=True)
class TaskFilter:
    status: TaskStatus = TaskStatus.OPEN
    kind: str | None = None
    age: TaskAge | None = None
    scope: TaskScope = TaskScope.TEAM


def visible_to(user: User) -> ColumnElement[bool]:
    if user.has_role(Role.MANAGER):
        return true()
    return or_(NavigatorTask.status == TaskStatus.OPEN, NavigatorTask.completed_by == user.id)


def _mine(user_id: int) -> ColumnElement[bool]:
    worked = select(Call.id).where(calls_repository.worked_by(user_id))
    return or_(NavigatorTask.call_id.in_(worked), NavigatorTask.completed_by == user_id)


def _age(age: TaskAge, calendar: TrustCalendar, now: datetime) -> ColumnElement[bool]:
    today_start = calendar.day_start(calendar.today(now))
    if age == TaskAge.TODAY:
        return NavigatorTask.created_at >= today_start
    if age == TaskAge.OLDER:
        return NavigatorTask.created_at < today_start
    week_start = calendar.day_start(calendar.today(now) - timedelta(days=6))
    return NavigatorTask.created_at < week_start


def list_tasks(
    session: Session,
    user: User,
    filters: TaskFilter,
    *,
    calendar: TrustCalendar,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[NavigatorTask], int]:
    """One page of the tasks `user` may see: open ones oldest first (the longest waiting),
    done ones most recently done first (the ones that can still be undone)."""
    conditions: list[Any] = [visible_to(user), NavigatorTask.status == filters.status]
    if filters.kind:
        conditions.append(NavigatorTask.kind == filters.kind)
    if filters.age is not None:
        conditions.append(_age(filters.age, calendar, now))
    if filters.scope == TaskScope.MINE:
        conditions.append(_mine(user.id))
    where = and_(*conditions)
    total = session.scalar(select(func.count(NavigatorTask.id)).where(where)) or 0
    order = (
        (NavigatorTask.created_at, NavigatorTask.id)
        if filters.status == TaskStatus.OPEN
        else (NavigatorTask.completed_at.desc(), NavigatorTask.id.desc())
    )
    rows = session.scalars(
        select(NavigatorTask).where(where).order_by(*order).limit(limit).offset(offset)
    )
    return list(rows), total


def count_open(session: Session, user: User) -> tuple[int, int]:
    """The team's open tasks, and how many of them are this navigator's (from their calls)."""
    team = (
        session.scalar(
            select(func.count(NavigatorTask.id)).where(NavigatorTask.status == TaskStatus.OPEN)
        )
        or 0
    )
    mine = (
        session.scalar(
            select(func.count(NavigatorTask.id)).where(
                NavigatorTask.status == TaskStatus.OPEN, _mine(user.id)
            )
        )
        or 0
    )
    return team, mine


def linked_calls(session: Session, user: User, tasks: list[NavigatorTask]) -> dict[int, int]:
    """For each task, the call to open for it, when `user` may see one: the call it came from,
    else the patient's latest call this user may see."""
    wanted = {task.call_id for task in tasks if task.call_id is not None}
    patients = {task.patient_id for task in tasks}
    if not tasks:
        return {}
    visible = set(
        session.scalars(
            select(Call.id).where(Call.id.in_(wanted), calls_repository.visible_to(user))
        )
    )
    latest = dict(
        session.execute(
            select(Call.patient_id, func.max(Call.id))
            .where(Call.patient_id.in_(patients), calls_repository.visible_to(user))
            .group_by(Call.patient_id)
        ).all()
    )
    links: dict[int, int] = {}
    for task in tasks:
        if task.call_id is not None and task.call_id in visible:
            links[task.id] = task.call_id
        elif task.patient_id in latest:
            links[task.id] = int(latest[task.patient_id])
    return links
