"""Real `redress serve` processes for the tests that need several servers on one database
(a procedure deployed through one and used by the other, a token revoked on one and refused
by the other at once)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from engine.settings import get_settings


class Server:
    def __init__(self, db_url: str, var: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "REDRESS_DATABASE_URL": db_url, "REDRESS_VAR_DIR": str(var)}
        redress = str(Path(sys.executable).parent / "redress")
        self.proc = subprocess.Popen(
            [redress, "serve", "--port", str(self.port), "--no-engine-loop"],
            env=env,
            stdout=self._log_file(var),
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}/api/v1"

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                assert self.proc.poll() is None, "the server exited"
            time.sleep(0.2)
        raise AssertionError("the server did not start")

    def call(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def _log_file(self, var: Path) -> IO[bytes]:
        var.mkdir(parents=True, exist_ok=True)
        self.log_path = var / f"server-{self.port}.log"
        self.log = self.log_path.open("wb")
        return self.log

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.log.close()


@contextmanager
def two_servers(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, Server]]:
    """Two servers on one database (the caller's world made its tables and staff)."""
    monkeypatch.setenv("REDRESS_DATABASE_URL", db_url)
    monkeypatch.setenv("REDRESS_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    pair = (Server(db_url, tmp_path), Server(db_url, tmp_path))
    try:
        for s in pair:
            s.wait()
        yield pair
    finally:
        for s in pair:
            s.stop()
        get_settings.cache_clear()
