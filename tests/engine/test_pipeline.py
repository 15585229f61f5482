"""PostgreSQL: a command's writes and its COMMIT go out together (psycopg pipeline mode).

What is counted is what costs on a network: the times the client waits for the server. In
libpq's protocol trace that is each switch from reading the server's messages back to sending:
an objection's `accept` sent statement by statement waits nine times (BEGIN, seven statements,
COMMIT); sent with its writes together with the COMMIT, three.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import World, count, snapshot
from helpers import open_objection
from psycopg import errors, pq

from engine.db import Database
from engine.migrate import upgrade
from engine.service import Engine
from engine.settings import get_settings

_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)", re.MULTILINE)


@dataclass
class Waits:
    waits: int = 0
    statements: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)  # the message kinds, to read on a failure


@contextmanager
def traced(db: Database) -> Iterator[Waits]:
    """Every connection the pool hands out while this runs is traced (the pre-ping too)."""
    found = Waits()
    files: list[tuple[Any, Any]] = []

    def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        f = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed when the trace is read)
        dbapi_conn.prepare_threshold = None  # every statement's text in its Parse message
        dbapi_conn.pgconn.trace(f.fileno())
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        files.append((dbapi_conn, f))

    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        yield found
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)
        for conn, f in files:
            conn.pgconn.untrace()
            conn.prepare_threshold = 5
            f.seek(0)
            text = f.read().decode("utf-8", "replace")
            f.close()
            messages = list(_MESSAGE.finditer(text))
            found.log = " ".join(m.group(1) + ":" + m.group(2) for m in messages)
            last = "B"
            for i, m in enumerate(messages):
                side, kind = m.group(1), m.group(2)
                if side == "F" and last == "B":
                    found.waits += 1
                last = side
                if side == "F" and kind in ("Parse", "Query"):
                    end = messages[i + 1].start() if i + 1 < len(messages) else len(text)
                    body = text[m.end() : end]
                    parts = body.split('"')
                    statement = parts[3] if kind == "Parse" and len(parts) > 3 else body
                    found.statements.append(" ".join(statement.strip('"').split())[:40])


@pytest.fixture
def pg_world(pg_schema: str, world_factory: Any) -> Iterator[World]:
    yield world_factory(pg_schema)


@pytest.fixture
def world_factory(clock: Any) -> Iterator[Any]:
    from conftest import build_world

    made: list[Database] = []

    def make(url: str) -> World:
        db = Database(url, pool_size=5)
        upgrade(db.engine)
        made.append(db)
        return build_world(Engine(db, clock=clock), clock)

    yield make
    for db in made:
        db.dispose()


def accept_traced(w: World) -> Waits:
    warm, case = open_objection(w), open_objection(w)
    w.engine.advance(warm.case_id, "accept", w.actor("office_handler"), {})  # caches filled
    with traced(w.engine.db) as found:
        done = w.engine.advance(case.case_id, "accept", w.actor("office_handler"), {})
    assert done.state == "accepted"
    return found


def test_an_advance_waits_once_for_its_writes_and_commit(pg_world: World) -> None:
    assert pg_world.engine.db.pipelined
    found = accept_traced(pg_world)
    # 1. BEGIN and the case read (its row locked); 2. the deadlines stopped (their names go
    # into the event), the new one started and those now running (the letter names them);
    # 3. the notices, the case row, the event and COMMIT. (The pool's pre-ping, before the
    # connection is handed out, is one more.)
    assert found.waits == 3, found
    assert found.statements[0] == "BEGIN"
    assert found.statements[-1] == "COMMIT"
    # timers stopped and started, two notices (in-app and mail), the case row, the event
    assert sum(s.startswith(("INSERT", "UPDATE")) for s in found.statements) == 6


def test_without_the_pipeline_each_statement_is_waited_for(
    pg_schema: str, world_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDRESS_PG_PIPELINE", "false")
    get_settings.cache_clear()
    try:
        w = world_factory(pg_schema)
        assert not w.engine.db.pipelined
        found = accept_traced(w)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    # BEGIN, seven statements (the two notices in one executemany), COMMIT: each waited for
    assert found.waits == 9, found


def test_a_write_that_fails_in_the_pipeline_rolls_back_the_whole_command(
    pg_world: World,
) -> None:
    """A deferred write's error comes at the next wait, not at the write: the transaction
    still fails as a whole and nothing of it is stored."""
    w = pg_world
    case = open_objection(w)
    before = snapshot(w.engine)
    with pytest.raises(errors.UniqueViolation), w.engine.db.tx() as tx:
        assert tx.pipelined
        tx.execute("UPDATE cases SET state = 'x' WHERE id = :id", {"id": case.case_id})
        # the submit event again: (case_id, seq) is taken
        tx.execute(
            "INSERT INTO case_events (case_id, seq, trigger, to_state, case_version, actor,"
            " actor_role, at, payload, detail, prev_hash, hash) SELECT case_id, seq, trigger,"
            " to_state, case_version, actor, actor_role, at, payload, detail, prev_hash, hash"
            " FROM case_events"
            " WHERE case_id = :id",
            {"id": case.case_id},
        )
    assert snapshot(w.engine) == before
    got = w.engine.case_view(case.case_id, w.actor("office_handler"))
    assert got["state"] == "submitted"
    # and the pooled connection is usable again
    w.engine.advance(case.case_id, "accept", w.actor("office_handler"), {})
    assert count(w.engine, "case_events") == before["case_events"] + 1


def test_count_waits_for_the_rows_changed(pg_world: World) -> None:
    case = open_objection(pg_world)
    with pg_world.engine.db.tx() as tx:
        assert tx.count("UPDATE cases SET state = state WHERE id = :id", {"id": case.case_id}) == 1
        assert tx.count("UPDATE cases SET state = state WHERE id = -1") == 0
