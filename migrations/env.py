"""Alembic environment: runs migrations against the URL Navigator's settings name.

Every migration must run up and down on both SQLite (batch mode for ALTERs) and PostgreSQL
(with a lock timeout so a migration never queues behind live traffic indefinitely).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from app.db.registry import metadata
from app.db.session import create_db_engine
from app.settings import get_settings

config = context.config


def run_migrations(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET lock_timeout = '10s'"))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `navigator db upgrade`")
run_migrations_online()
