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
SQLite transaction (group commit, as `engine/lane.py` uses it): a command that fails rolls back
alone, and nobody is answered before the commit.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from engine import dialects
from engine.settings import get_settings

log = logging.getLogger(__name__)
WAL_BACKSTOP_PAGES = 10000
# A WAL this long after a checkpointer pass is started over (see Checkpointer): after at most
# TAIL_PASSES more passes, or one that found no more than TAIL_FRAMES new frames.
WAL_REWIND_FRAMES = 1000
TAIL_PASSES, TAIL_FRAMES = 4, 64
_NO_PARAMS: Mapping[str, Any] = {}
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
        _sqlite_setup(eng, settings.sqlite_busy_timeout_ms, settings.sqlite_mmap_bytes)
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


def sqlite_pragmas(busy_ms: int, mmap_bytes: int) -> list[str]:
    """How every SQLite connection is set up (the benchmarks' bare connections too)."""
    return [
        "journal_mode=WAL",
        f"busy_timeout={int(busy_ms)}",
        "foreign_keys=ON",
        # WAL + NORMAL is durable across application crashes; an OS crash may lose the
        # last transactions but never corrupts the database.
        "synchronous=NORMAL",
        # Checkpoints run on the Checkpointer's thread; this is only the backstop should it
        # fall behind (a WAL of this many pages, ~40 MB, makes the committing writer do one).
        f"wal_autocheckpoint={WAL_BACKSTOP_PAGES}",
        f"mmap_size={max(int(mmap_bytes), 0)}",
    ]


