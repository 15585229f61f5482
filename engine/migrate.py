"""Database migrations (Alembic), run from code so that `redress db upgrade` needs no ini file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(conn: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate, then deploy the built-in procedure files (a no-op for those stored before):
    one way in for every definition, the built-in ones included (engine/definitions.py)."""
    if engine.dialect.name == "sqlite":
        _ensure_sqlite_dir(engine)
    with _migrating(engine) as conn:
        command.upgrade(alembic_config(conn), revision)
        if revision == "head":
            from engine.definitions import catalog, install_builtin
            from engine.settings import get_settings

            cat = catalog(get_settings().extra_roles)
            install_builtin(conn, cat, datetime.now(UTC))


def downgrade(engine: sa.Engine, revision: str) -> None:
    with _migrating(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


@contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction for the whole migration. On SQLite, changing a table's columns means
    rebuilding it (copy, drop, rename), which foreign keys from other tables forbid: they are
    switched off for the migration (possible only outside a transaction, as Alembic advises),
    and every reference is checked before the commit instead."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken references: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def current(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    from alembic.script import ScriptDirectory

    head_rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_rev is not None
    return head_rev


def is_current(engine: sa.Engine) -> bool:
    return current(engine) == head()


def revision(engine: sa.Engine, message: str) -> None:
    """Autogenerate a new migration against `engine` (developers only)."""
    with engine.begin() as conn:
        command.revision(alembic_config(conn), message=message, autogenerate=True)


def _ensure_sqlite_dir(engine: sa.Engine) -> None:
    db = engine.url.database
    if db and db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
