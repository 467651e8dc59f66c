from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, ensure_demo_accounts
from app.auth.passwords import verify_password
from app.auth.tables import User
from app.db.session import Database
from app.settings import Settings


def test_demo_accounts_are_created_once_for_each_role(
    settings: Settings, database: Database, session: Session
) -> None:
    demo_database = Database(settings)
    try:
        ensure_demo_accounts(demo_database)
        summary = ensure_demo_accounts(demo_database)
    finally:
        demo_database.dispose()

    users = session.scalars(select(User).order_by(User.username)).all()
    assert {user.username: user.role for user in users} == {
        name: role.value for name, role in DEMO_ACCOUNTS.items()
    }
    assert all(verify_password(user.password_hash, DEMO_PASSWORD) for user in users)
    assert DEMO_PASSWORD in summary
