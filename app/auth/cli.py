"""`navigator users ...`: accounts from the command line (the first admin starts here)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.auth import service
from app.auth.roles import Role
from app.clock import current_clock
from app.console import JsonFlag, emit, fail, handles_domain_errors
from app.db.session import Database
from app.settings import get_settings

users_app = typer.Typer(help="Accounts and roles.", no_args_is_help=True)


def _read_password() -> str:
    """From standard input when it is not a terminal (scripts), else a hidden prompt twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create")
@handles_domain_errors
def create(
    username: Annotated[str, typer.Argument(help="Sign-in name (not the person's full name).")],
    role: Annotated[Role, typer.Option(help="navigator, manager or admin.")] = Role.NAVIGATOR,
    as_json: JsonFlag = False,
) -> None:
    """Create an account; the password is read from standard input or a prompt."""
    password = _read_password()
    if not password:
        raise fail("no password given on standard input")
    database = Database(get_settings())
    try:
        with database.unit_of_work() as session:
            user = service.create_user(session, username=username, role=role, password=password)
            result = {"id": user.id, "username": user.username, "role": user.role}
    finally:
        database.dispose()
    emit(result, f"Created {result['role']} account {result['username']}.", as_json=as_json)


@users_app.command("list")
@handles_domain_errors
def list_users(as_json: JsonFlag = False) -> None:
    """List accounts with their role and status."""
    database = Database(get_settings())
    now = current_clock().now()
    try:
        with database.unit_of_work() as session:
            users = [
                {
                    "id": user.id,
                    "username": user.username,
                    "role": user.role,
                    "active": user.active,
                    "locked": user.locked_until is not None and user.is_locked(now),
                    "last_login": user.last_login,
                }
                for user in service.list_users(session)
            ]
    finally:
        database.dispose()
    lines = [f"{len(users)} account(s)"]
    for user in users:
        status = "deactivated" if not user["active"] else "locked" if user["locked"] else "active"
        lines.append(f"  {user['username']:<24} {user['role']:<10} {status}")
    emit({"users": users}, "\n".join(lines), as_json=as_json)


@users_app.command("unlock")
@handles_domain_errors
def unlock(
    username: Annotated[str, typer.Argument(help="The locked account.")],
    as_json: JsonFlag = False,
) -> None:
    """Clear an account's lockout and failed attempts (for example the only admin's)."""
    database = Database(get_settings())
    try:
        with database.unit_of_work() as session:
            user = service.get_user_by_username(session, username)
            service.unlock(session, user_id=user.id, changed_by=None)
            name = user.username
    finally:
        database.dispose()
    emit({"username": name, "unlocked": True}, f"Unlocked {name}.", as_json=as_json)


@users_app.command("set-password")
@handles_domain_errors
def set_password(
    username: Annotated[str, typer.Argument(help="The account.")],
    as_json: JsonFlag = False,
) -> None:
    """Set a new password (standard input or a prompt); signs the account out everywhere."""
    password = _read_password()
    if not password:
        raise fail("no password given on standard input")
    database = Database(get_settings())
    try:
        with database.unit_of_work() as session:
            user = service.get_user_by_username(session, username)
            service.set_password(session, user_id=user.id, password=password, changed_by=None)
            name = user.username
    finally:
        database.dispose()
    emit({"username": name, "password_set": True}, f"New password set for {name}.", as_json=as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
