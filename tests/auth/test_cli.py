"""`navigator users create|list`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth.passwords import verify_password
from app.auth.tables import User
from app.cli import app
from app.settings import Settings, get_settings
from tests.clock import TEST_NOW


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_the_first_admin_is_created_from_standard_input(session: Session) -> None:
    result = CliRunner().invoke(
        app,
        ["users", "create", "First.Admin", "--role", "admin", "--json"],
        input="tangerine ladder window\n",
    )

    assert result.exit_code == 0, result.output
    user = session.scalars(select(User)).one()
    assert json.loads(result.stdout) == {"id": user.id, "username": "first.admin", "role": "admin"}
    assert user.role == "admin"
    assert verify_password(user.password_hash, "tangerine ladder window")


@pytest.mark.usefixtures("cli_env")
def test_a_weak_password_is_refused_with_a_clear_message(session: Session) -> None:
    result = CliRunner().invoke(app, ["users", "create", "weakling"], input="password1234\n")

    assert result.exit_code == 1
    assert "too common" in result.output
    assert session.scalars(select(User)).all() == []


@pytest.mark.usefixtures("cli_env")
def test_users_are_listed_with_role_and_status() -> None:
    runner = CliRunner()
    runner.invoke(app, ["users", "create", "nav.one"], input="tangerine ladder window\n")
    runner.invoke(
        app, ["users", "create", "man.two", "--role", "manager"], input="orbit marmalade kettle\n"
    )

    human = runner.invoke(app, ["users", "list"])
    as_json = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)

    assert human.exit_code == 0
    assert "2 account(s)" in human.stdout
    assert "man.two" in human.stdout
    assert [(u["username"], u["role"], u["active"]) for u in as_json["users"]] == [
        ("man.two", "manager", True),
        ("nav.one", "navigator", True),
    ]


@pytest.mark.usefixtures("cli_env")
def test_a_locked_out_admin_is_unlocked_and_given_a_new_password_from_the_shell(
    session: Session,
) -> None:
    runner = CliRunner()
    runner.invoke(
        app, ["users", "create", "only.admin", "--role", "admin"], input="orbit kettle tea\n"
    )
    session.execute(update(User).values(locked_until=TEST_NOW + timedelta(minutes=15)))
    session.commit()

    unlocked = runner.invoke(app, ["users", "unlock", "Only.Admin"])
    changed = runner.invoke(
        app, ["users", "set-password", "only.admin", "--json"], input="lantern meadow cobalt\n"
    )
    missing = runner.invoke(app, ["users", "unlock", "nobody"])

    assert unlocked.exit_code == 0, unlocked.output
    assert "Unlocked only.admin." in unlocked.stdout
    assert json.loads(changed.stdout) == {"username": "only.admin", "password_set": True}
    assert missing.exit_code == 1
    assert "No account with that username" in missing.output
    session.expire_all()
    user = session.scalars(select(User)).one()
    assert user.locked_until is None
    assert verify_password(user.password_hash, "lantern meadow cobalt")
