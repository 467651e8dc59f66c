"""`GET /health`: database reachability and migration head, for load balancers and humans."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.db.migrate import current_revision, head_revision
from app.db.session import Database, get_database

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unreachable"]
    migration_current: str | None
    migration_head: str | None


@router.get("/health", response_model=Health)
def health(database: Annotated[Database, Depends(get_database)]) -> JSONResponse:
    head = head_revision()
    try:
        current = current_revision(database.engine)
        reachable = True
    except SQLAlchemyError:
        current, reachable = None, False
    ok = reachable and current == head
    body = Health(
        status="ok" if ok else "degraded",
        version=__version__,
        database="ok" if reachable else "unreachable",
        migration_current=current,
        migration_head=head,
    )
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())
