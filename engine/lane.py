"""The write lane: the API's commands on one thread, committed in groups on SQLite.

SQLite takes one writer at a time, so many threads writing only wait for each other — and on a
GIL-bound server each hand-off costs. The lane is one thread that takes every command queued
since its last commit and runs them in one transaction, each in its own savepoint
(`Database.group`): a command that fails rolls back alone, and every caller is answered only
after the commit, so an answer still means "stored". Group commit is what turns SQLite's
per-transaction cost (the lock, the WAL append: about half of an `advance`) into a per-group one;
see docs/BENCHMARKS.md.

On PostgreSQL commands are not grouped: there each command is its own transaction in a worker
thread, as before, because the database runs writers in parallel and a group would only hold
row locks longer.

The thread starts on the first command and stops after a few idle seconds, so an app that is
built and dropped (tests) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from engine.db import Database

T = TypeVar("T")
_Item = tuple[Callable[[], Any], "Future[Any]"]


class WriteLane:
    """Runs commands through `Database.group` on one thread (SQLite), or in threads (others)."""

    def __init__(self, db: Database, *, max_group: int = 64, idle_s: float = 5.0) -> None:
        self.db = db
        self.grouped = db.dialect == "sqlite"
        self.max_group = max_group
        self.idle_s = idle_s
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self.groups = 0  # commits made, for tests and metrics
        self.commands = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) as one command and return its result (or raise its error)."""
        if not self.grouped:
            return await to_thread.run_sync(partial(fn, *args))
        return await asyncio.wrap_future(self.submit(partial(fn, *args)))

    def submit(self, command: Callable[[], T]) -> Future[T]:
        fut = self._enqueue(command)
        self._start()
        return fut

    def _enqueue(self, command: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        self._queue.put((command, fut))
        return fut

    def _start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="redress-lane", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_s)
            except queue.Empty:
                with self._guard:
                    if self._queue.empty():  # nothing slipped in while we timed out
                        self._thread = None
                        return
                continue
            items = [first]
            while len(items) < self.max_group:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run_group(items)

    def _run_group(self, items: list[_Item]) -> None:
        live = [(cmd, fut) for cmd, fut in items if fut.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = self.db.group([cmd for cmd, _ in live])
        except BaseException as exc:  # the commit (or BEGIN) failed: nothing was stored
            for _, fut in live:
                fut.set_exception(exc)
            return
        self.groups += 1
        self.commands += len(live)
        for (_, fut), (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
