"""The home page (`/`): sends each role to where its work starts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.routing import Match

from app.auth.dependencies import current_user
from app.auth.roles import Role
from app.auth.tables import User
from app.ui.templating import render

router = APIRouter(include_in_schema=False)

# Where each role starts, used once that page exists; until then the landing page shows.
# Managers land on their dashboard (queues, last month, alerts); admins on the home page,
# which lists what their role can open.
ROLE_HOME = {Role.NAVIGATOR: "/queue", Role.MANAGER: "/dashboard"}


def _has_page(request: Request, path: str) -> bool:
    # Ask the router itself: with nested included routers `app.routes` is not a flat list of
    # APIRoutes, so comparing paths there misses pages that exist.
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "app": request.app}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


@router.get("/")
def home(request: Request, user: Annotated[User | None, Depends(current_user)]) -> Response:
    if user is None:
        return RedirectResponse("/sign-in", status_code=303)
    target = ROLE_HOME.get(user.role_enum)
    if target and _has_page(request, target):
        return RedirectResponse(target, status_code=303)
    return render(request, "home.html", {"page_title": "Home"})
