"""A long-running process plans each statement for its parameters on PostgreSQL, so lookups
keep using their index however much a table has grown since the process started."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db.session import Database, plan_each_statement_for_its_parameters
from app.settings import Settings


def test_the_listener_engine_never_reuses_a_generic_plan(database_url: str) -> None:
    database = Database(Settings(_env_file=None, database_url=database_url))
    try:
        plan_each_statement_for_its_parameters(database.engine)
        with database.engine.connect() as connection:
            if database.engine.dialect.name != "postgresql":
                pytest.skip("plan caching is PostgreSQL's")
            # Still set after the pool's reset-on-return rolled a transaction back.
            connection.rollback()
            mode = connection.execute(text("SHOW plan_cache_mode")).scalar_one()
    finally:
        database.dispose()

    assert mode == "force_custom_plan"
