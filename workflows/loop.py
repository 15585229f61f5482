"""The embedded default: both flows every N seconds, on the Prefect API redress started
(workflows/prefect_child.py), in a thread beside the HTTP server. That API cannot schedule
deployments, so this loop is the schedule; for scale-out, `redress deploy` hands the schedule
to a real Prefect server and its workers.

A round that fails is logged and tried again after a short back-off (not a whole interval: a
sweep that fails at start must not wait 30 s to be retried); the loop's health (its last good
round, failures in a row) is what `/readyz` reports, so a loop that cannot work is seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("redress.loop")

# Seconds before a failed round is tried again, doubling up to the interval.
RETRY_FIRST = 1.0


@dataclass(frozen=True)
class LoopHealth:
    alive: bool
    rounds: int
    failures_in_a_row: int
    # Monotonic seconds since the last round in which every flow succeeded (None: never).
    since_last_ok: float | None
    last_error: str | None


class Watched(Protocol):
    """The loop itself, or its heartbeat read from another process (`/readyz`)."""

    def health(self) -> LoopHealth: ...


class EngineLoop(threading.Thread):
    def __init__(
        self,
        interval: float,
        before_round: Callable[[], None] | None = None,
        heartbeat: Path | None = None,
    ) -> None:
        super().__init__(name="redress-engine-loop", daemon=True)
        self.interval = interval
        self.before_round = before_round
        # Where the API worker processes read this loop's health (`redress serve --workers`).
        self.heartbeat = heartbeat
        self.stopping = threading.Event()
        self.runs = 0
        self.failures = 0
        self.last_ok: float | None = None
        self.last_error: str | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from workflows.flows import deliver_outbox, sweep_deadlines

        retry = RETRY_FIRST
        while not self.stopping.is_set():
            ok = True
            try:
                if self.before_round is not None:
                    await asyncio.to_thread(self.before_round)  # e.g. Prefect's API is up
                for flow in (sweep_deadlines, deliver_outbox):
                    if self.stopping.is_set():
                        break  # stop between flows, never inside one
                    result = await flow()
                    log.info("%s: %s", flow.name, result)
            except Exception as exc:  # logged; the next round tries again
                ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("engine round failed")
            self.runs += 1
            self._beat(ok)
            if ok:
                self.failures, self.last_ok, retry = 0, time.monotonic(), RETRY_FIRST
                wait = self.interval
            else:
                self.failures += 1
                wait, retry = retry, min(retry * 2, self.interval)
            await asyncio.to_thread(self.stopping.wait, wait)

    def _beat(self, ok: bool) -> None:
        if self.heartbeat is None:
            return
        if ok:
            self._last_ok_wall = time.time()
        beat = {
            "pid": os.getpid(),
            "interval": self.interval,
            "rounds": self.runs,
            "failures_in_a_row": 0 if ok else self.failures + 1,
            "last_ok": self._last_ok_wall,
            "last_error": None if ok else self.last_error,
        }
        tmp = self.heartbeat.with_suffix(".tmp")
        tmp.write_text(json.dumps(beat))
        tmp.replace(self.heartbeat)  # atomic: a reader never sees half a file

    _last_ok_wall: float | None = None

    def health(self) -> LoopHealth:
        return LoopHealth(
            alive=self.is_alive() and not self.stopping.is_set(),
            rounds=self.runs,
            failures_in_a_row=self.failures,
            since_last_ok=None if self.last_ok is None else time.monotonic() - self.last_ok,
            last_error=self.last_error,
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the flow in progress (if any); wait up to `timeout` for it."""
        self.stopping.set()
        if timeout is not None and self.is_alive():
            self.join(timeout)


class Heartbeat:
    """The engine loop of another process (the `serve --workers` supervisor), as its
    heartbeat file tells: the same `health()` as the loop's own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def health(self) -> LoopHealth:
        try:
            beat = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return LoopHealth(False, 0, 0, None, "no heartbeat from the engine loop yet")
        try:
            os.kill(int(beat["pid"]), 0)
            alive = True
        except (OSError, ValueError, KeyError):
            alive = False
        last_ok = beat.get("last_ok")
        return LoopHealth(
            alive=alive,
            rounds=int(beat.get("rounds", 0)),
            failures_in_a_row=int(beat.get("failures_in_a_row", 0)),
            since_last_ok=None if last_ok is None else max(0.0, time.time() - float(last_ok)),
            last_error=beat.get("last_error"),
        )
