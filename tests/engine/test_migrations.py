"""Alembic migrations: head matches the schema the code declares; down and up again works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import Database
from engine.migrate import current, downgrade, head, upgrade
from engine.schema import metadata


def test_head_matches_declared_schema(database: Database) -> None:
    assert current(database.engine) == head()
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), metadata
        )
    assert diff == []


def test_downgrade_to_nothing_and_up_again(database: Database) -> None:
    downgrade(database.engine, "base")
    assert current(database.engine) is None
    upgrade(database.engine)
    assert current(database.engine) == head()
