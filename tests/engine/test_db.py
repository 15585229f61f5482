"""engine/db.py on SQLite: the writer's own connection and the WAL checkpointer's thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import World, snapshot
from helpers import open_objection

from engine.db import WAL_BACKSTOP_PAGES, Checkpointer, Database
from engine.migrate import upgrade
from engine.service import SYSTEM
from engine.settings import get_settings

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_writes_share_one_connection_and_survive_a_failed_commit(world: World) -> None:
    db = world.engine.db
    with db.tx() as tx:
        first = tx._raw
    with db.tx() as tx:
        assert tx._raw is first  # no pool checkout per write
    handler = world.actor("office_handler")
    case = open_objection(world)
    before = snapshot(world.engine)
    with pytest.raises(Exception, match="FOREIGN KEY"), db.tx() as tx:
        tx.execute("PRAGMA defer_foreign_keys = ON")
        tx.execute("UPDATE cases SET record_id = 999999 WHERE id = :id", {"id": case.case_id})
    assert snapshot(world.engine) == before  # the failed COMMIT was rolled back
    # The next writer works as usual.
    assert world.engine.advance(case.case_id, "accept", handler, {}, 1).version == 2
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "accepted"


@SQLITE_ONLY
def test_connections_leave_checkpoints_to_the_thread_with_a_high_backstop(
    database: Database,
) -> None:
    with database.read() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == WAL_BACKSTOP_PAGES >= 5000


@SQLITE_ONLY
def test_reads_go_through_a_memory_map(database: Database) -> None:
    with database.read() as conn:
        mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
    assert mapped == get_settings().sqlite_mmap_bytes > 2**30


def test_the_checkpointer_copies_the_wal_after_commits_and_stops_when_idle(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ck.db'}", pool_size=2)
    try:
        upgrade(db.engine)
        ck = db.checkpointer
        assert isinstance(ck, Checkpointer)
        ck.stop()  # replace it with a quick one for the test
        ck = db.checkpointer = Checkpointer(db.engine, every_s=0.02, idle_s=0.2)
        with db.tx() as tx:
            tx.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, v TEXT)")
        for i in range(200):
            with db.tx() as tx:
                tx.execute("INSERT INTO filler (v) VALUES (:v)", {"v": f"{i}" * 2000})
        deadline = time.monotonic() + 10
        while ck.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ck.checkpoints >= 1
        # Everything in the WAL has been copied into the database: a further PASSIVE
        # checkpoint finds nothing left to do (frames checkpointed == frames in the log).
        busy, log_frames, done = ck.checkpoint()
        assert busy == 0 and log_frames == done and log_frames > 0
        worker = ck._thread
        assert worker is not None
        worker.join(10)  # idle for 0.2 s: it stops
        assert not worker.is_alive() and ck._thread is None
        with db.tx() as tx:  # the next commit starts it again
            tx.execute("DELETE FROM filler WHERE id = 1")
        assert ck._thread is not None
    finally:
        db.dispose()
    assert db.checkpointer is not None and db.checkpointer._thread is None


def test_an_in_memory_database_has_no_checkpointer() -> None:
    db = Database("sqlite:///:memory:", pool_size=1)
    try:
        assert db.checkpointer is None
    finally:
        db.dispose()


def _steady_writes(tmp_path: Path, name: str, rewind_frames: int | None) -> tuple[int, int]:
    """Write without pause beside a quick checkpointer: (largest WAL in pages,
    writer-side rewinds)."""
    db = Database(f"sqlite:///{tmp_path / name}", pool_size=2)
    try:
        upgrade(db.engine)
        assert db.checkpointer is not None
        db.checkpointer.stop()
        ck = db.checkpointer = Checkpointer(
            db.engine, every_s=0.01, idle_s=5, rewind_frames=rewind_frames
        )
        with db.tx() as tx:
            tx.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, v TEXT)")
        wal = tmp_path / f"{name}-wal"
        # A fixed number of one-page commits, more than the backstop holds, without pause.
        largest = 0
        for _ in range(WAL_BACKSTOP_PAGES * 12 // 10 // 20):
            for _ in range(20):
                with db.tx() as tx:
                    tx.execute("INSERT INTO filler (v) VALUES (:v)", {"v": "x" * 200})
            largest = max(largest, wal.stat().st_size // 4096)
        return largest, ck.rewinds
    finally:
        db.dispose()


def test_under_steady_writes_the_wal_starts_over_instead_of_growing_to_the_backstop(
    tmp_path: Path,
) -> None:
    # Without the writer's part, passes copy every frame yet the next write always lands
    # first: the WAL only grows, until a writer's COMMIT checkpoints it all itself.
    grown, _ = _steady_writes(tmp_path, "plain.db", rewind_frames=None)
    assert grown > WAL_BACKSTOP_PAGES * 0.8
    # With it, the WAL starts over many times and never reaches the backstop. (The file
    # keeps its largest size, which depends on how fast this machine writes: 1,600-2,300
    # pages on a quiet one, 6,400 once under CI's load.)
    kept, rewinds = _steady_writes(tmp_path, "rewound.db", rewind_frames=300)
    assert rewinds >= 2
    assert kept < WAL_BACKSTOP_PAGES * 0.9, f"the WAL reached {kept} pages"
