"""`redress serve --workers 2` on PostgreSQL: two API processes share the port; the engine
loop and Prefect's API run once, in the supervisor; each worker's /readyz reads the loop's
heartbeat; /metrics adds up both workers' samples; a token revoked through one worker is
refused by the other; SIGTERM stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import PG_SKIP, PG_URL, World
from test_serve_lifecycle import STOPPED, _port, alive, children


@pytest.fixture
def pg_world(world: World, db_url: str) -> World:
    if not db_url.startswith("postgresql") or not PG_URL:
        pytest.skip(PG_SKIP)
    return world


def _count(metrics: str, route: str) -> int:
    series = r"redress_http_request_duration_seconds_count\{[^}]*"
    pattern = series + f'route="{re.escape(route)}"' + r"[^}]*\} ([0-9.e+]+)"
    return int(sum(float(v) for v in re.findall(pattern, metrics)))


def test_two_workers_share_the_port_the_loop_and_the_metrics(
    pg_world: World, db_url: str, tmp_path: Path
) -> None:
    port = _port()
    env = {
        **os.environ,
        "REDRESS_DATABASE_URL": db_url,
        "REDRESS_VAR_DIR": str(tmp_path / "var"),
        "REDRESS_ENGINE_INTERVAL": "1",
    }
    for name in ("PREFECT_HOME", "PREFECT_API_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "redress"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {pg_world.tokens['office_admin']}"}
    try:
        deadline = time.monotonic() + 90
        body = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                r = httpx.get(url + "/readyz", timeout=5)
                body = r.json()
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError(f"not ready: {body}")
        assert body is not None and body["checks"]["engine_loop"]["ok"], body
        family = children(proc.pid)
        workers = [p for p in family if "spawn_main" in _cmdline(p)]
        assert len(workers) == 2, [(p, _cmdline(p)) for p in family]
        assert sum("prefect.server.api.server" in _cmdline(p) for p in family) == 1

        # Every worker's samples in every scrape, whichever worker answers it.
        before = _count(httpx.get(url + "/metrics", headers=admin).text, "/procedures")
        for _ in range(40):
            assert httpx.get(url + "/api/v1/procedures").status_code == 200
        for _ in range(4):
            scraped = httpx.get(url + "/metrics", headers=admin).text
            assert _count(scraped, "/procedures") == before + 40

        # A token revoked through whichever worker: refused by all, from the next request.
        name = pg_world.actors["amr_handler"].name
        issued = httpx.post(
            url + f"/api/v1/users/{name}/tokens", headers=admin, json={"label": "w"}
        ).json()
        bearer = {"Authorization": f"Bearer {issued['token']}"}
        assert httpx.get(url + "/api/v1/cases", headers=bearer).status_code == 200
        assert (
            httpx.post(url + f"/api/v1/tokens/{issued['id']}/revoke", headers=admin).status_code
            == 200
        )
        assert all(
            httpx.get(url + "/api/v1/cases", headers=bearer).status_code == 401 for _ in range(10)
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) in STOPPED
        time.sleep(0.5)
        assert not [p for p in family if alive(p)], "a worker or the Prefect child outlived it"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_workers_need_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "redress"), "serve", "--workers", "2"],
        env={
            **os.environ,
            "REDRESS_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
            "REDRESS_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "需要 PostgreSQL" in done.stderr + done.stdout


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
