"""Alembic environment: migrations run on the connection `engine.migrate` hands over."""

from __future__ import annotations

from alembic import context

from engine.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through engine.migrate
    raise RuntimeError("run migrations through `redress db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
