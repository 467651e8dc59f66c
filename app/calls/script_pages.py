"""Managers' pages for call scripts and the SOP: the list, adding a specialty's own script,
editing with a preview, a side-by-side comparison of two versions, and restoring an earlier
version. The work and its audit are in `documents.py` and `actions.py`; these pages only
read the form, call them and render.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.calls import actions, documents
from app.calls.pages import _demoted, _usernames
from app.db.session import SessionDep
from app.errors import DomainError, InvalidInputError
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]

NOTICES = {
    "saved": "The new version was saved. Calls from now on show it.",
    "unchanged": "Nothing was saved: the text is the same as the current version.",
    "reverted": "The earlier version was restored as a new version. Calls from now on show it.",
    "created": "The specialty's script was added, starting from the base script. Edit it below.",
}
# A problem with the form, keyed by the field the error summary links to.
Problem = tuple[str, str]


def _problems(error: DomainError, default_field: str) -> list[Problem]:
    found = [
        (str(item.get("field", default_field)), str(item["message"])) for item in error.details
    ]
    return found or [(default_field, error.message)]


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _list_page(
    request: Request,
    session: Session,
    *,
    problems: list[Problem] | None = None,
    status_code: int = 200,
) -> Response:
    documents.ensure_default_documents(session)
    latest = documents.latest_documents(session)
    return render(
        request,
        "calls/scripts.html",
        {
            "page_title": "Call scripts and SOP",
            "documents": [latest[slug] for slug in sorted(latest)],
            "users": _usernames(
                session, {doc.created_by for doc in latest.values() if doc.created_by}
            ),
            "specialties": [
                ("", "Choose a specialty"),
                *documents.missing_specialty_scripts(session),
            ],
            "problems": problems or [],
            "errors": dict(problems or []),
        },
        status_code=status_code,
    )


@router.get("/manage/scripts")
def scripts(request: Request, session: SessionDep, _manager: Manager) -> Response:
    return _list_page(request, session)


@router.post("/manage/scripts")
async def add_specialty_script(request: Request, session: SessionDep, manager: Manager) -> Response:
    form = await request.form()
    code = str(form.get("specialty") or "").strip()
    try:
        document = actions.add_specialty_script(session, code=code, user_id=manager.id)
    except DomainError as error:
        session.rollback()
        return _list_page(
            request, session, problems=_problems(error, "specialty"), status_code=error.status_code
        )
    return RedirectResponse(f"/manage/scripts/{document.slug}?notice=created", status_code=303)


def _script_page(
    request: Request,
    session: Session,
    slug: str,
    *,
    body: str | None = None,
    preview: bool = False,
    problems: list[Problem] | None = None,
    status_code: int = 200,
) -> Response:
    versions = documents.list_versions(session, slug)
    text = versions[0].body if body is None else body
    errors: dict[str, str] = {}
    for field, message in problems or []:
        errors[field] = f"{errors[field]} {message}" if field in errors else message
    return render(
        request,
        "calls/script_edit.html",
        {
            "page_title": f"Edit {versions[0].title}",
            "slug": slug,
            "current": versions[0],
            "versions": versions,
            "body": text,
            "preview_html": _demoted(documents.render_markdown(text))
            if preview or body is None
            else None,
            "users": _usernames(session, {version.created_by for version in versions}),
            "problems": problems or [],
            "errors": errors,
            "notice": _notice(request) if body is None else None,
        },
        status_code=status_code,
    )


@router.get("/manage/scripts/{slug}")
def edit_script(slug: str, request: Request, session: SessionDep, _manager: Manager) -> Response:
    return _script_page(request, session, slug)


@router.post("/manage/scripts/{slug}")
async def save_script(
    slug: str, request: Request, session: SessionDep, manager: Manager
) -> Response:
    form = await request.form()
    body = str(form.get("body") or "")
    documents.list_versions(session, slug)  # 404 for an unknown document
    if form.get("action") == "preview":
        # Shown escaped as the call screen would; what a save would refuse is listed too.
        warnings = [("body", problem) for problem in documents.unsafe_markdown_problems(body)]
        return _script_page(request, session, slug, body=body, preview=True, problems=warnings)
    try:
        saved = actions.save_document(session, slug=slug, body=body, user_id=manager.id)
    except InvalidInputError as error:
        session.rollback()
        return _script_page(
            request, session, slug, body=body, problems=_problems(error, "body"), status_code=422
        )
    notice = "saved" if saved.changed else "unchanged"
    return RedirectResponse(f"/manage/scripts/{slug}?notice={notice}", status_code=303)


@router.get("/manage/scripts/{slug}/compare")
def compare_versions(
    slug: str,
    request: Request,
    session: SessionDep,
    _manager: Manager,
    old: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    new: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    """Two versions side by side (by default the one before the current, and the current)."""
    versions = documents.list_versions(session, slug)
    by_number = {version.version: version for version in versions}
    newer = documents.get_version(session, slug, new) if new else versions[0]
    if old:
        older = documents.get_version(session, slug, old)
    else:
        older = by_number.get(newer.version - 1, newer)
    return render(
        request,
        "calls/script_compare.html",
        {
            "page_title": f"Compare versions of {versions[0].title}",
            "slug": slug,
            "current": versions[0],
            "versions": versions,
            "older": older,
            "newer": newer,
            "rows": documents.compare(older.body, newer.body),
        },
    )


@router.post("/manage/scripts/{slug}/revert")
async def revert_script(
    slug: str, request: Request, session: SessionDep, manager: Manager
) -> Response:
    form = await request.form()
    text = str(form.get("version") or "").strip()
    documents.list_versions(session, slug)  # 404 for an unknown document
    if not (text.isdigit() and len(text) <= 7):
        return _script_page(
            request,
            session,
            slug,
            problems=[("version", "Choose a version to restore from the list")],
            status_code=422,
        )
    try:
        saved = actions.revert_document(session, slug=slug, version=int(text), user_id=manager.id)
    except InvalidInputError as error:
        session.rollback()
        return _script_page(
            request, session, slug, problems=_problems(error, "body"), status_code=422
        )
    notice = "reverted" if saved.changed else "unchanged"
    return RedirectResponse(f"/manage/scripts/{slug}?notice={notice}", status_code=303)
