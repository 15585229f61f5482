"""Scale-out under load, for real: a Prefect server on its own PostgreSQL database, the two
deployments, `prefect worker` processes that can be killed with SIGKILL (with the flow-run
processes they spawned), flow runs started through the Prefect API, and an SMTP server that
counts every message and can hold one unanswered (tests/cli/test_scale_load.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from mail_support import Inbox, Smtp

from engine.db import make_engine

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
QUEUES = ("a", "b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(env: dict[str, str], *args: str, timeout: int = 120) -> str:
    out = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )
    assert out.returncode == 0, f"{args}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children first-level and deeper), from /proc: the
    process worker starts each flow run in a session of its own, so a signal to the worker's
    process group would not reach it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields follow the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Prefect:
    """`prefect server start` on a fresh PostgreSQL database, a process work pool, and both
    deployments from `redress deploy`. The cron schedules are set to once a year so that only
    the test's own flow runs sweep and deliver (the cron path has its own test,
    tests/workflows/test_scale_out.py)."""

    def __init__(self, pg_url: str, home: Path) -> None:
        self.pg_url = pg_url
        self.home = home
        self.db_name = f"prefect_{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.pool = "redress-load"
        base = pg_url.split("://", 1)[1].rsplit("/", 1)[0]
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{base}/{self.db_name}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # Results kept as JSON files, so that the test reads what each sweep did.
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_RESULTS_DEFAULT_SERIALIZER": "json",
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
            # Workers look for work every half second, not every 10 s.
            "PREFECT_WORKER_QUERY_SECONDS": "0.5",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        self.api = httpx.Client(base_url=self.env["PREFECT_API_URL"], timeout=30)
        self.proc: subprocess.Popen[bytes] | None = None
        self.deployments: dict[str, str] = {}

    def start(self) -> None:
        admin = make_engine(self.pg_url, pool_size=1)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f"CREATE DATABASE {self.db_name}")
        admin.dispose()
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "prefect-server.log", "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if self.api.get("/health", timeout=2).status_code == 200:
                    break
            assert self.proc.poll() is None, self.log()
            time.sleep(0.5)
        else:
            raise AssertionError("prefect server did not start:\n" + self.log())
        run(self.env, str(BIN / "prefect"), "work-pool", "create", self.pool, "--type", "process")
        # A queue per worker, so that the test says which worker takes which run.
        for queue in QUEUES:
            run(self.env, str(BIN / "prefect"), "work-queue", "create", queue, "--pool", self.pool)
        yearly = "0 3 1 1 *"
        out = run(
            self.env,
            str(BIN / "redress"),
            "deploy",
            "--pool",
            self.pool,
            "--sweep-cron",
            yearly,
            "--deliver-cron",
            yearly,
        )
        assert "deployed 2 flows" in out, out
        found = self.api.post("/deployments/filter", json={}).json()
        self.deployments = {d["name"]: d["id"] for d in found}
        assert set(self.deployments) == {"sweep-deadlines", "deliver-outbox"}

    def log(self) -> str:
        path = self.home / "prefect-server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        self.api.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        admin = make_engine(self.pg_url, pool_size=1)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        admin.dispose()

    # -- flow runs -------------------------------------------------------------------------------

    def start_run(self, deployment: str, queue: str, **parameters: Any) -> str:
        """A flow run of a deployment, now, on one worker's queue (what `prefect deployment
        run` does, with the queue named)."""
        r = self.api.post(
            f"/deployments/{self.deployments[deployment]}/create_flow_run",
            json={"parameters": parameters, "work_queue_name": queue},
        )
        assert r.status_code in (200, 201), r.text
        return str(r.json()["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        r = self.api.get(f"/flow_runs/{run_id}")
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def state(self, run_id: str) -> str:
        return str(self.flow_run(run_id)["state"]["type"])

    def wait(self, run_ids: list[str], timeout: float = 120) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            states = [self.state(r) for r in run_ids]
            if all(s in FINAL for s in states) or time.monotonic() > deadline:
                return states
            time.sleep(0.3)

    def result(self, run_id: str) -> dict[str, Any]:
        """What the flow returned, from its persisted JSON result."""
        data = self.flow_run(run_id)["state"]["data"]
        key = data.get("storage_key") if isinstance(data, dict) else None
        assert key, f"no persisted result for {run_id}: {data!r}"
        path = Path(key)
        if not path.is_absolute():
            path = Path(self.env["PREFECT_LOCAL_STORAGE_PATH"]) / key
        stored = json.loads(path.read_text())
        # The JSON serializer writes the value itself; a result record wraps it with metadata.
        result: dict[str, Any] = stored["result"] if "metadata" in stored else stored
        return result


class Worker:
    """`prefect worker start --pool POOL --work-queue QUEUE` with the given environment
    (redress's database, SMTP); its output goes to a log file the test reads."""

    def __init__(
        self, env: dict[str, str], pool: str, queue: str, name: str, log_dir: Path
    ) -> None:
        self.name = name
        self.queue = queue
        self.log_path = log_dir / f"{name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                pool,
                "--name",
                name,
                "--work-queue",
                queue,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
        )
        log.close()
        self.children: set[int] = set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while f"Worker '{self.name}' started" not in self.log():
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, self.log()[-3000:]
            time.sleep(0.1)

    def ran(self, run_id: str) -> bool:
        """Whether this worker's flow-run process ran it (its output names the run's page)."""
        return f"/flow-run/{run_id}" in self.log()

    def flow_processes(self) -> list[int]:
        """The flow-run processes it runs now (remembered, so that cleanup ends them too)."""
        found = descendants(self.proc.pid) if self.proc.poll() is None else []
        self.children.update(found)
        return found

    def kill9(self) -> list[int]:
        """SIGKILL to the worker and to every process below it, all at once: nothing drains,
        nothing reports back. Returns the flow-run processes killed."""
        children = self.flow_processes()
        for pid in [self.proc.pid, *children]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        return children

    def stop(self) -> None:
        children = self.flow_processes()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.children | set(children):
            if _alive(pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@contextmanager
def workers(env: dict[str, str], pool: str, log_dir: Path) -> Iterator[list[Worker]]:
    """Two workers, one on each queue; the test may start more (restarts) into the list."""
    started: list[Worker] = []
    try:
        for queue in QUEUES:
            started.append(Worker(env, pool, queue, f"worker-{queue}", log_dir))
        for w in started:
            w.wait_started()
        yield started
    finally:
        for w in started:
            w.stop()


class HoldingInbox(Inbox):
    """Counts every message; can keep the answer to the n-th one back (the server has the
    mail, the sender has no "250" yet) until released: the window between a send and the
    commit that records it."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if self.hold_at is not None and len(self.messages) == self.hold_at:
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return answer


@contextmanager
def smtp_server() -> Iterator[tuple[Smtp, HoldingInbox]]:
    smtp = Smtp()
    inbox = HoldingInbox()
    smtp.inbox = inbox
    smtp.start()
    try:
        yield smtp, inbox
    finally:
        inbox.release.set()
        smtp.stop()
