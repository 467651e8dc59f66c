"""The home page sends a navigator to the queue page once a feature provides it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in


def test_a_navigator_lands_on_the_queue_page_when_it_exists(
    settings: Settings, database: Database, session: Session
) -> None:
    create_user(session, username="home-nav")
    session.commit()
    app = create_app(settings, database)
    queue_pages = APIRouter()

    @queue_pages.get("/queue")
    def queue() -> dict[str, str]:
        return {"page": "queue"}

    app.include_router(queue_pages)
    with TestClient(app) as client:
        sign_in(client, "home-nav")
        response = client.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/queue"
