"""HTTP load on loopback: advances and status look-ups per second beside `GET /healthz`.

The issue's figures: requests per second, p50 and p99 at 16 keep-alive connections, for
`POST /api/v1/cases/{id}/actions/accept` (every request a different `submitted` objection case)
and `GET /api/v1/status/{case_no}` (header X-Access-Code, random cases), beside `GET /healthz`
(the baseline) in the same run against the same server. Targets, on SQLite with one worker: at
least 2,000 advances per second with p99 ≤ 50 ms; status p99 ≤ 10 ms with 1,000,000 cases stored.

The server is a real `uvicorn` process (one worker, uvloop + httptools, log level warning, no
access log; with `--workers 1,2,4` on PostgreSQL, one server per count, `uvicorn --workers N`
with the same factory) on 127.0.0.1 and a free port, serving `api.app.create_app` on the benchmark's
database (`make_app` below, the `--factory` target: the engine built from REDRESS_DATABASE_URL as
`redress serve --no-engine-loop` builds it, but on a fixed clock — the benchmark's "now", so the
bulk-loaded cases' deadlines mean what they were made to mean). One route is added for the
benchmark only, after all of the app's: `GET /_bench/bare`, an `async def` returning a small
dict, the floor of framework + server + client on this machine (and `GET /_bench/pid`, which
worker answered: used before each phase only, never timed).

Several workers (PostgreSQL; SQLite has one writer and always runs one). `redress serve
--workers N` is not used: its workers build their engine on the real clock, and the bulk-loaded
cases' deadlines are set against the benchmark's "now". The workers share one listening socket,
and the kernel hands a burst of new connections to whichever worker is idle first, which is
mostly the same one (16 of 16 on one of 2 workers, measured). So before each phase the client
opens its connections balanced: each new connection is opened while the workers that already
have their share are busy answering a request on theirs, which is what happens to new
connections under load; the connections per worker are reported with each phase. Each worker
count gets its own cases to accept, from the same bulk-loaded database (VACUUM ANALYZE in
between, untimed).

The client is a raw HTTP/1.1 keep-alive client on asyncio streams (uvloop when installed) in its
own process: 16 connections, each sending one request, reading the status line, headers and the
Content-Length body, then the next (no pipelining). httpx would saturate before the server.
Latency is from the write of a request to the last byte of its response. Each phase is bounded
(a number of requests or of seconds, whichever comes first) and warmed up first; any non-2xx
answer, or a 2xx without the expected body, is an error (there must be none).

Client and server share this machine's cores (2 on the reference machine): the client's CPU
time is taken from the server's, so the figures are a floor for what the server can do.

Data (setup, not timed): the cases are bulk-loaded with bench/sweep.py's `populate` (the engine's
own templates, hashes and formats; each case `submitted`, with its submit event, receipt notice
and formal-check timer), then a handler's token is made (`Engine.add_user`) and the cases the
status phase asks about get the hash of a known access code (`Engine.hash_secret`, the same
REDRESS_SECRET_KEY in the server).

    python bench/api_load.py          # 100,000 cases, 8,000 advances; SQLite (+PG from env)
    python bench/api_load.py --pg postgresql://postgres@127.0.0.1:5432/test
    python bench/api_load.py --full   # 1,000,000 cases, 20,000 advances
    python bench/api_load.py --no-sqlite --pg URL --workers 1,2,4   # one server per count

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as c
import sweep as sw

from engine.clock import FixedClock
from engine.db import Database
from engine.service import Engine
from engine.settings import get_settings

BENCH = "api_load"
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
NOW = c.BENCH_NOW  # the server's fixed clock and the bulk-loaded cases' "now"

CONNECTIONS = 16
DEFAULT_CASES, DEFAULT_ADVANCES, DEFAULT_SECONDS = 100_000, 8_000, 5.0
FULL_CASES, FULL_ADVANCES, FULL_SECONDS = 1_000_000, 20_000, 10.0
WARM_ADVANCES = 400  # warm-up advances (their own cases)
WARM_SECONDS = 1.0  # warm-up of the other phases
ADVANCE_LIMIT_S = 120.0  # the advance phase stops here even if cases are left
STATUS_SAMPLE = 50_000  # distinct cases the status phase asks about (random order, cycled)
TIME_LIMIT_S = 1800  # the whole run, with one worker count
TIME_LIMIT_PER_EXTRA_S = 600  # and for each further worker count
ACCESS_CODE = "BENCH23456"  # every status-phase case's access code
TOKEN_USER = "bench_api_handler"  # a handler of the credit office (where the cases are)

TARGET_ADVANCE_PER_S = 2000.0  # on SQLite, one worker
TARGET_ADVANCE_P99_MS = 50.0
TARGET_STATUS_P99_MS = 10.0
TARGET_STATUS_CASES = 1_000_000

NOTE_CORES = (
    "client and server share the machine's cores: the client's CPU is taken from the server's"
)


# -- the server ----------------------------------------------------------------------------------


def make_app() -> Any:
    """`uvicorn --factory api_load:make_app`: the app on REDRESS_DATABASE_URL, no engine loop,
    the engine on the benchmark's fixed clock, plus the bench-only `GET /_bench/bare` and
    `GET /_bench/pid`. With --workers N, uvicorn calls it once in each worker."""
    from api.app import create_app, settle_heap
    from engine.deadlines import Deadlines
    from engine.factory import build_engine

    engine = build_engine(clock=FixedClock(NOW), migrated=True)
    Deadlines(engine).refresh_calendar()  # as `redress serve` does before serving
    app = create_app(engine)

    @app.get("/_bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    pid = os.getpid()

    @app.get("/_bench/pid", include_in_schema=False)
    async def which() -> dict[str, int]:
        return {"pid": pid}

    settle_heap()  # as `redress serve` does
    return app


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def versions() -> dict[str, str]:
    out = {}
    for name in ("uvicorn", "uvloop", "httptools", "fastapi", "starlette", "pydantic", "anyio"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


class Server:
    """`python -m uvicorn` in a subprocess (`workers` processes); stopped (SIGINT, then SIGKILL)
    by `stop`. With one worker uvicorn serves in that process; with more, it is their
    supervisor."""

    def __init__(self, url: str, secret: str, log_dir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = url
        self.secret = secret
        self.workers = workers
        self.worker_pids: list[int] = []  # as they answer GET /_bench/pid (known after start)
        self.log_path = log_dir / f"uvicorn-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api_load:make_app",
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def pids(self) -> list[int]:
        """Every process of the server: the supervisor (if any) and the workers."""
        return [self.pid, *(p for p in self.worker_pids if p != self.pid)]

    def start(self, timeout: float = 90.0) -> None:
        env = os.environ | {"REDRESS_DATABASE_URL": self.url, "REDRESS_SECRET_KEY": self.secret}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit(f"the server did not answer /healthz in {timeout:.0f} s")
        # One worker answering is not all of them up: wait until every one has answered.
        while time.monotonic() < deadline:
            pids = asyncio.run(probe_workers(self.port, self.workers))
            if len(pids) == self.workers:
                self.worker_pids = sorted(pids)
                return
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"not all {self.workers} workers answered in {timeout:.0f} s")

    def threads(self) -> list[int | None]:
        """Threads of each worker process (the supervisor's are not counted)."""
        out: list[int | None] = []
        for pid in self.worker_pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    out.append(next(int(x.split()[1]) for x in f if x.startswith("Threads:")))
            except (OSError, StopIteration):
                out.append(None)
        return out

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            for pid in self.worker_pids:  # a killed supervisor leaves its workers behind
                if pid != self.proc.pid:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            return self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# -- the client ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One bounded run of one kind of request: at most `max_requests` or `max_seconds`.

    `template` is the whole request; with `items`, `template % item` (bytes formatting) for
    the i-th request, items cycled when `cycle`, else used at most once each."""

    key: str
    label: str
    template: bytes
    items: Sequence[int | bytes] | None
    max_requests: int
    max_seconds: float
    expect: bytes  # a 2xx answer must contain this
    warm: bool = False
    cycle: bool = True


@dataclass
class PhaseRun:
    phase: Phase
    deadline: float = 0.0
    issued: int = 0
    latencies: array[int] = field(default_factory=lambda: array("q"))
    n_errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def next_request(self) -> bytes | None:
        p = self.phase
        i = self.issued
        if i >= p.max_requests or time.monotonic() >= self.deadline:
            return None
        if p.items is None:
            self.issued = i + 1
            return p.template
        if i >= len(p.items) and not p.cycle:
            return None
        self.issued = i + 1
        return p.template % p.items[i % len(p.items)]

    def error(self, text: str) -> None:
        self.n_errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(text)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server closes the connection (HTTP/1.1)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = -1, False, False
    for line in head[:-4].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif key == b"connection":
            close = b"close" in value.lower()
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    elif length >= 0:
        body = await reader.readexactly(length)
    else:
        body, close = await reader.read(), True
    return status, body, close


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
PID_REQUEST = f"GET /_bench/pid HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


async def open_conn(port: int) -> Conn:
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def read_pid(reader: asyncio.StreamReader) -> int:
    status, body, _ = await read_response(reader)
    if status != 200:
        raise ValueError(f"GET /_bench/pid answered {status}")
    return int(json.loads(body)["pid"])


async def open_balanced(
    port: int, n: int, workers: int, max_tries: int | None = None
) -> tuple[list[Conn], dict[int, int]]:
    """`n` connections, spread over the workers as evenly as they take them, and how many each
    worker holds (by pid).

    A burst of connects on an idle server mostly lands on one worker (the first one woken).
    So each new connection is opened while every worker that already has its share is busy
    answering GET /_bench/pid on its connections; the idle ones accept it. After `max_tries`
    the rest are opened as they come (and the spread says so)."""
    quota = -(-n // workers)
    kept: dict[int, list[Conn]] = {}
    tries, limit = 0, max_tries or 20 * n
    while sum(len(v) for v in kept.values()) < n and tries < limit:
        tries += 1
        full = [conn for v in kept.values() if len(v) >= quota for conn in v]
        for _, w in full:
            w.write(PID_REQUEST)
        conn = await open_conn(port)
        conn[1].write(PID_REQUEST)
        pid = await read_pid(conn[0])
        for r, _ in full:
            await read_pid(r)
        mine = kept.setdefault(pid, [])
        if len(mine) < quota:
            mine.append(conn)
        else:
            conn[1].close()
    while sum(len(v) for v in kept.values()) < n:
        conn = await open_conn(port)
        conn[1].write(PID_REQUEST)
        kept.setdefault(await read_pid(conn[0]), []).append(conn)
    return [conn for v in kept.values() for conn in v], {p: len(v) for p, v in kept.items()}


async def probe_workers(port: int, workers: int) -> set[int]:
    """The pids of the workers that answer now (at most `workers`)."""
    conns, spread = await open_balanced(port, workers, workers, max_tries=20 * workers)
    for _, w in conns:
        w.close()
    return set(spread)


async def connection(
    run: PhaseRun, port: int, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = conn
    clock = time.perf_counter_ns
    lat = run.latencies
    expect = run.phase.expect
    while (request := run.next_request()) is not None:
        t0 = clock()
        try:
            writer.write(request)
            status, body, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            run.error(f"connection: {e!r}")
            writer.close()
            try:
                reader, writer = await open_conn(port)
            except OSError as e2:
                run.error(f"reconnect: {e2!r}")
                return
            continue
        lat.append(clock() - t0)
        run.statuses[status] = run.statuses.get(status, 0) + 1
        if not 200 <= status < 300:
            run.error(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        elif expect not in body:
            run.error(f"HTTP {status} without {expect!r}: {body[:300].decode(errors='replace')}")
        if close:
            writer.close()
            reader, writer = await open_conn(port)
    writer.close()


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, all threads (clock ticks, /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_ticks() -> int | None:
    """CPU time of the whole machine, all cores, not idle (clock ticks, /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal


def summarize_run(
    run: PhaseRun,
    wall_ns: int,
    server_cpu_s: float | None,
    client_cpu_s: float,
    machine_cpu_s: float | None,
    worker_cpu_s: Sequence[float | None] = (),
    conns_per_worker: Sequence[int] = (),
) -> dict[str, Any]:
    p = run.phase
    exhausted = run.issued >= p.max_requests or (
        not p.cycle and p.items is not None and run.issued >= len(p.items)
    )
    values = sorted(run.latencies)
    n = len(values)
    wall = wall_ns / 1e9
    ms = 1e6
    return {
        "phase": run.phase.key,
        "label": run.phase.label,
        "warm_up": run.phase.warm,
        "requests": n,
        "errors": run.n_errors,
        "first_errors": run.first_errors,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "wall_s": round(wall, 3),
        "per_s": round(n / wall, 1) if wall and n else 0.0,
        "mean_ms": round(sum(values) / n / ms, 3) if n else None,
        "p50_ms": round(c.percentile(values, 50) / ms, 3) if n else None,
        "p90_ms": round(c.percentile(values, 90) / ms, 3) if n else None,
        "p99_ms": round(c.percentile(values, 99) / ms, 3) if n else None,
        "max_ms": round(values[-1] / ms, 3) if n else None,
        "stopped_by": "requests" if exhausted else "time",
        "server_cpu_ms_per_req": (
            round(server_cpu_s * 1000 / n, 3) if server_cpu_s is not None and n else None
        ),
        "server_cpu_pct": round(100 * server_cpu_s / wall, 1) if server_cpu_s and wall else None,
        "client_cpu_pct": round(100 * client_cpu_s / wall, 1) if wall else None,
        # everything else on the machine: the database server, and anything that should not
        # be running during a benchmark
        "other_cpu_pct": (
            round(100 * max(machine_cpu_s - server_cpu_s - client_cpu_s, 0.0) / wall, 1)
            if machine_cpu_s is not None and server_cpu_s is not None and wall
            else None
        ),
        # each worker's share (% of one core) and connections: is the load spread?
        "worker_cpu_pct": [
            round(100 * x / wall, 1) if x is not None and wall else None for x in worker_cpu_s
        ],
        "conns_per_worker": list(conns_per_worker),
    }


async def run_phase(
    port: int, server_pids: Sequence[int], phase: Phase, connections: int, workers: int
) -> dict[str, Any]:
    run = PhaseRun(phase)
    conns, spread = await open_balanced(port, connections, workers)  # before the clock
    tick = os.sysconf("SC_CLK_TCK")
    s0 = [cpu_ticks(pid) for pid in server_pids]
    c0, m0 = time.process_time(), machine_busy_ticks()
    run.deadline = time.monotonic() + phase.max_seconds
    t0 = time.perf_counter_ns()
    await asyncio.gather(*(connection(run, port, conn) for conn in conns))
    wall_ns = time.perf_counter_ns() - t0
    s1 = [cpu_ticks(pid) for pid in server_pids]
    c1, m1 = time.process_time(), machine_busy_ticks()
    each = [
        (b - a) / tick if a is not None and b is not None else None
        for a, b in zip(s0, s1, strict=True)
    ]
    server_cpu = None if None in each else sum(x or 0.0 for x in each)
    machine_cpu = (m1 - m0) / tick if m0 is not None and m1 is not None else None
    # server_pids[0] is the supervisor when there are several workers: not a worker
    workers_cpu = each[1:] if workers > 1 else each
    worker_pids = server_pids[1:] if workers > 1 else server_pids
    per_worker = [spread.get(pid, 0) for pid in worker_pids]
    return summarize_run(run, wall_ns, server_cpu, c1 - c0, machine_cpu, workers_cpu, per_worker)


async def run_phases(
    port: int, server_pids: Sequence[int], phases: Sequence[Phase], connections: int, workers: int
) -> list[dict[str, Any]]:
    out = []
    for phase in phases:
        out.append(await run_phase(port, server_pids, phase, connections, workers))
        await asyncio.sleep(0.3)  # let the server settle (closed connections, pool returns)
    return out


def client_main(
    port: int, server_pids: Sequence[int], connections: int, workers: int, pipe: Any
) -> None:
    """The client process: receives the phases on `pipe`, runs them in order, sends back the
    results (or the error)."""
    try:
        phases: list[Phase] = pipe.recv()
        try:
            import uvloop

            results = uvloop.run(run_phases(port, server_pids, phases, connections, workers))
            loop = "uvloop"
        except ImportError:
            results = asyncio.run(run_phases(port, server_pids, phases, connections, workers))
            loop = "asyncio"
        pipe.send({"loop": loop, "results": results})
    except BaseException as exc:  # reported by the parent
        pipe.send({"error": repr(exc)})
        raise
    finally:
        pipe.close()


def run_client(
    port: int, server_pids: Sequence[int], phases: Sequence[Phase], connections: int, workers: int
) -> tuple[str, list[dict[str, Any]]]:
    """The phases in a client process of its own. They go over the pipe after the start (not
    as spawn arguments), so a child that dies early is an error here, not a hang."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no pools or threads of this process
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(
        target=client_main,
        args=(port, list(server_pids), connections, workers, theirs),
        daemon=True,
    )
    proc.start()
    theirs.close()
    limit = sum(p.max_seconds for p in phases) + 30 * len(phases) + 60
    try:
        mine.send(list(phases))
        if not mine.poll(limit):
            raise SystemExit(f"the client did not finish within {limit:.0f} s")
        answer = mine.recv()
    except (EOFError, OSError) as exc:
        raise SystemExit(f"the client process ended early ({proc.exitcode}): {exc!r}") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        mine.close()
    if "error" in answer:
        raise SystemExit(f"the client failed: {answer['error']}")
    return str(answer["loop"]), list(answer["results"])


# -- requests ----------------------------------------------------------------------------------


def request(method: str, path: str, headers: Sequence[str] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *headers]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Prepared:
    token: str
    warm_ids: list[list[int]]  # per server run (worker count): cases to accept, each once
    advance_ids: list[list[int]]
    status_nos: list[bytes]
    prepare_s: float


def phases_for(prep: Prepared, run: int, seconds: float, advance_limit: float) -> list[Phase]:
    """Warm-up and measured phases of server run `run`, in order: bare, healthz, advance,
    status."""
    accept = request(
        "POST",
        "/api/v1/cases/%d/actions/accept",
        [f"Authorization: Bearer {prep.token}", 'If-Match: "1"'],
        b"{}",
    )
    status = request("GET", "/api/v1/status/%s", [f"X-Access-Code: {ACCESS_CODE}"])
    cap = int(seconds * 100_000)  # a request count no phase reaches in its seconds
    warm_cap = int(WARM_SECONDS * 100_000)
    tail = len(prep.status_nos) // 10  # warm-up look-ups: cases the measured phase asks last
    out = []
    for key, label, template, expect in (
        ("bare", "GET /_bench/bare (floor)", request("GET", "/_bench/bare"), b'"ok"'),
        ("healthz", "GET /healthz (baseline)", request("GET", "/healthz"), b'"ok"'),
    ):
        out.append(Phase(key, label, template, None, warm_cap, WARM_SECONDS, expect, warm=True))
        out.append(Phase(key, label, template, None, cap, seconds, expect))
    label = "POST /cases/{id}/actions/accept"
    out.append(
        Phase(
            "advance",
            label,
            accept,
            prep.warm_ids[run],
            len(prep.warm_ids[run]),
            advance_limit,
            b'"accepted"',
            warm=True,
            cycle=False,
        )
    )
    out.append(
        Phase(
            "advance",
            label,
            accept,
            prep.advance_ids[run],
            len(prep.advance_ids[run]),
            advance_limit,
            b'"accepted"',
            cycle=False,
        )
    )
    label = "GET /status/{case_no}"
    nos = prep.status_nos
    out.append(
        Phase("status", label, status, nos[-tail:], warm_cap, WARM_SECONDS, b'"case_no"', warm=True)
    )
    out.append(Phase("status", label, status, nos, cap, seconds, b'"case_no"'))
    return out


# -- data --------------------------------------------------------------------------------------


def prepare(
    url: str, n: int, n_warm: int, n_adv: int, n_status: int, seed: int, runs: int = 1
) -> Prepared:
    """A handler's token, the cases to accept (each once; `runs` sets of them, one per server),
    and the status phase's cases with the hash of ACCESS_CODE (the other cases keep the
    template's)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    each = n_warm + n_adv
    picked = rng.sample(range(2, n + 1), runs * each)  # case 1 is the engine-made template
    status_ids = rng.sample(range(1, n + 1), n_status)
    db = Database(url, pool_size=1)
    try:
        engine = Engine(db, clock=FixedClock(NOW))
        _, token = engine.add_user(TOKEN_USER, "handler", "office")
        code_hash = engine.hash_secret(ACCESS_CODE)
        case_no: dict[int, str] = {}
        with db.tx() as tx:
            tx.executemany(
                "UPDATE cases SET access_code_hash = :h WHERE id = :id",
                [{"h": code_hash, "id": i} for i in status_ids],
            )
            for lo in range(0, len(status_ids), 500):
                part = status_ids[lo : lo + 500]
                marks = ", ".join(f":c{j}" for j in range(len(part)))
                for cid, no in tx.all(
                    f"SELECT id, case_no FROM cases WHERE id IN ({marks})",
                    {f"c{j}": cid for j, cid in enumerate(part)},
                ):
                    case_no[int(cid)] = str(no)
            submitted = int(
                tx.scalar("SELECT count(*) FROM cases WHERE state = 'submitted' AND version = 1")
            )
    finally:
        db.dispose()
    if submitted != n or len(case_no) != n_status:
        raise SystemExit(f"setup: {submitted} submitted cases of {n}, {len(case_no)} case numbers")
    settle(url)
    sets = [picked[k * each : (k + 1) * each] for k in range(runs)]
    return Prepared(
        token,
        [x[:n_warm] for x in sets],
        [x[n_warm:] for x in sets],
        [case_no[i].encode() for i in status_ids],
        time.perf_counter() - started,
    )


def settle(url: str) -> None:
    """After the setup's writes: SQLite's WAL checkpointed; PostgreSQL's cases vacuumed."""
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        lite.close()
        return
    import psycopg

    with psycopg.connect(c.libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cases")
        conn.execute("VACUUM ANALYZE users")


def count_accepted(url: str) -> dict[str, int]:
    db = Database(url, pool_size=1)
    try:
        with db.tx(readonly=True) as tx:
            accepted = int(
                tx.scalar(
                    "SELECT count(*) FROM cases WHERE state = 'accepted' AND version = 2 "
                    "AND event_seq = 2"
                )
            )
            events = int(tx.scalar("SELECT count(*) FROM case_events WHERE trigger = 'accept'"))
    finally:
        db.dispose()
    return {"cases_accepted": accepted, "accept_events": events}


# -- one backend -------------------------------------------------------------------------------


def ratio(x: float | None, y: float | None) -> float | None:
    return round(x / y, 3) if x is not None and y else None


def ratios_to(measured: dict[str, dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    base = measured[key]
    return {
        k: {
            "per_s": ratio(m["per_s"], base["per_s"]),
            "p50": ratio(m["p50_ms"], base["p50_ms"]),
            "p99": ratio(m["p99_ms"], base["p99_ms"]),
        }
        for k, m in measured.items()
    }


def run_server(
    label: str,
    url: str,
    prep: Prepared,
    k: int,
    workers: int,
    args: argparse.Namespace,
    log_dir: Path,
) -> dict[str, Any]:
    """One server with `workers` processes, the phases against it, its figures."""
    started = time.perf_counter()
    server = Server(url, get_settings().secret_key, log_dir, workers)
    try:
        server.start()
        phases = phases_for(prep, k, args.seconds, args.advance_limit)
        c.note(
            f"{label}: server pid {server.pid} ({workers} worker{'s' if workers > 1 else ''}) "
            f"on {HOST}:{server.port}; running the load"
        )
        loop, results = run_client(server.port, server.pids, phases, args.connections, workers)
        threads = server.threads()
    finally:
        rc = server.stop()
    log_tail = server.log_tail(10)

    measured = {r["phase"]: r for r in results if not r["warm_up"]}
    warm = {r["phase"]: r for r in results if r["warm_up"]}
    ok_advances = sum(r["statuses"].get("200", 0) for r in results if r["phase"] == "advance")
    adv, st = measured["advance"], measured["status"]
    return {
        "workers": workers,
        "server": {
            "argv": " ".join(server.argv[1:]),
            "pid": server.pid,
            "worker_pids": server.worker_pids,
            "threads_at_end": threads,
            "exit_code": rc,
            "log_tail": log_tail,
            "pool_size": get_settings().pool_size,
        },
        "client_loop": loop,
        "phases": measured,
        "warm_up": warm,
        "ratios_to_healthz": ratios_to(measured, "healthz"),
        "ratios_to_bare": ratios_to(measured, "bare"),
        "errors": sum(r["errors"] for r in results),
        "advances_ok": ok_advances,
        "targets": {
            "advance_per_s": adv["per_s"] >= TARGET_ADVANCE_PER_S,
            "advance_p99": adv["p99_ms"] is not None and adv["p99_ms"] <= TARGET_ADVANCE_P99_MS,
            "status_p99": st["p99_ms"] is not None and st["p99_ms"] <= TARGET_STATUS_P99_MS,
            "status_at_target_size": args.cases >= TARGET_STATUS_CASES,
            "advance_targets_apply": label.startswith("SQLite"),
        },
        "run_s": round(time.perf_counter() - started, 2),
    }


def scaling(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each worker count's rates beside one worker's (when measured), and the issue's checks:
    advances/s grow with workers up to the cores; advance p99 within target at every count."""
    one = next((r for r in runs if r["workers"] == 1), None)
    rows = []
    for r in runs:
        m = r["phases"]
        row: dict[str, Any] = {"workers": r["workers"]}
        for key in ("bare", "healthz", "advance", "status"):
            row[f"{key}_per_s"] = m[key]["per_s"]
            row[f"{key}_vs_1"] = (
                ratio(m[key]["per_s"], one["phases"][key]["per_s"]) if one else None
            )
        row |= {
            "advance_p50_ms": m["advance"]["p50_ms"],
            "advance_p99_ms": m["advance"]["p99_ms"],
            "status_p99_ms": m["status"]["p99_ms"],
            "advance_to_bare": r["ratios_to_bare"]["advance"]["per_s"],
            "status_to_bare": r["ratios_to_bare"]["status"]["per_s"],
        }
        rows.append(row)
    cores = os.cpu_count() or 1
    upto = sorted((r for r in rows if r["workers"] <= cores), key=lambda r: r["workers"])
    grows = (
        all(b["advance_per_s"] > a["advance_per_s"] for a, b in itertools.pairwise(upto))
        if len(upto) > 1
        else None
    )
    return {
        "by_workers": rows,
        "cores": cores,
        "advance_grows_up_to_cores": grows,
        "advance_p99_within_target": all(
            r["advance_p99_ms"] is not None and r["advance_p99_ms"] <= TARGET_ADVANCE_P99_MS
            for r in rows
        ),
    }


def run_backend(
    label: str,
    url: str,
    location: str,
    args: argparse.Namespace,
    log_dir: Path,
    worker_counts: Sequence[int] = (1,),
) -> dict[str, Any]:
    """Populate once, then one server per worker count, each on its own cases to accept."""
    started = time.perf_counter()
    n, n_adv = args.cases, args.advances
    pop, setup = sw.populate(url, label, n, {})
    n_status = min(n, STATUS_SAMPLE)
    prep = prepare(url, n, WARM_ADVANCES, n_adv, n_status, seed=7, runs=len(worker_counts))
    setup["setup_prepare_s"] = round(prep.prepare_s, 2)
    setup["setup_s"] = round(time.perf_counter() - started, 2)
    c.note(f"{label}: {n:,} cases ready in {setup['setup_s']:.1f} s; starting the server")

    runs = []
    for k, workers in enumerate(worker_counts):
        if k:
            settle(url)  # the last run's updated rows vacuumed: each run starts alike
        runs.append(run_server(label, url, prep, k, workers, args, log_dir))
    written = count_accepted(url)
    ok_advances = sum(r["advances_ok"] for r in runs)
    return {
        "backend": label,
        "location": location,
        "cases": n,
        "records": pop.records,
        "connections": args.connections,
        "runs": runs,
        "scaling": scaling(runs),
        "errors": sum(r["errors"] for r in runs),
        "written": written,
        "written_ok": written["cases_accepted"] == ok_advances == written["accept_events"],
        "advances_ok": ok_advances,
        **setup,
        "run_s": round(time.perf_counter() - started - setup["setup_s"], 2),
    }


# -- report ------------------------------------------------------------------------------------


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def print_backend(r: dict[str, Any]) -> None:
    runs = r["runs"]
    print(f"\n{r['backend']}  ({r['location']})")
    print(
        f"  {r['cases']:,} objection cases stored ({r['records']:,} records); client: "
        f"{r['connections']} keep-alive connections, raw asyncio ({runs[0]['client_loop']}), "
        "own process" + (", opened balanced over the workers" if len(runs) > 1 else "")
    )
    for run in runs:
        print_run(r, run)
    if len(runs) > 1:
        print_scaling(r)
    w = r["written"]
    print(
        f"  written: {w['cases_accepted']:,} cases accepted, {w['accept_events']:,} accept events "
        f"for {r['advances_ok']:,} advances answered 200 (warm-up included) — "
        f"{'consistent' if r['written_ok'] else 'INCONSISTENT'}"
    )
    print(
        f"  setup {r['setup_s']:.1f} s (migrate and templates {r['setup_prep_s']:.1f} s, bulk "
        f"{r['setup_bulk_s']:.1f} s, settle {r['setup_settle_s']:.1f} s, token and access codes "
        f"{r['setup_prepare_s']:.1f} s); servers and load {r['run_s']:.1f} s"
    )
    print(f"  note: {NOTE_CORES} ({os.cpu_count()} cores here)")


def print_run(r: dict[str, Any], run: dict[str, Any]) -> None:
    s, n = run["server"], run["workers"]
    procs = f"pid {s['pid']}" + (
        f" (supervisor), workers {', '.join(map(str, s['worker_pids']))}" if n > 1 else ""
    )
    threads = "+".join(_f(x, "d") for x in s["threads_at_end"])
    print(
        f"\n  server: uvicorn, {n} worker{'s' if n > 1 else ''}, uvloop + httptools, {procs}; "
        f"{threads} threads at the end, DB pool {s['pool_size']} per worker"
    )
    print(
        f"  {'phase':34}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>7}{'÷bare':>7}{'÷healthz':>10}{'p50 ×':>7}{'srv ms/req':>11}{'srv CPU':>8}"
        f"{'cli CPU':>8}{'other':>7}"
    )
    for key, m in run["phases"].items():
        q, b = run["ratios_to_healthz"][key], run["ratios_to_bare"][key]
        print(
            f"  {m['label']:34}{m['requests']:>9,}{c.fmt_int(m['per_s']):>9}"
            f"{_f(m['p50_ms'], '.2f'):>9}{_f(m['p99_ms'], '.2f'):>9}{_f(m['max_ms'], '.1f'):>9}"
            f"{m['errors']:>7}{_f(b['per_s'], '.2f') + 'x':>7}{_f(q['per_s'], '.2f') + 'x':>10}"
            f"{_f(q['p50'], '.1f') + 'x':>7}{_f(m['server_cpu_ms_per_req'], '.3f'):>11}"
            f"{_f(m['server_cpu_pct'], '.0f') + '%':>8}{_f(m['client_cpu_pct'], '.0f') + '%':>8}"
            f"{_f(m['other_cpu_pct'], '.0f') + '%':>7}"
        )
    print(
        "  (÷bare, ÷healthz: req/s as a fraction of that route's; p50 ×: p50 as a multiple of "
        "healthz's; CPU: % of one core over the phase, the server's summed over its processes; "
        "other: the rest of the machine"
        + (", PostgreSQL included)" if "PostgreSQL" in r["backend"] else ")")
    )
    if n > 1:
        spread = "; ".join(
            f"{k} {'/'.join(map(str, m['conns_per_worker']))} conns, "
            + "/".join(_f(x, ".0f") for x in m["worker_cpu_pct"])
            + "% CPU"
            for k, m in run["phases"].items()
        )
        print(f"  per worker: {spread}")
    busy = [k for k, m in run["phases"].items() if (m["other_cpu_pct"] or 0) > 20]
    if busy and "PostgreSQL" not in r["backend"]:
        print(
            f"  WARNING: other processes used more than 20% of a core during {', '.join(busy)}: "
            "those figures are low; rerun on a quiet machine"
        )
    adv, st, t = run["phases"]["advance"], run["phases"]["status"], run["targets"]
    if adv["stopped_by"] == "time":
        print(f"  note: the advance phase stopped at its time limit after {adv['requests']:,}")
    p99 = (
        f"p99 ≤ {TARGET_ADVANCE_P99_MS:.0f} ms — "
        f"{'meets' if t['advance_p99'] else 'MISSES'} ({_f(adv['p99_ms'], '.1f')} ms)"
    )
    if t["advance_targets_apply"]:
        print(
            f"  target: advances ≥ {TARGET_ADVANCE_PER_S:,.0f}/s — "
            f"{'meets' if t['advance_per_s'] else 'MISSES'} ({c.fmt_int(adv['per_s'])}/s); {p99}"
        )
    else:
        print(
            f"  target: advance {p99} at {r['connections']} connections "
            f"(≥ {TARGET_ADVANCE_PER_S:,.0f}/s is set for SQLite)"
        )
    size = (
        "at the target's size"
        if t["status_at_target_size"]
        else f"target set at {TARGET_STATUS_CASES:,} cases: run --full"
    )
    print(
        f"  target: status p99 ≤ {TARGET_STATUS_P99_MS:.0f} ms — "
        f"{'meets' if t['status_p99'] else 'MISSES'} ({_f(st['p99_ms'], '.2f')} ms; {size})"
    )
    if run["errors"]:
        print(f"  ERRORS: {run['errors']} (warm-up included); the first ones:")
        for m in (*run["warm_up"].values(), *run["phases"].values()):
            for e in m["first_errors"]:
                warm = ", warm-up" if m["warm_up"] else ""
                print(f"    [{m['phase']}{warm}] {adv_short(e)}")


def print_scaling(r: dict[str, Any]) -> None:
    sc = r["scaling"]
    print(f"\n  by worker count ({r['connections']} connections; ×1: req/s over one worker's)")
    print(
        f"  {'workers':>7}{'bare/s':>9}{'×1':>6}{'advance/s':>11}{'×1':>6}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'÷bare':>7}{'status/s':>10}{'×1':>6}{'p99 ms':>8}{'÷bare':>7}"
    )
    for x in sc["by_workers"]:
        print(
            f"  {x['workers']:>7}{c.fmt_int(x['bare_per_s']):>9}{_f(x['bare_vs_1'], '.2f'):>6}"
            f"{c.fmt_int(x['advance_per_s']):>11}{_f(x['advance_vs_1'], '.2f'):>6}"
            f"{_f(x['advance_p50_ms'], '.1f'):>8}{_f(x['advance_p99_ms'], '.1f'):>8}"
            f"{_f(x['advance_to_bare'], '.2f'):>7}{c.fmt_int(x['status_per_s']):>10}"
            f"{_f(x['status_vs_1'], '.2f'):>6}{_f(x['status_p99_ms'], '.2f'):>8}"
            f"{_f(x['status_to_bare'], '.2f'):>7}"
        )
    grows = sc["advance_grows_up_to_cores"]
    verdict = "-" if grows is None else ("meets" if grows else "MISSES")
    print(
        f"  target: advances/s grow with workers up to the cores ({sc['cores']}) — {verdict}; "
        f"advance p99 ≤ {TARGET_ADVANCE_P99_MS:.0f} ms at every count — "
        f"{'meets' if sc['advance_p99_within_target'] else 'MISSES'}"
    )


def adv_short(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- main --------------------------------------------------------------------------------------


def worker_list(text: str) -> list[int]:
    """`1,2,4` → [1, 2, 4]: positive, each once, in the order given."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"worker counts must be positive and distinct: {text!r}")
    return counts


def _on_alarm(signum: int, frame: Any) -> None:
    raise TimeoutError("the benchmark's time limit was reached")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cases", type=int, default=None, help=f"cases (default {DEFAULT_CASES:,})")
    ap.add_argument(
        "--advances",
        type=int,
        default=None,
        help=f"advances, one case each (default {DEFAULT_ADVANCES:,}; {FULL_ADVANCES:,} --full)",
    )
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"length of the bare, healthz and status phases (default {DEFAULT_SECONDS:g}; "
        f"{FULL_SECONDS:g} with --full)",
    )
    ap.add_argument(
        "--full",
        action="store_true",
        help=f"{FULL_CASES:,} cases, {FULL_ADVANCES:,} advances, {FULL_SECONDS:g} s phases",
    )
    ap.add_argument("--connections", type=int, default=CONNECTIONS, help="keep-alive connections")
    ap.add_argument(
        "--advance-limit",
        type=float,
        default=ADVANCE_LIMIT_S,
        help="seconds after which the advance phase stops even if cases are left",
    )
    ap.add_argument(
        "--workers",
        type=worker_list,
        default=[1],
        metavar="N[,N...]",
        help="uvicorn worker processes, one server per count in turn, e.g. 1,2,4 (PostgreSQL "
        "only; SQLite runs one: one writer)",
    )
    ap.add_argument(
        "--time-limit",
        type=int,
        default=None,
        help=f"seconds for the whole run (default {TIME_LIMIT_S}, plus "
        f"{TIME_LIMIT_PER_EXTRA_S} for each further worker count)",
    )
    c.add_backend_args(ap, sqlite_switch=True)
    args = ap.parse_args(argv)
    args.cases = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    args.advances = args.advances or (FULL_ADVANCES if args.full else DEFAULT_ADVANCES)
    args.seconds = args.seconds or (FULL_SECONDS if args.full else DEFAULT_SECONDS)
    if args.advances < 100 or args.connections < 1 or args.seconds <= 0:
        ap.error("--advances must be at least 100, --connections and --seconds positive")
    pg_url = None if args.no_pg else args.pg
    pg_workers: list[int] = args.workers
    runs = len(pg_workers) if pg_url else 1
    if args.cases < runs * (args.advances + WARM_ADVANCES) + 1:
        ap.error(
            f"--cases must be at least {runs} × (--advances + {WARM_ADVANCES}) + 1 "
            "(each worker count accepts its own cases)"
        )
    if max(pg_workers) > 1 and not args.no_sqlite:
        c.note("note: SQLite runs one worker (one writer); --workers applies to PostgreSQL")
    if args.time_limit is None:
        args.time_limit = TIME_LIMIT_S + TIME_LIMIT_PER_EXTRA_S * (len(pg_workers) - 1)
    load_before = [round(x, 2) for x in os.getloadavg()]

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(args.time_limit)
    started = time.perf_counter()
    results: dict[str, Any] = {"sqlite": None, "postgresql": None}
    tmp = Path(tempfile.mkdtemp(prefix="redress-bench-"))
    try:
        if not args.no_sqlite:
            with c.sqlite_backend(args.sqlite_dir or tmp, "api-load") as b:
                results["sqlite"] = run_backend(b.label, b.url, b.where, args, tmp)
            print_backend(results["sqlite"])

        if pg_url:
            with c.pg_backend(pg_url) as b:
                results["postgresql"] = run_backend(b.label, b.url, b.where, args, tmp, pg_workers)
            print_backend(results["postgresql"])
        else:
            print(c.PG_SKIPPED)
    finally:
        signal.alarm(0)
        shutil.rmtree(tmp, ignore_errors=True)

    machine = c.machine_info(c.libpq_url(pg_url) if pg_url else None)
    errors = sum(r["errors"] for r in results.values() if r)
    c.emit_json(
        BENCH,
        {
            "cases": args.cases,
            "advances": args.advances,
            "warm_advances": WARM_ADVANCES,
            "phase_seconds": args.seconds,
            "connections": args.connections,
            "workers_pg": pg_workers,
            "now": NOW.isoformat(),
            "targets": {
                "advance_per_s_sqlite": TARGET_ADVANCE_PER_S,
                "advance_p99_ms_sqlite": TARGET_ADVANCE_P99_MS,
                "status_p99_ms": TARGET_STATUS_P99_MS,
                "status_at_cases": TARGET_STATUS_CASES,
            },
            **results,
            "errors": errors,
            "note": NOTE_CORES,
            "versions": versions(),
            "machine": machine,
            "loadavg_before": load_before,  # machine["loadavg"] is at the end
            "total_s": round(time.perf_counter() - started, 2),
        },
    )
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
