"""Demo accounts for `navigator demo` (development only: the demo runs on embedded SQLite)."""

from __future__ import annotations

from sqlalchemy import select

from app.auth import service
from app.auth.roles import Role
from app.auth.tables import User
from app.db.session import Database

# Printed by `navigator demo`; refused outside development.
DEMO_PASSWORD = "demo only, not for live use"  # noqa: S105 - a published demo password
DEMO_ACCOUNTS = {
    "demo.navigator": Role.NAVIGATOR,
    "demo.manager": Role.MANAGER,
    "demo.admin": Role.ADMIN,
}


def ensure_demo_accounts(database: Database) -> str:
    """Create the demo accounts that do not exist yet; returns a one-line summary."""
    if database.settings.env != "development":
        return "skipped outside development"
    with database.unit_of_work() as session:
        existing = set(session.scalars(select(User.username)))
        for username, role in DEMO_ACCOUNTS.items():
            if username not in existing:
                service.create_user(session, username=username, role=role, password=DEMO_PASSWORD)
    names = ", ".join(DEMO_ACCOUNTS)
    return f"{names} (password: {DEMO_PASSWORD})"
