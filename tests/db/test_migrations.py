"""Every migration runs up and down on the backend under test, and matches the tables."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.db import migrate
from app.db.registry import metadata
from tests.conftest import TEST_DATABASE_URL
from tests.databases import temporary_database


def test_every_migration_runs_up_and_down_and_up_again(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    with temporary_database(TEST_DATABASE_URL, tmp_path) as url:
        for revision in revisions:
            migrate.upgrade(url, revision)
        engine = create_engine(url)
        try:
            assert "appointments" in inspect(engine).get_table_names()
            for revision in reversed(revisions[:-1]):
                migrate.downgrade(url, revision)
            migrate.downgrade(url, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            migrate.upgrade(url)
            assert migrate.current_revision(engine) == migrate.head_revision()
        finally:
            engine.dispose()


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migration_files_are_named_by_date_and_slug() -> None:
    names = [path.name for path in (migrate.PROJECT_ROOT / "migrations" / "versions").glob("*.py")]
    assert names
    for name in names:
        stamp, _, slug = name.partition("_")
        assert len(stamp) == len("2026-11-24-0914"), name
        assert slug.endswith(".py")
