"""Creating and dropping throwaway databases for tests, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def temporary_database(server_url: str, workdir: Path) -> Iterator[str]:
    """Yield the URL of a new empty database on the server `server_url` names."""
    url = make_url(server_url)
    if url.get_backend_name() == "sqlite":
        path = workdir / f"navigator-{uuid.uuid4().hex[:8]}.sqlite3"
        yield f"sqlite:///{path}"
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"navigator_test_{worker}_{uuid.uuid4().hex[:8]}"
    # Pre-ping: the fault tests restart the server between creating and dropping.
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_pre_ping=True
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
