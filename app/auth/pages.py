"""HTML pages: sign in and out, the admin's user management and the managers' audit log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.auth import audit, service
from app.auth.audit import UnusualAccess, record_audit, unusual_access
from app.auth.audit_words import ACTION_WORDS
from app.auth.dependencies import SESSION_COOKIE, current_user, require_role, verify_csrf
from app.auth.roles import Role
from app.auth.signin import (
    attempt_sign_in,
    clear_session_cookie,
    secure_cookies,
    set_session_cookie,
)
from app.auth.tables import User
from app.clock import get_clock
from app.db.errors import RecordId
from app.db.session import SessionDep
from app.errors import ConflictError, DomainError, TooManyRequestsError
from app.isodate import parse_date_parts
from app.settings import Settings
from app.ui.templating import render

router = APIRouter(include_in_schema=False)

# Every user-administration page: an admin signed in, or a redirect / 403.
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]

SIGN_IN_COOKIE = "navigator_sign_in"
AUDIT_PAGE_SIZE = 50
ROLE_CHOICES = [(role.value, role.label) for role in Role]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# --- signing in and out ---------------------------------------------------------------------
# The sign-in form has no session yet, so its CSRF token is bound to a short-lived random
# cookie instead (stops another site signing a victim in to an account of its choosing).


def _sign_in_token(settings: Settings, nonce: str) -> str:
    key = settings.secret_key.get_secret_value().encode("utf-8")
    return hmac.new(key, b"sign-in:" + nonce.encode("utf-8"), hashlib.sha256).hexdigest()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (open redirect).

    Browsers drop tabs and newlines and read backslashes as slashes, so "/\t/evil.example"
    or "/\\evil.example" would leave the site: anything but plain printable text is refused.
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(not char.isprintable() or char.isspace() for char in target)
    ):
        return "/"
    return target


def _sign_in_page(
    request: Request,
    *,
    username: str = "",
    next_path: str = "/",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    settings = _settings(request)
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "auth/sign_in.html",
        {
            "page_title": "Sign in",
            "username": username,
            "next": safe_next(next_path),
            "sign_in_token": _sign_in_token(settings, nonce),
            "errors": errors or {},
        },
        status_code=status_code,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        secure=secure_cookies(settings),
        samesite="lax",
        path="/sign-in",
    )
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    user: Annotated[User | None, Depends(current_user)],
    next_path: Annotated[str, Query(alias="next")] = "/",
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next_path), status_code=303)
    return _sign_in_page(request, next_path=next_path)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    settings = _settings(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not nonce or not hmac.compare_digest(_sign_in_token(settings, nonce), csrf_token):
        return _sign_in_page(
            request,
            username=username,
            next_path=next_path,
            errors={"username": "Your sign-in page expired. Enter your details again."},
            status_code=400,
        )
    errors = {}
    if not username.strip():
        errors["username"] = "Enter your username"
    if not password:
        errors["password"] = "Enter your password"  # noqa: S105 - a message, not a secret
    if errors:
        return _sign_in_page(
            request, username=username, next_path=next_path, errors=errors, status_code=422
        )
    try:
        result = await attempt_sign_in(request, username, password)
    except DomainError as error:
        page = _sign_in_page(
            request,
            username=username,
            next_path=next_path,
            errors={"username": error.message},
            status_code=error.status_code,
        )
        if isinstance(error, TooManyRequestsError):
            page.headers["Retry-After"] = str(error.retry_after)
        return page
    if result.opened is None:
        return _sign_in_page(
            request,
            username=username,
            next_path=next_path,
            errors={"username": service.SIGN_IN_FAILED},
            status_code=401,
        )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(response, settings, result.opened.token)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    session: SessionDep,
    user: Annotated[User | None, Depends(current_user)],
    _csrf: Annotated[None, Depends(verify_csrf)],
) -> Response:
    service.end_session(session, request.cookies.get(SESSION_COOKIE))
    if user is not None:
        record_audit(session, user_id=user.id, action="sign_out", now=get_clock(request).now())
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(response, _settings(request))
    return response


# --- user management (admin) ----------------------------------------------------------------


def _users_page(
    request: Request,
    session: Session,
    *,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "auth/users.html",
        {
            "page_title": "Users",
            "users": service.list_users(session),
            "now": get_clock(request).now(),
            "roles": ROLE_CHOICES,
            "message": message,
            "errors": errors or {},
        },
        status_code=status_code,
    )


MESSAGES = {
    "created": "Account {name} created.",
    "role": "Role of {name} changed.",
    "deactivated": "Account {name} deactivated and signed out.",
    "activated": "Account {name} reactivated.",
    "unlocked": "Account {name} unlocked.",
}


@router.get("/admin/users")
def users_page(
    request: Request,
    _admin: Admin,
    session: SessionDep,
    done: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    message = MESSAGES[done].format(name=name or "") if done in MESSAGES else None
    return _users_page(request, session, message=message)


def _new_user_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "auth/user_new.html",
        {
            "page_title": "Create a user",
            "values": values or {"username": "", "role": Role.NAVIGATOR.value},
            "roles": ROLE_CHOICES,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/admin/users/new")
def new_user_form(request: Request, _admin: Admin) -> Response:
    return _new_user_page(request)


def _field_errors(error: DomainError, default_field: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for detail in error.details:
        errors.setdefault(str(detail.get("field", default_field)), str(detail.get("message")))
    return errors or {default_field: error.message}


@router.post("/admin/users")
def create_user(
    request: Request,
    admin: Admin,
    session: SessionDep,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    password_confirm: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    values = {"username": username, "role": role}
    errors: dict[str, str] = {}

    def add(field: str, message: str) -> None:
        errors[field] = f"{errors[field]}. {message}" if field in errors else message

    # Every problem at once: the form's own checks and the account rules together.
    if not username.strip():
        add("username", "Enter a username")
    if role not in {r.value for r in Role}:
        add("role", "Select a role")
    if not password:
        add("password", "Enter a password")
    elif password != password_confirm:
        add("password_confirm", "The passwords do not match")
    for problem in service.user_problems(session, username=username, password=password):
        if problem["field"] == "username" and not username.strip():
            continue
        if problem["field"] == "password" and not password:
            continue
        add(problem["field"], problem["message"])
    if not errors:
        try:
            user = service.create_user(
                session, username=username, role=Role(role), password=password, created_by=admin.id
            )
        except DomainError as error:
            errors = _field_errors(error, "username")
        else:
            query = urlencode({"done": "created", "name": user.username})
            return RedirectResponse(f"/admin/users?{query}", status_code=303)
    return _new_user_page(request, values=values, errors=errors, status_code=422)


def _after_change(action: str, user: User) -> Response:
    query = urlencode({"done": action, "name": user.username})
    return RedirectResponse(f"/admin/users?{query}", status_code=303)


@router.post("/admin/users/{user_id}/role")
def change_role(
    user_id: RecordId,
    request: Request,
    admin: Admin,
    session: SessionDep,
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    if role not in {r.value for r in Role}:
        return _users_page(
            request, session, errors={f"role-{user_id}": "Select a role"}, status_code=422
        )
    try:
        user = service.change_role(session, user_id=user_id, role=Role(role), changed_by=admin.id)
    except ConflictError as error:
        session.rollback()
        return _users_page(
            request, session, errors={f"role-{user_id}": error.message}, status_code=409
        )
    return _after_change("role", user)


def _deactivate_page(
    request: Request,
    session: Session,
    account: User,
    admin: User,
    *,
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    refusal = refusal or service.deactivation_refusal(session, account, changed_by=admin.id)
    return render(
        request,
        "auth/user_deactivate.html",
        {
            "page_title": f"Deactivate {account.username}",
            "account": account,
            "refusal": refusal,
            "errors": {"account": refusal} if refusal and status_code != 200 else {},
        },
        status_code=status_code,
    )


@router.get("/admin/users/{user_id}/deactivate")
def confirm_deactivate(
    user_id: RecordId,
    request: Request,
    admin: Admin,
    session: SessionDep,
) -> Response:
    """Deactivating signs the person out at once and stops their work: asked first, and
    when it is not allowed the page says why before anyone presses a button."""
    return _deactivate_page(request, session, service.get_user(session, user_id), admin)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate(
    user_id: RecordId,
    request: Request,
    admin: Admin,
    session: SessionDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if confirm != "yes":
        return RedirectResponse(f"/admin/users/{user_id}/deactivate", status_code=303)
    try:
        user = service.set_active(session, user_id=user_id, active=False, changed_by=admin.id)
    except ConflictError as error:
        session.rollback()
        account = service.get_user(session, user_id)
        return _deactivate_page(
            request, session, account, admin, refusal=error.message, status_code=409
        )
    return _after_change("deactivated", user)


@router.post("/admin/users/{user_id}/activate")
def activate(
    user_id: RecordId,
    admin: Admin,
    session: SessionDep,
) -> Response:
    user = service.set_active(session, user_id=user_id, active=True, changed_by=admin.id)
    return _after_change("activated", user)


@router.post("/admin/users/{user_id}/unlock")
def unlock(
    user_id: RecordId,
    admin: Admin,
    session: SessionDep,
) -> Response:
    user = service.unlock(session, user_id=user_id, changed_by=admin.id)
    return _after_change("unlocked", user)


# --- audit log (managers) -------------------------------------------------------------------
# Filters come from the query string (links, bookmarks) or from the form, which is POSTed so
# that an NHS number never sits in a web address, a browser history or an access log.

Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
AUDIT_FIELDS = ("user_id", "username", "action", "nhs_number", "patient_id")
AUDIT_DATES = ("date", "from", "to")
DATE_LABELS = {"date": "Date", "from": "The first day", "to": "The last day"}


def _parse_day(day: str, month: str, year: str, label: str = "Date") -> date | None:
    if not (day or month or year):
        return None
    try:
        return parse_date_parts(day, month, year)
    except ValueError:
        raise ValueError(f"{label} must be a real date, for example 24 11 2026") from None


@dataclass
class AuditQuery:
    """What the audit page was asked, as typed, and the checked search it makes (None when
    there are errors, every one of them in `errors` by field)."""

    values: dict[str, str]
    errors: dict[str, str]
    checked: audit.CheckedSearch | None


def _whole_number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 12 else None


def _audit_query(
    session: Session, source: Mapping[str, Any], settings: Settings, *, from_form: bool
) -> AuditQuery:
    values = {key: str(source.get(key) or "").strip()[:64] for key in AUDIT_FIELDS}
    for name in AUDIT_DATES:
        for part in ("day", "month", "year"):
            key = f"{name}-{part}"
            values[key] = str(source.get(key) or "").strip()[:6]
    errors: dict[str, str] = {}
    if values["nhs_number"] and not from_form:
        # Never read from a web address: it would be kept in histories and logs.
        errors["nhs_number"] = "Enter the NHS number in the form, not in the web address"
        values["nhs_number"] = ""
    user_id = _whole_number(values["user_id"])
    if values["user_id"] and user_id is None:
        errors["user_id"] = "Choose a user from the list"
    patient_id = _whole_number(values["patient_id"])
    if values["patient_id"] and patient_id is None:
        errors["patient_id"] = "Patient id must be a number"
    if values["action"] and values["action"] not in ACTION_WORDS:
        errors["action"] = "Choose an action from the list"
    days: dict[str, date | None] = {}
    for name in AUDIT_DATES:
        try:
            days[name] = _parse_day(
                values[f"{name}-day"],
                values[f"{name}-month"],
                values[f"{name}-year"],
                DATE_LABELS[name],
            )
        except ValueError as error:
            errors[name] = str(error)
    search = audit.AuditSearch(
        user_id=user_id,
        username=values["username"] or None,
        nhs_number=values["nhs_number"] or None,
        patient_id=patient_id,
        action=values["action"] or None,
        first_day=days.get("from") or days.get("date"),
        last_day=days.get("to") or days.get("date"),
    )
    _, problems = audit.search_problems(session, search)
    for problem in problems:
        errors.setdefault(problem["field"], problem["message"])
    checked = None if errors else audit.check_search(session, search, settings.calendar)
    return AuditQuery(values=values, errors=errors, checked=checked)


def _audit_page(
    request: Request,
    session: Session,
    manager: User,
    source: Mapping[str, Any],
    *,
    from_form: bool,
    page: int = 1,
) -> Response:
    settings = _settings(request)
    query = _audit_query(session, source, settings, from_form=from_form)
    rows: list = []
    total = 0
    findings: list[UnusualAccess] = []
    now = get_clock(request).now()
    first = last = None
    if query.checked is not None:
        filters = query.checked.filters
        first, last = query.checked.first_day, query.checked.last_day
        findings = unusual_access(
            session,
            start=filters.occurred_from or now - timedelta(hours=24),
            end=filters.occurred_to or now,
            calendar=settings.calendar,
            patients_per_hour_limit=settings.audit_unusual_patients_per_hour,
        )
        rows, total = audit.search_audit(
            session,
            filters,
            reader_id=manager.id,
            now=now,
            limit=AUDIT_PAGE_SIZE,
            offset=(page - 1) * AUDIT_PAGE_SIZE,
        )
    if first and last and first != last:
        period = f"{first:%-d %b %Y} to {last:%-d %b %Y}"
    elif first or last:
        period = f"{(first or last):%-d %b %Y}"
    else:
        period = "the last 24 hours"
    users = audit.audit_users(session)
    return render(
        request,
        "auth/audit.html",
        {
            "page_title": "Audit log",
            "rows": rows,
            "total": total,
            "findings": findings,
            "findings_period": period,
            "patients_per_hour_limit": settings.audit_unusual_patients_per_hour,
            "values": query.values,
            "users": [("", "Anyone"), *[(str(user_id), name) for user_id, name in users]],
            "actions": [
                ("", "Any action"),
                *sorted(ACTION_WORDS.items(), key=lambda item: item[1]),
            ],
            "action_words": ACTION_WORDS,
            "date_values": {
                name: {part: query.values[f"{name}-{part}"] for part in ("day", "month", "year")}
                for name in AUDIT_DATES
            },
            "errors": query.errors,
            "timezone": settings.timezone,
            "page": page,
            "has_previous": page > 1,
            "has_next": page * AUDIT_PAGE_SIZE < total,
        },
        status_code=422 if query.errors else 200,
    )


@router.get("/audit")
def audit_page(
    request: Request,
    manager: Manager,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    return _audit_page(request, session, manager, request.query_params, from_form=False, page=page)


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 1 <= int(text) <= 100_000 else 1


@router.post("/audit")
async def audit_search(request: Request, manager: Manager, session: SessionDep) -> Response:
    form = await request.form()
    page = _page_number(str(form.get("page") or "1"))
    return _audit_page(request, session, manager, form, from_form=True, page=page)


@router.post("/audit/export")
async def audit_export(request: Request, manager: Manager, session: SessionDep) -> Response:
    """The filtered entries as CSV (newest first), itself recorded in the audit log."""
    form = await request.form()
    settings = _settings(request)
    query = _audit_query(session, form, settings, from_form=True)
    if query.checked is None:
        return _audit_page(request, session, manager, form, from_form=True)
    export = audit.export_audit(
        session,
        query.checked,
        reader_id=manager.id,
        now=get_clock(request).now(),
        calendar=settings.calendar,
    )
    return csv_attachment(export)


def csv_attachment(export: audit.AuditExport) -> Response:
    """An export as a CSV download; a cut-off one says so in a header."""
    headers = {"Content-Disposition": 'attachment; filename="audit-log.csv"'}
    if export.total > export.rows:
        headers["X-Navigator-Truncated"] = f"{export.rows} of {export.total}"
    return Response(export.text, media_type="text/csv; charset=utf-8", headers=headers)


# --- my account: change my own password -----------------------------------------------------

SignedIn = Annotated[User, Depends(require_role(Role.NAVIGATOR))]
RULES_HINT = (
    "At least 12 characters. Not a common password and not your username. A phrase of "
    "several words works well."
)


def _password_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "auth/account_password.html",
        {
            "page_title": "Change your password",
            "errors": errors or {},
            "notice": notice,
            "hint": RULES_HINT,
        },
        status_code=status_code,
    )


@router.get("/account/password")
def password_form(request: Request, _user: SignedIn) -> Response:
    notice = None
    if request.query_params.get("notice") == "changed":
        notice = "Your password was changed. You were signed out everywhere else."
    return _password_page(request, notice=notice)


@router.post("/account/password")
async def change_password(request: Request, session: SessionDep, user: SignedIn) -> Response:
    form = await request.form()
    try:
        service.change_own_password(
            session,
            user_id=user.id,
            current=str(form.get("current-password") or ""),
            new=str(form.get("new-password") or ""),
            confirm=str(form.get("confirm-password") or ""),
            keep_session_token=getattr(request.state, "session_token", None),
            now=get_clock(request).now(),
        )
    except DomainError as error:
        session.rollback()
        problems: dict[str, str] = {}
        for item in error.details or []:
            field, message = str(item["field"]), str(item["message"])
            problems[field] = f"{problems[field]}. {message}" if field in problems else message
        return _password_page(request, errors=problems, status_code=422)
    return RedirectResponse("/account/password?notice=changed", status_code=303)
