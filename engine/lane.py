"""The write lane: the API's commands committed in groups on SQLite, on the event loop.

SQLite takes one writer at a time and runs in this process, so a command is CPU work under
the GIL: another thread would not run it any sooner, and handing it to one (a future, a queue,
a wake-up, the GIL passed back and forth) cost about a sixth of an API advance. The lane runs
commands on the event loop instead. A command queues an asyncio future; the first one in an
iteration of the loop schedules a drain (`call_soon`), which runs after the other requests
already read in that iteration have queued theirs. The drain runs them all in one transaction,
each in its own savepoint (`Database.group`): a command that fails rolls back alone, and every
caller is answered only after the commit, so an answer still means "stored". Group commit turns
SQLite's per-transaction cost (the lock, the WAL append) into a per-group one; see
docs/BENCHMARKS.md.

The loop must not wait for another writer. If a thread of this process is writing (a sweep),
the drain hands its group to a worker thread, which waits for the lock there, and the loop
goes on serving reads.

On PostgreSQL commands are not grouped: each command is its own transaction in a worker
thread, because the database runs writers in parallel and a network round trip must not hold
up the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from engine.db import Database, Slot

T = TypeVar("T")
_Item = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class WriteLane:
    """Runs commands through `Database.group` on the event loop (SQLite), or in threads."""

    def __init__(self, db: Database, *, max_group: int = 64) -> None:
        self.db = db
        self.grouped = db.strategy.one_writer
        self.max_group = max_group
        self._pending: list[_Item] = []
        self._scheduled = False
        self.groups = 0  # commits made, for tests and metrics
        self.commands = 0
        self.handed_off = 0  # groups run in a worker thread because another writer was busy

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) as one command and return its result (or raise its error)."""
        if not self.grouped:
            return await to_thread.run_sync(partial(fn, *args))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((partial(fn, *args), fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._drain, loop)
        return await fut

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._pending[: self.max_group]
        del self._pending[: self.max_group]
        if self._pending:  # more than one group's worth: the rest in the next iteration
            loop.call_soon(self._drain, loop)
        else:
            self._scheduled = False
        live = [(cmd, fut) for cmd, fut in items if not fut.done()]  # a caller may be gone
        if not live:
            return
        # Each command runs in the group's transaction, handed to it as `within`.
        commands: list[Callable[[Slot], Any]] = [partial(_within, cmd) for cmd, _ in live]
        try:
            outcomes = self.db.group(commands, wait=False)
        except Exception as exc:  # the commit (or BEGIN) failed: nothing was stored
            self._fail(live, exc)
            return
        if outcomes is None:
            self.handed_off += 1
            task = loop.create_task(self._in_thread(live, commands))
            task.add_done_callback(_quiet)
            return
        self._answer(live, outcomes)

    async def _in_thread(self, live: list[_Item], commands: list[Callable[[Slot], Any]]) -> None:
        try:
            outcomes = await to_thread.run_sync(partial(self.db.group, commands))
        except asyncio.CancelledError:  # the server is stopping: nobody waits for an answer
            for _, fut in live:
                fut.cancel()
            raise
        except Exception as exc:
            self._fail(live, exc)
            return
        assert outcomes is not None  # wait=True always runs the group
        self._answer(live, outcomes)

    def _answer(self, live: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
        self.groups += 1
        self.commands += len(live)
        for (_, fut), (ok, value) in zip(live, outcomes, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    @staticmethod
    def _fail(live: list[_Item], exc: Exception) -> None:
        for _, fut in live:
            if not fut.done():
                fut.set_exception(exc)


def _within(cmd: Callable[..., Any], slot: Slot) -> Any:
    return cmd(within=slot)


def _quiet(task: asyncio.Task[None]) -> None:
    # Its errors went to the callers' futures; nothing is left to report here.
    if not task.cancelled():
        task.exception()
