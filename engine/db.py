"""Connections and transactions, for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
`BEGIN IMMEDIATE`: concurrent writers then queue on the database lock instead of failing with
"database is locked" when a reader tries to upgrade. The driver's own transaction handling is
turned off so SQLAlchemy and the engine's hot path both issue that BEGIN themselves.

Commands run on the raw DB-API connection (`Tx`) with SQL written once per dialect: the
SQLAlchemy Core statement machinery costs several times the driver on the hot path (see
docs/BENCHMARKS.md). SQLAlchemy still owns the pool, the schema, migrations and the queries.

SQLite has one writer at a time. Writers in this process queue on an in-process lock before
`BEGIN IMMEDIATE`, so they wait in order instead of in the busy handler's growing sleeps (which
gave the API a p99 of hundreds of milliseconds). `Database.group` runs several commands in one
SQLite transaction, each inside its own savepoint (group commit, as `engine/lane.py` uses it):
a command that fails rolls back alone, and nobody is answered before the commit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from engine.settings import get_settings

_NAMED = re.compile(r"(?<![:\w]):([a-zA-Z_][a-zA-Z0-9_]*)")


@cache
def to_pyformat(sql: str) -> str:
    """`:name` placeholders (sqlite3) to `%(name)s` (psycopg); literal % doubled."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def make_engine(url: str, *, pool_size: int | None = None, echo: bool = False) -> sa.Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        eng = sa.create_engine(
            url,
            echo=echo,
            poolclass=sa.pool.QueuePool,
            pool_size=pool_size or settings.pool_size,
            max_overflow=20,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _sqlite_setup(eng, settings.sqlite_busy_timeout_ms)
        return eng
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size or settings.pool_size,
        max_overflow=20,
        pool_pre_ping=True,
    )


def _sqlite_setup(eng: sa.Engine, busy_ms: int) -> None:
    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: we issue BEGIN ourselves (IMMEDIATE for writes).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL is durable across application crashes; an OS crash may lose the
        # last transactions but never corrupts the database.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Reads take no write lock; everything else queues for it up front.
        if conn.get_execution_options().get("redress_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Tx:
    """One transaction on a raw DB-API connection, with statements in `:name` style."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self._raw = raw
        self.dialect = dialect
        self._cur = raw.cursor()
        self._pg = dialect == "postgresql"

    def _sql(self, sql: str) -> str:
        return to_pyformat(sql) if self._pg else sql

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        self._cur.execute(self._sql(sql), params or {})
        return int(self._cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        # psycopg's executemany costs ~3x execute for a single row (pipeline setup).
        if len(rows) == 1:
            self._cur.execute(self._sql(sql), rows[0])
        elif rows:
            self._cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        self._cur.execute(self._sql(sql), params or {})
        row = self._cur.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self._cur.execute(self._sql(sql), params or {})
        return [tuple(r) for r in self._cur.fetchall()]

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return row[0] if row is not None else None


class Database:
    """The engine's handle on one database: a SQLAlchemy engine plus raw transactions."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        # SQLite's one writer, queued in this process (see the module's docstring).
        self._writer = threading.Lock() if self.dialect == "sqlite" else None
        self._local = threading.local()  # .group: the raw connection of an open group

    @contextmanager
    def tx(self, readonly: bool = False) -> Iterator[Tx]:
        """A transaction: committed on success, rolled back on any exception.

        On SQLite a write transaction takes the write lock up front (BEGIN IMMEDIATE);
        a read-only one takes none. Inside `group` it is a savepoint of the group's
        transaction, so it sees the group's earlier writes.
        """
        grouped = getattr(self._local, "group", None)
        if grouped is not None:
            with self._savepoint(grouped) as t:
                yield t
            return
        fairy = self.engine.raw_connection()
        raw = fairy.driver_connection
        assert raw is not None
        locked = False
        try:
            if self.dialect == "sqlite":
                if not readonly and self._writer is not None:
                    self._writer.acquire()
                    locked = True
                raw.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")
            t = Tx(raw, self.dialect)
            try:
                yield t
            except BaseException:
                raw.rollback() if self.dialect != "sqlite" else raw.execute("ROLLBACK")
                raise
            raw.commit() if self.dialect != "sqlite" else raw.execute("COMMIT")
        finally:
            if locked:
                assert self._writer is not None
                self._writer.release()
            fairy.close()

    @contextmanager
    def _savepoint(self, raw: Any) -> Iterator[Tx]:
        cur = raw.cursor()
        cur.execute("SAVEPOINT redress_cmd")
        try:
            yield Tx(raw, self.dialect)
        except BaseException:
            cur.execute("ROLLBACK TO SAVEPOINT redress_cmd")
            cur.execute("RELEASE SAVEPOINT redress_cmd")
            raise
        cur.execute("RELEASE SAVEPOINT redress_cmd")

    def group(self, commands: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run commands in one transaction, each in its own savepoint; commit once.

        Returns, per command, (True, its result) or (False, the exception it raised; its
        writes rolled back). Every result stands only once this returns: if the commit
        fails, that error is raised and nothing of the group is stored.
        """
        outcomes: list[tuple[bool, Any]] = []
        with self.tx() as tx:
            self._local.group = tx._raw
            try:
                for command in commands:
                    try:
                        outcomes.append((True, command()))
                    except Exception as exc:  # the command's own answer, e.g. StaleVersion
                        outcomes.append((False, exc))
            finally:
                self._local.group = None
        return outcomes

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only SQLAlchemy connection (no write lock taken on SQLite)."""
        with self.engine.connect().execution_options(redress_read=True) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A SQLAlchemy write transaction for rare, non-hot commands (setup, demo data)."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
