"""Prefect's API server for the embedded default, as a child process redress owns.

Prefect starts an "ephemeral" server by itself when no PREFECT_API_URL is set, and that is
where two faults came from: its 20-second start-up timeout is shorter than a first start
with an empty `var/` on a slow machine (it creates and migrates its database), after which it
left the half-started process running and started another on a random port in 8000-8999
(where redress itself listens: "address already in use"); and on SIGTERM nothing stopped it,
so every restart leaked one server holding its port and ~220 MB.

So `redress serve` starts the same server (Prefect's own app factory, UI and services off,
as Prefect's ephemeral mode runs it) before Prefect is imported in this process, on a port the
kernel chose, waits for it with a generous timeout and retries, points this process at it
(PREFECT_API_URL), and stops it on the way out. The child is asked by the kernel to die with
its parent (PR_SET_PDEATHSIG), so even a `kill -9` of redress leaves no orphan. A child that
died is started again on the same port by the engine loop's next round.

With PREFECT_API_URL set (a real Prefect server: docs/SCALE-OUT.md) nothing is started.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

log = logging.getLogger("redress.prefect")

PR_SET_PDEATHSIG = 1


class PrefectUnavailable(RuntimeError):
    """Prefect's API did not come up after every attempt."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Not Linux (no prctl): stop() still stops it on a clean exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prefect_dir() -> str:
    spec = importlib.util.find_spec("prefect")  # located, not imported
    assert spec is not None and spec.origin is not None
    return str(Path(spec.origin).resolve().parent.parent)


class PrefectChild:
    def __init__(
        self,
        log_file: Path,
        *,
        startup_timeout: float = 120.0,
        attempts: int = 3,
    ) -> None:
        self.log_file = log_file
        self.startup_timeout = startup_timeout
        self.attempts = attempts
        self.managed = False
        self.url: str | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> str:
        """The API URL the flows use: PREFECT_API_URL if set, else a child started here."""
        external = os.environ.get("PREFECT_API_URL")
        if external and not self.managed:
            self.url = external
            return external
        last = ""
        for attempt in range(1, self.attempts + 1):
            port = _free_port()
            try:
                self._spawn(port)
                self.port = port
                self.url = f"http://127.0.0.1:{port}/api"
                self.managed = True
                os.environ["PREFECT_API_URL"] = self.url
                return self.url
            except PrefectUnavailable as exc:
                last = str(exc)
                log.warning("Prefect's API, attempt %d of %d: %s", attempt, self.attempts, exc)
                self._terminate()
                time.sleep(min(2.0 * attempt, 5.0))
        raise PrefectUnavailable(f"Prefect's API did not start: {last}")

    def _spawn(self, port: int) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_file.open("ab")
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)  # the server itself is not a client of anything
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                _prefect_dir(),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{port}/api/health"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    raise PrefectUnavailable(f"the server exited with {code} (see {self.log_file})")
                try:
                    if client.get(health).status_code == 200:
                        log.info("Prefect's API on port %d (pid %d)", port, self.proc.pid)
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise PrefectUnavailable(f"no answer within {self.startup_timeout:g} s")

    def alive(self) -> bool:
        if not self.managed:
            return True  # not ours to watch: the loop's rounds say whether it answers
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        """Start the child again (same port, which this process's Prefect client already
        uses) if it died; a no-op for an external server."""
        if not self.managed or self.alive():
            return
        with self._lock:
            if self.alive():
                return
            log.warning("Prefect's API (pid %s) is gone; starting it again", self.pid)
            assert self.port is not None
            self._spawn(self.port)

    def _terminate(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (SIGTERM, then SIGKILL after `timeout`) and wait for it."""
        with self._lock:
            self._terminate(timeout)
            if self._log is not None:
                self._log.close()
                self._log = None
