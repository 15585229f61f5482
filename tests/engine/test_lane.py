"""Group commit (`Database.group`) and the API's write lane (`engine/lane.py`).

On SQLite the lane runs the commands queued since its last commit in one transaction (each in
its own savepoint if one fails after writing); on PostgreSQL it runs each command alone in a
worker thread. Either way an answer means "stored", a refused command writes nothing, and the
others are unaffected.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from conftest import World, count, snapshot
from helpers import open_objection

from engine.db import Slot
from engine.lane import WriteLane
from engine.service import SYSTEM
from states.errors import RedressError, StaleVersion, TransitionNotAllowed


def test_group_commits_the_good_and_rolls_back_each_refusal_alone(world: World) -> None:
    eng = world.engine
    handler = world.actor("office_handler")
    a, b, c = (open_objection(world) for _ in range(3))
    before = snapshot(eng)

    def half_done_then_fails(slot: Slot) -> None:
        # Writes, then fails: its savepoint must take its own writes back with it.
        with slot.tx() as tx:
            tx.execute(
                "UPDATE cases SET assignee_id = NULL, version = 99 WHERE id = :id",
                {"id": b.case_id},
            )
            raise TransitionNotAllowed("accept", "submitted", [])

    outcomes = eng.db.group(
        [
            lambda g: eng.advance(a.case_id, "accept", handler, {}, 1, within=g),
            half_done_then_fails,
            lambda g: eng.advance(b.case_id, "accept", handler, {}, 5, within=g),  # stale: refused
            lambda g: eng.advance(c.case_id, "accept", handler, {}, 1, within=g),
        ]
    )
    oks = [ok for ok, _ in outcomes]
    assert oks == [True, False, False, True]
    assert isinstance(outcomes[1][1], TransitionNotAllowed)
    assert isinstance(outcomes[2][1], StaleVersion) and outcomes[2][1].current == 1
    assert [outcomes[0][1].version, outcomes[3][1].version] == [2, 2]
    assert eng.case_view(b.case_id, SYSTEM)["version"] == 1  # the failed writes are gone
    after = snapshot(eng)
    assert after["case_events"] == before["case_events"] + 2
    assert eng.verify_audit() == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_refusals_cost_no_savepoints_and_a_write_then_failure_reruns_the_group(
    world: World,
) -> None:
    # On SQLite a group first runs without savepoints (two statements a command): a refusal
    # made before writing has nothing to take back. A command that fails after writing,
    # even one that catches its own error, sends the group round again with savepoints.
    eng = world.engine
    handler = world.actor("office_handler")
    a, b, c = (open_objection(world) for _ in range(3))
    statements: list[str] = []
    raw = eng.db.writer_connection()
    raw.set_trace_callback(statements.append)
    try:
        outcomes = eng.db.group(
            [
                lambda g: eng.advance(a.case_id, "accept", handler, {}, 1, within=g),
                # b at version 5: stale, refused
                lambda g: eng.advance(b.case_id, "accept", handler, {}, 5, within=g),
                lambda g: eng.advance(b.case_id, "no_such_trigger", handler, {}, 1, within=g),
            ]
        )
    finally:
        raw.set_trace_callback(None)
    assert [ok for ok, _ in outcomes] == [True, False, False]
    assert eng.db.group_reruns == 0
    assert not [q for q in statements if "SAVEPOINT" in q.upper()], statements

    def swallows_its_own_failure(slot: Slot) -> str:
        try:
            with slot.tx() as tx:
                tx.execute("UPDATE cases SET version = 99 WHERE id = :id", {"id": c.case_id})
                raise RuntimeError("half done")
        except RuntimeError:
            return "carried on"

    outcomes = eng.db.group(
        [
            lambda g: eng.advance(b.case_id, "accept", handler, {}, 1, within=g),
            swallows_its_own_failure,
            lambda g: eng.advance(c.case_id, "accept", handler, {}, 1, within=g),
        ]
    )
    assert outcomes[1] == (True, "carried on") and eng.db.group_reruns == 1
    assert [outcomes[0][1].version, outcomes[2][1].version] == [2, 2]  # c's write was undone
    assert eng.case_view(c.case_id, SYSTEM)["version"] == 2
    assert eng.verify_audit() == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failed_commit_stores_nothing_and_answers_everyone_with_the_error(
    world: World,
) -> None:
    eng = world.engine
    handler = world.actor("office_handler")
    a, b = open_objection(world), open_objection(world)
    before = snapshot(eng)

    def breaks_the_commit(within: Slot) -> None:
        # A foreign-key violation deferred to COMMIT: every savepoint succeeds, the commit not.
        with within.tx() as tx:
            tx.execute("PRAGMA defer_foreign_keys = ON")
            tx.execute("UPDATE cases SET record_id = 999999 WHERE id = :id", {"id": b.case_id})

    lane = WriteLane(eng.db, max_group=8)

    async def main() -> list[Any]:
        # Queued in one iteration of the loop, so all three go into one group.
        return await asyncio.gather(
            lane.run(eng.advance, a.case_id, "accept", handler, {}, 1),
            lane.run(breaks_the_commit),
            lane.run(eng.advance, b.case_id, "accept", handler, {}, 1),
            return_exceptions=True,
        )

    errors = asyncio.run(main())
    assert all("FOREIGN KEY" in str(e) for e in errors), errors
    assert snapshot(eng) == before
    assert eng.case_view(a.case_id, SYSTEM)["version"] == 1
    assert lane.groups == 0
    # The writer's connection is usable again.
    out = asyncio.run(lane.run(eng.advance, a.case_id, "accept", handler, {}, 1))
    assert out.version == 2


def test_lane_groups_concurrent_commands_and_answers_each(world: World) -> None:
    eng = world.engine
    handler = world.actor("office_handler")
    cases = [open_objection(world) for _ in range(24)]
    events = count(eng, "case_events")
    lane = WriteLane(eng.db, max_group=8)

    async def main() -> list[Any]:
        async def one(cid: int, version: int) -> Any:
            try:
                return await lane.run(eng.advance, cid, "accept", handler, {}, version)
            except RedressError as exc:
                return exc

        # Every fourth command is stale: refused alone, the rest of its group goes through.
        return await asyncio.gather(
            *(one(c.case_id, 1 if i % 4 else 7) for i, c in enumerate(cases))
        )

    results = asyncio.run(main())
    stale = [r for r in results if isinstance(r, StaleVersion)]
    done = [r for r in results if not isinstance(r, Exception)]
    assert len(stale) == 6 and len(done) == 18
    assert all(r.state == "accepted" and r.version == 2 for r in done)
    assert count(eng, "case_events") == events + 18
    if eng.db.dialect == "sqlite":
        # Queued in one iteration of the loop: committed in groups of at most max_group.
        assert lane.commands == 24
        assert lane.groups == 3
    assert eng.verify_audit() == []


def test_lane_sixteen_concurrent_advances_on_one_case_one_wins(world: World) -> None:
    eng = world.engine
    case = open_objection(world)
    handler = world.actor("office_handler")
    events = count(eng, "case_events")
    lane = WriteLane(eng.db)

    async def main() -> list[Any]:
        async def one() -> Any:
            try:
                return await lane.run(eng.advance, case.case_id, "accept", handler, {}, 1)
            except RedressError as exc:
                return exc

        return await asyncio.gather(*(one() for _ in range(16)))

    results = asyncio.run(main())
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, StaleVersion) for r in results) == 15
    assert count(eng, "case_events") == events + 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lane_never_holds_up_the_loop_behind_another_writer(world: World) -> None:
    # A sweep (another thread) is writing: the lane's group waits for it in a worker thread,
    # and the event loop goes on (here: a ticker every 10 ms) until the group is answered.
    eng = world.engine
    handler = world.actor("office_handler")
    case = open_objection(world)
    lane = WriteLane(eng.db)
    holding, release = threading.Event(), threading.Event()

    def sweep_like() -> None:
        with eng.db.tx() as tx:
            tx.execute("UPDATE departments SET name_en = name_en")
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=sweep_like)
    writer.start()
    assert holding.wait(10)

    async def main() -> tuple[Any, int]:
        ticks = 0
        advance = asyncio.ensure_future(
            lane.run(eng.advance, case.case_id, "accept", handler, {}, 1)
        )
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, release.set)
        while not advance.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await advance, ticks

    result, ticks = asyncio.run(main())
    writer.join(10)
    assert result.version == 2 and result.state == "accepted"
    assert ticks >= 15  # the loop ran all along (0.3 s at 10 ms a tick)
    assert lane.handed_off == 1 and lane.groups == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_writers_in_one_process_queue_instead_of_busy_waiting(world: World) -> None:
    # Two threads writing at once: the second waits on the in-process lock, not on SQLite's
    # busy handler, so it starts the moment the first commits.
    eng = world.engine
    holding = threading.Event()
    released_at: list[float] = []
    started_at: list[float] = []

    def first() -> None:
        with eng.db.tx() as tx:
            tx.execute("UPDATE departments SET name_en = name_en")
            holding.set()
            time.sleep(0.3)
            released_at.append(time.monotonic())

    def second() -> None:
        holding.wait(10)
        with eng.db.tx() as tx:
            started_at.append(time.monotonic())
            tx.execute("UPDATE departments SET name_en = name_en")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert started_at and released_at
    assert 0 <= started_at[0] - released_at[0] < 0.05
