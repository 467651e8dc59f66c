"""JSON API for managers: the feed's dead-letter list, replaying and dismissing a message."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.feed import service

router = APIRouter(prefix="/api/feed", tags=["feed"])
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]


class DeadLetterOut(BaseModel):
    id: int
    control_id: str | None
    message_type: str | None
    ack_code: str
    error: str | None
    patient_key: str | None
    appointment_key: str | None
    size_bytes: int
    attempts: int
    received_at: datetime
    processed_at: datetime


class DeadLettersOut(BaseModel):
    counts: dict[str, int]
    dead_letters: list[DeadLetterOut]


class ReplayOut(BaseModel):
    id: int
    ack_code: str
    text: str


def processor(request: Request) -> service.FeedProcessor:
    return service.FeedProcessor(request.app.state.settings)


@router.get("/dead-letters", response_model=DeadLettersOut)
def list_dead_letters(session: SessionDep, _user: Manager) -> dict[str, Any]:
    return {
        "counts": service.feed_counts(session),
        "dead_letters": [asdict(letter) for letter in service.dead_letters(session)],
    }


@router.post("/dead-letters/{message_id}/replay", response_model=ReplayOut)
def replay(
    message_id: RecordId, request: Request, session: SessionDep, user: Manager, clock: ClockDep
) -> dict[str, Any]:
    outcome = processor(request).replay(session, message_id, now=clock.now(), user_id=user.id)
    record_audit(
        session,
        user_id=user.id,
        action="feed.replay",
        detail={"message_id": message_id, "ack_code": outcome.ack_code},
    )
    return {"id": message_id, "ack_code": outcome.ack_code, "text": outcome.text}


@router.post("/dead-letters/{message_id}/dismiss", status_code=204)
def dismiss(message_id: RecordId, session: SessionDep, user: Manager, clock: ClockDep) -> None:
    service.dismiss(session, message_id, now=clock.now(), user_id=user.id)
    record_audit(session, user_id=user.id, action="feed.dismiss", detail={"message_id": message_id})
