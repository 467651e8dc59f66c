"""The managers' page of the feed: messages that were not applied, to replay or dismiss."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from app.auth.audit import record_audit
from app.auth.dependencies import require_role, verify_csrf
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.feed import service
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
Csrf = Annotated[None, Depends(verify_csrf)]


@router.get("/feed")
def dead_letter_page(
    request: Request, session: SessionDep, _user: Manager, done: str = ""
) -> Response:
    return render(
        request,
        "feed/dead_letters.html",
        {
            "page_title": "PAS feed",
            "counts": service.feed_counts(session),
            "dead_letters": service.dead_letters(session),
            "done": done if done in {"AA", "AE", "AR", "dismissed"} else "",
        },
    )


@router.post("/feed/{message_id}/replay")
def replay(
    message_id: RecordId,
    request: Request,
    session: SessionDep,
    user: Manager,
    clock: ClockDep,
    _csrf: Csrf,
) -> Response:
    outcome = service.FeedProcessor(request.app.state.settings).replay(
        session, message_id, now=clock.now(), user_id=user.id
    )
    record_audit(
        session,
        user_id=user.id,
        action="feed.replay",
        detail={"message_id": message_id, "ack_code": outcome.ack_code},
    )
    return RedirectResponse(f"/feed?done={outcome.ack_code}", status_code=303)


@router.post("/feed/{message_id}/dismiss")
def dismiss(
    message_id: RecordId, session: SessionDep, user: Manager, clock: ClockDep, _csrf: Csrf
) -> Response:
    service.dismiss(session, message_id, now=clock.now(), user_id=user.id)
    record_audit(session, user_id=user.id, action="feed.dismiss", detail={"message_id": message_id})
    return RedirectResponse("/feed?done=dismissed", status_code=303)