def _sqlite_setup(eng: sa.Engine, busy_ms: int, mmap_bytes: int) -> None:
    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: we issue BEGIN ourselves (IMMEDIATE for writes).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in sqlite_pragmas(busy_ms, mmap_bytes):
            cur.execute(f"PRAGMA {pragma}")
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
        cur = self._cur
        cur.execute(to_pyformat(sql) if self._pg else sql, _NO_PARAMS if params is None else params)
        return int(cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        # psycopg's executemany costs ~3x execute for a single row (pipeline setup).
        if len(rows) == 1:
            self._cur.execute(self._sql(sql), rows[0])
        elif rows:
            self._cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        # Both drivers return rows as plain tuples.
        cur = self._cur
        cur.execute(to_pyformat(sql) if self._pg else sql, _NO_PARAMS if params is None else params)
        row: tuple[Any, ...] | None = cur.fetchone()
        return row

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._cur
        cur.execute(to_pyformat(sql) if self._pg else sql, _NO_PARAMS if params is None else params)
        rows: list[tuple[Any, ...]] = cur.fetchall()
        return rows

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return row[0] if row is not None else None


class Database:
    """The engine's handle on one database: a SQLAlchemy engine plus raw transactions."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        # SQLite/PostgreSQL differences for the code above this layer (engine/dialects.py).
        self.strategy = dialects.for_name(self.dialect)
        # SQLite's one writer, queued in this process (see the module's docstring).
        self._writer = threading.Lock() if self.dialect == "sqlite" else None
        self.group_reruns = 0  # groups run again with savepoints (see `_group`), for tests
        self._write_fairy: Any = None  # SQLite: the writer's own pooled connection, kept
        memory = ":memory:" in url or "mode=memory" in url or url.rstrip("/") == "sqlite:"
        self.checkpointer = (
            Checkpointer(self.engine) if self.dialect == "sqlite" and not memory else None
        )

    def tx(self, readonly: bool = False) -> AbstractContextManager[Tx]:
        """A transaction: committed on success, rolled back on any exception.

        On SQLite a write transaction takes the write lock up front (BEGIN IMMEDIATE);
        a read-only one takes none. A command run in a `group` takes its transaction from
        the `Slot` it is given instead (see `Engine.advance(within=...)`).
        """
        if self._writer is not None and not readonly:
            return _SqliteWrite(self, lock=True)
        return self._pooled_tx()

    @contextmanager
    def _pooled_tx(self) -> Iterator[Tx]:
        fairy = self.engine.raw_connection()
        raw = fairy.driver_connection
        assert raw is not None
        try:
            if self.dialect == "sqlite":
                raw.execute("BEGIN")
            try:
                yield Tx(raw, self.dialect)
            except BaseException:
                raw.rollback() if self.dialect != "sqlite" else raw.execute("ROLLBACK")
                raise
            raw.commit() if self.dialect != "sqlite" else raw.execute("COMMIT")
        finally:
            fairy.close()

    def writer_connection(self) -> Any:
        """The raw connection SQLite writes go through (None elsewhere), e.g. to trace it."""
        if self._writer is None:
            return None
        with self._writer:
            return self._writer_raw()

    def _writer_raw(self) -> Any:
        # The writer lock is held.
        if self._write_fairy is None:
            self._write_fairy = self.engine.raw_connection()
        raw = self._write_fairy.driver_connection
        assert raw is not None
        return raw

    def _drop_writer(self) -> None:
        fairy, self._write_fairy = self._write_fairy, None
        if fairy is not None:
            fairy.invalidate()

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

    def group(
        self, commands: Sequence[Callable[[Slot], Any]], *, wait: bool = True
    ) -> list[tuple[bool, Any]] | None:
        """Run commands in one transaction; commit once. Each command is given its `Slot`,
        whose `tx()` is the transaction it must use (the group's, or a savepoint of it).

        Returns, per command, (True, its result) or (False, the exception it raised; its
        writes rolled back). Every result stands only once this returns: if the commit
        fails, that error is raised and nothing of the group is stored.

        With wait=False on SQLite, returns None at once (running nothing) if another thread
        of this process is writing: the lane then runs the group in a worker thread rather
        than hold up the event loop behind, say, a sweep.
        """
        if self._writer is not None:
            if not self._writer.acquire(blocking=wait):
                return None
            try:
                return self._group(lambda: _SqliteWrite(self, lock=False), commands)
            finally:
                self._writer.release()
        return self._group(self.tx, commands)

    def _group(
        self,
        transaction: Callable[[], AbstractContextManager[Tx]],
        commands: Sequence[Callable[[Slot], Any]],
    ) -> list[tuple[bool, Any]]:
        # A command refused before it writes (a stale version, a trigger not allowed now: the
        # usual refusals) has nothing to take back, so on SQLite the commands first run
        # without savepoints, which cost two statements each. If one fails after writing, the
        # group is rolled back and run again, each command in its own savepoint. PostgreSQL
        # always takes the savepoints: there a failed statement aborts the transaction.
        if self.dialect == "sqlite":
            try:
                return self._run_group(transaction(), commands, savepoints=False)
            except _WroteThenFailed:
                self.group_reruns += 1
        return self._run_group(transaction(), commands, savepoints=True)

    def _run_group(
        self,
        transaction: AbstractContextManager[Tx],
        commands: Sequence[Callable[[Slot], Any]],
        *,
        savepoints: bool,
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with transaction as tx:
            slot = Slot(self, tx._raw, savepoints)
            for command in commands:
                try:
                    outcomes.append((True, command(slot)))
                except Exception as exc:  # the command's own answer, e.g. StaleVersion
                    outcomes.append((False, exc))
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
        if self.checkpointer is not None:
            self.checkpointer.poke()

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        if self._writer is not None:
            with self._writer:
                if self._write_fairy is not None:
                    self._write_fairy.close()
                    self._write_fairy = None
        self.engine.dispose()


class _WroteThenFailed(BaseException):
    """A grouped command's transaction failed after writing, with no savepoint to take its
    writes back. A BaseException, so that a command catching errors cannot swallow it."""


class Slot:
    """A command's place in a group (`Database.group`): `tx()` is the group's transaction,
    or a savepoint of it, passed to the command explicitly rather than found by magic."""

    __slots__ = ("_db", "_raw", "savepoints")

    def __init__(self, db: Database, raw: Any, savepoints: bool) -> None:
        self._db = db
        self._raw = raw
        self.savepoints = savepoints

    def tx(self) -> AbstractContextManager[Tx]:
        if self.savepoints:
            return self._db._savepoint(self._raw)
        return _Joined(Tx(self._raw, self._db.dialect))


class _Joined:
    """A command's transaction inside a group run without savepoints: the group's own. If it
    fails after writing, the whole group is rolled back (and run again with savepoints)."""

    __slots__ = ("_changes", "_tx")

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._changes = 0

    def __enter__(self) -> Tx:
        self._changes = self._tx._raw.total_changes
        return self._tx

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self._tx._raw.total_changes != self._changes:
            raise _WroteThenFailed from exc


class _SqliteWrite:
    """A SQLite write transaction on the writer's own connection.

    There is one writer at a time, so it keeps one connection instead of taking one from the
    pool each time (checkout and return were a tenth of an `advance`). A connection whose
    COMMIT or ROLLBACK failed is dropped; the next writer opens a fresh one. A class rather
    than a generator: this wraps every command, and two generator-based context managers
    per transaction cost more than the BEGIN.
    """

    __slots__ = ("_db", "_lock", "_raw")

    def __init__(self, db: Database, *, lock: bool) -> None:
        self._db = db
        self._lock = db._writer if lock else None  # else the caller holds it
        self._raw: Any = None

    def __enter__(self) -> Tx:
        db = self._db
        if self._lock is not None:
            self._lock.acquire()
        try:
            raw = self._raw = db._writer_raw()
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        return Tx(raw, db.dialect)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        db, raw = self._db, self._raw
        try:
            if exc_type is None:
                try:
                    raw.execute("COMMIT")
                except BaseException:
                    self._rollback()  # COMMIT failed and left the transaction open
                    raise
                if db.checkpointer is not None:
                    db.checkpointer.after_commit(raw)
            else:
                self._rollback()
        finally:
            if self._lock is not None:
                self._lock.release()

    def _rollback(self) -> None:
        raw = self._raw
        if raw.in_transaction:
            try:
                raw.execute("ROLLBACK")
            except Exception:
                self._db._drop_writer()


class Checkpointer:
    """SQLite's WAL checkpoints, on a thread of their own instead of in a writer's COMMIT.

    By default the commit that takes the WAL past 1,000 pages copies them into the database
    and syncs it: a 2-8 ms stall every hundred or so commits, which was most of the mean cost
    of a COMMIT (and the tail of the API's latency). Here a daemon thread runs a PASSIVE
    checkpoint (it never blocks writers or readers) shortly after commits happen; the
    connection's own auto-checkpoint stays on at a high mark as the backstop. The thread
    starts with the first commit and stops when writes have stopped for a while.

    Copying is not enough to keep the WAL short: SQLite starts it over only when a write
    begins with every frame already copied, and under steady load the next write always
    lands while a pass is still copying. The WAL then grew to the backstop and a writer's
    COMMIT checkpointed it itself (87-126 ms every half second: the API's advance tail at 1M
    cases). So once a pass leaves a WAL of `rewind_frames` or more, the thread makes a few
    quick passes more, each copying what came in during the last, and then the writer, right
    after its next COMMIT and still holding the write lock, copies what is left on its own
    connection (`after_commit`). Nothing is written in between, so its next write starts the
    WAL over. The writer waits only for the fsync of those last frames (a few ms); the bulk
    of the copying and syncing stays on the thread.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        every_s: float = 0.05,
        idle_s: float = 5.0,
        rewind_frames: int | None = WAL_REWIND_FRAMES,
    ) -> None:
        self.engine = engine
        self.every_s = every_s
        self.idle_s = idle_s
        self.rewind_frames = rewind_frames  # None: never (tests compare with it)
        self.checkpoints = 0  # passes made, for tests
        self.rewinds = 0  # writer-side checkpoints that copied the whole WAL, for tests
        self._pending = False
        self._rewind = False  # a pass left a long WAL: the writer finishes the copy
        self._guard = threading.Lock()
        self._wake = threading.Event()  # set by stop()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """A commit happened: checkpoint soon. Cheap enough for every commit."""
        self._pending = True
        if self._thread is None:
            with self._guard:
                if self._thread is None and not self._wake.is_set():
                    self._thread = threading.Thread(
                        target=self._work, name="redress-checkpoint", daemon=True
                    )
                    self._thread.start()

    def after_commit(self, raw: Any) -> None:
        """The writer committed on `raw` and still holds the write lock."""
        self.poke()
        if not self._rewind:
            return
        self._rewind = False
        try:
            busy, log_frames, done = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except Exception:  # the commit stands; the backstop still holds
            log.warning("writer-side WAL checkpoint failed", exc_info=True)
            return
        # A reader on an older snapshot can hold frames back; the next pass sets it again.
        if not busy and log_frames == done:
            self.rewinds += 1

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint now: (busy, frames in the WAL, frames checkpointed)."""
        fairy = self.engine.raw_connection()
        try:
            return self._checkpoint(fairy.driver_connection)
        finally:
            fairy.close()

    def _checkpoint(self, raw: Any) -> tuple[int, int, int]:
        row = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        return int(row[0]), int(row[1]), int(row[2])

    def _pass(self) -> None:
        fairy = self.engine.raw_connection()
        try:
            raw = fairy.driver_connection
            busy, log_frames, _done = self._checkpoint(raw)
            if self.rewind_frames is None or busy or log_frames < self.rewind_frames:
                return
            # The WAL is to start over. The writer will wait for the fsync of what is left
            # to copy then, at ~40 us a page (random writes): first leave it only the frames
            # written during one short pass. Each pass copies what came in during the last.
            for _ in range(TAIL_PASSES):
                before = log_frames
                busy, log_frames, _done = self._checkpoint(raw)
                if busy or log_frames < before or log_frames - before <= TAIL_FRAMES:
                    break
            if not busy:
                self._rewind = True
        finally:
            fairy.close()

    def _work(self) -> None:
        idle = 0.0
        while not self._wake.wait(self.every_s):
            if not self._pending:
                idle += self.every_s
                if idle < self.idle_s:
                    continue
                with self._guard:
                    if not self._pending:  # no commit slipped in meanwhile
                        self._thread = None
                        return
            idle = 0.0
            self._pending = False
            try:
                self._pass()
            except Exception:  # a busy or closing database: the backstop still holds
                log.warning("WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        with self._guard:
            thread, self._thread = self._thread, None
            self._wake.set()
        if thread is not None:
            thread.join()
