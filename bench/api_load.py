"""HTTP load on loopback: advances and status look-ups per second beside `GET /healthz`.

The issue's figures: requests per second, p50 and p99 at 16 keep-alive connections, for
`POST /api/v1/cases/{id}/actions/accept` (every request a different `submitted` objection case)
and `GET /api/v1/status/{case_no}` (header X-Access-Code, random cases), beside `GET /healthz`
(the baseline) in the same run against the same server. Targets, on SQLite with one worker: at
least 2,000 advances per second with p99 ≤ 50 ms; status p99 ≤ 10 ms with 1,000,000 cases stored.

The server is a real `uvicorn` process (one worker, uvloop + httptools, log level warning, no
access log) on 127.0.0.1 and a free port, serving `api.app.create_app` on the benchmark's
database (`make_app` below, the `--factory` target: the engine built from REDRESS_DATABASE_URL as
`redress serve --no-engine-loop` builds it, but on a fixed clock — the benchmark's "now", so the
bulk-loaded cases' deadlines mean what they were made to mean). One route is added for the
benchmark only, after all of the app's: `GET /_bench/bare`, an `async def` returning a small
dict, the floor of framework + server + client on this machine.

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

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.metadata
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
TIME_LIMIT_S = 1800  # the whole run
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
    the engine on the benchmark's fixed clock, plus the bench-only `GET /_bench/bare`."""
    from api.app import create_app, settle_heap
    from engine.deadlines import Deadlines
    from engine.factory import build_engine

    engine = build_engine(clock=FixedClock(NOW), migrated=True)
    Deadlines(engine).refresh_calendar()  # as `redress serve` does before serving
    app = create_app(engine)

    @app.get("/_bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

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
    """`python -m uvicorn` in a subprocess; stopped (SIGINT, then SIGKILL) by `stop`."""

    def __init__(self, url: str, secret: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = url
        self.secret = secret
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
            "1",
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

    def start(self, timeout: float = 60.0) -> None:
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
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"the server did not answer /healthz in {timeout:.0f} s")

    def threads(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
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


async def open_conn(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


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
    }


async def run_phase(port: int, server_pid: int, phase: Phase, connections: int) -> dict[str, Any]:
    run = PhaseRun(phase)
    conns = [await open_conn(port) for _ in range(connections)]  # opened before the clock
    tick = os.sysconf("SC_CLK_TCK")
    s0, c0, m0 = cpu_ticks(server_pid), time.process_time(), machine_busy_ticks()
    run.deadline = time.monotonic() + phase.max_seconds
    t0 = time.perf_counter_ns()
    await asyncio.gather(*(connection(run, port, conn) for conn in conns))
    wall_ns = time.perf_counter_ns() - t0
    s1, c1, m1 = cpu_ticks(server_pid), time.process_time(), machine_busy_ticks()
    server_cpu = (s1 - s0) / tick if s0 is not None and s1 is not None else None
    machine_cpu = (m1 - m0) / tick if m0 is not None and m1 is not None else None
    return summarize_run(run, wall_ns, server_cpu, c1 - c0, machine_cpu)


async def run_phases(
    port: int, server_pid: int, phases: Sequence[Phase], connections: int
) -> list[dict[str, Any]]:
    out = []
    for phase in phases:
        out.append(await run_phase(port, server_pid, phase, connections))
        await asyncio.sleep(0.3)  # let the server settle (closed connections, pool returns)
    return out


def client_main(port: int, server_pid: int, connections: int, pipe: Any) -> None:
    """The client process: receives the phases on `pipe`, runs them in order, sends back the
    results (or the error)."""
    try:
        phases: list[Phase] = pipe.recv()
        try:
            import uvloop

            results = uvloop.run(run_phases(port, server_pid, phases, connections))
            loop = "uvloop"
        except ImportError:
            results = asyncio.run(run_phases(port, server_pid, phases, connections))
            loop = "asyncio"
        pipe.send({"loop": loop, "results": results})
    except BaseException as exc:  # reported by the parent
        pipe.send({"error": repr(exc)})
        raise
    finally:
        pipe.close()


def run_client(
    port: int, server_pid: int, phases: Sequence[Phase], connections: int
) -> tuple[str, list[dict[str, Any]]]:
    """The phases in a client process of its own. They go over the pipe after the start (not
    as spawn arguments), so a child that dies early is an error here, not a hang."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no pools or threads of this process
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(
        target=client_main, args=(port, server_pid, connections, theirs), daemon=True
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
    warm_ids: list[int]
    advance_ids: list[int]
    status_nos: list[bytes]
    prepare_s: float


def phases_for(prep: Prepared, seconds: float, advance_limit: float) -> list[Phase]:
    """Warm-up and measured phases, in order: bare, healthz, advance, status."""
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
            prep.warm_ids,
            len(prep.warm_ids),
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
            prep.advance_ids,
            len(prep.advance_ids),
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


def prepare(url: str, n: int, n_warm: int, n_adv: int, n_status: int, seed: int) -> Prepared:
    """A handler's token, the cases to accept (each once), and the status phase's cases with
    the hash of ACCESS_CODE (the other cases keep the template's)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    picked = rng.sample(range(2, n + 1), n_warm + n_adv)  # case 1 is the engine-made template
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
    return Prepared(
        token,
        picked[:n_warm],
        picked[n_warm:],
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


def run_backend(
    label: str, url: str, location: str, args: argparse.Namespace, log_dir: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    n, n_adv = args.cases, args.advances
    pop, setup = sw.populate(url, label, n, {})
    n_status = min(n, STATUS_SAMPLE)
    prep = prepare(url, n, WARM_ADVANCES, n_adv, n_status, seed=7)
    setup["setup_prepare_s"] = round(prep.prepare_s, 2)
    setup["setup_s"] = round(time.perf_counter() - started, 2)
    c.note(f"{label}: {n:,} cases ready in {setup['setup_s']:.1f} s; starting the server")

    server = Server(url, get_settings().secret_key, log_dir)
    try:
        server.start()
        phases = phases_for(prep, args.seconds, args.advance_limit)
        c.note(f"{label}: server pid {server.pid} on {HOST}:{server.port}; running the load")
        loop, results = run_client(server.port, server.pid, phases, args.connections)
        threads = server.threads()
    finally:
        rc = server.stop()
    log_tail = server.log_tail(10)

    measured = {r["phase"]: r for r in results if not r["warm_up"]}
    warm = {r["phase"]: r for r in results if r["warm_up"]}
    ok_advances = sum(r["statuses"].get("200", 0) for r in results if r["phase"] == "advance")
    written = count_accepted(url)
    base = measured["healthz"]

    def ratio(x: float | None, y: float | None) -> float | None:
        return round(x / y, 3) if x is not None and y else None

    ratios = {
        k: {
            "per_s": ratio(measured[k]["per_s"], base["per_s"]),
            "p50": ratio(measured[k]["p50_ms"], base["p50_ms"]),
            "p99": ratio(measured[k]["p99_ms"], base["p99_ms"]),
        }
        for k in measured
    }
    adv, st = measured["advance"], measured["status"]
    return {
        "backend": label,
        "location": location,
        "cases": n,
        "records": pop.records,
        "server": {
            "argv": " ".join(server.argv[1:]),
            "pid": server.pid,
            "threads_at_end": threads,
            "exit_code": rc,
            "log_tail": log_tail,
            "pool_size": get_settings().pool_size,
        },
        "client_loop": loop,
        "connections": args.connections,
        "phases": measured,
        "warm_up": warm,
        "ratios_to_healthz": ratios,
        "errors": sum(r["errors"] for r in results),
        "written": written,
        "written_ok": written["cases_accepted"] == ok_advances == written["accept_events"],
        "advances_ok": ok_advances,
        "targets": {
            "advance_per_s": adv["per_s"] >= TARGET_ADVANCE_PER_S,
            "advance_p99": adv["p99_ms"] is not None and adv["p99_ms"] <= TARGET_ADVANCE_P99_MS,
            "status_p99": st["p99_ms"] is not None and st["p99_ms"] <= TARGET_STATUS_P99_MS,
            "status_at_target_size": n >= TARGET_STATUS_CASES,
            "advance_targets_apply": label.startswith("SQLite"),
        },
        **setup,
        "run_s": round(time.perf_counter() - started - setup["setup_s"], 2),
    }


# -- report ------------------------------------------------------------------------------------


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def print_backend(r: dict[str, Any]) -> None:
    s = r["server"]
    print(f"\n{r['backend']}  ({r['location']})")
    print(
        f"  {r['cases']:,} objection cases stored ({r['records']:,} records); server: "
        f"uvicorn, 1 worker, uvloop + httptools, pid {s['pid']}, {s['threads_at_end']} threads "
        f"at the end, DB pool {s['pool_size']}; client: {r['connections']} keep-alive "
        f"connections, raw asyncio ({r['client_loop']}), own process"
    )
    print(
        f"  {'phase':34}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>7}{'÷healthz':>10}{'p50 ×':>7}{'srv ms/req':>11}{'srv CPU':>8}{'cli CPU':>8}"
        f"{'other':>7}"
    )
    for key, m in r["phases"].items():
        q = r["ratios_to_healthz"][key]
        print(
            f"  {m['label']:34}{m['requests']:>9,}{c.fmt_int(m['per_s']):>9}"
            f"{_f(m['p50_ms'], '.2f'):>9}{_f(m['p99_ms'], '.2f'):>9}{_f(m['max_ms'], '.1f'):>9}"
            f"{m['errors']:>7}{_f(q['per_s'], '.2f') + 'x':>10}{_f(q['p50'], '.1f') + 'x':>7}"
            f"{_f(m['server_cpu_ms_per_req'], '.3f'):>11}"
            f"{_f(m['server_cpu_pct'], '.0f') + '%':>8}{_f(m['client_cpu_pct'], '.0f') + '%':>8}"
            f"{_f(m['other_cpu_pct'], '.0f') + '%':>7}"
        )
    print(
        "  (÷healthz: req/s as a fraction of GET /healthz's; p50 ×: p50 as a multiple of its; "
        "CPU: % of one core over the phase; other: the rest of the machine"
        + (", PostgreSQL included)" if "PostgreSQL" in r["backend"] else ")")
    )
    busy = [k for k, m in r["phases"].items() if (m["other_cpu_pct"] or 0) > 20]
    if busy and "PostgreSQL" not in r["backend"]:
        print(
            f"  WARNING: other processes used more than 20% of a core during {', '.join(busy)}: "
            "those figures are low; rerun on a quiet machine"
        )
    adv, st, t = r["phases"]["advance"], r["phases"]["status"], r["targets"]
    if adv["stopped_by"] == "time":
        print(f"  note: the advance phase stopped at its time limit after {adv['requests']:,}")
    if t["advance_targets_apply"]:
        print(
            f"  target: advances ≥ {TARGET_ADVANCE_PER_S:,.0f}/s — "
            f"{'meets' if t['advance_per_s'] else 'MISSES'} ({c.fmt_int(adv['per_s'])}/s); "
            f"p99 ≤ {TARGET_ADVANCE_P99_MS:.0f} ms — "
            f"{'meets' if t['advance_p99'] else 'MISSES'} ({adv['p99_ms']:.1f} ms)"
        )
    else:
        print("  (the advance targets are set for SQLite; shown for comparison)")
    size = (
        "at the target's size"
        if t["status_at_target_size"]
        else f"target set at {TARGET_STATUS_CASES:,} cases: run --full"
    )
    print(
        f"  target: status p99 ≤ {TARGET_STATUS_P99_MS:.0f} ms — "
        f"{'meets' if t['status_p99'] else 'MISSES'} ({_f(st['p99_ms'], '.2f')} ms; {size})"
    )
    w = r["written"]
    print(
        f"  written: {w['cases_accepted']:,} cases accepted, {w['accept_events']:,} accept events "
        f"for {r['advances_ok']:,} advances answered 200 (warm-up included) — "
        f"{'consistent' if r['written_ok'] else 'INCONSISTENT'}"
    )
    if r["errors"]:
        print(f"  ERRORS: {r['errors']} (warm-up included); the first ones:")
        for m in (*r["warm_up"].values(), *r["phases"].values()):
            for e in m["first_errors"]:
                warm = ", warm-up" if m["warm_up"] else ""
                print(f"    [{m['phase']}{warm}] {adv_short(e)}")
    print(
        f"  setup {r['setup_s']:.1f} s (migrate and templates {r['setup_prep_s']:.1f} s, bulk "
        f"{r['setup_bulk_s']:.1f} s, settle {r['setup_settle_s']:.1f} s, token and access codes "
        f"{r['setup_prepare_s']:.1f} s); server and load {r['run_s']:.1f} s"
    )
    print(f"  note: {NOTE_CORES} ({os.cpu_count()} cores here)")


def adv_short(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- main --------------------------------------------------------------------------------------


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
        "--time-limit", type=int, default=TIME_LIMIT_S, help="seconds for the whole run"
    )
    c.add_backend_args(ap, sqlite_switch=True)
    args = ap.parse_args(argv)
    args.cases = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    args.advances = args.advances or (FULL_ADVANCES if args.full else DEFAULT_ADVANCES)
    args.seconds = args.seconds or (FULL_SECONDS if args.full else DEFAULT_SECONDS)
    if args.advances < 100 or args.connections < 1 or args.seconds <= 0:
        ap.error("--advances must be at least 100, --connections and --seconds positive")
    if args.cases < args.advances + WARM_ADVANCES + 1:
        ap.error(f"--cases must be at least --advances + {WARM_ADVANCES + 1}")
    pg_url = None if args.no_pg else args.pg

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
                results["postgresql"] = run_backend(b.label, b.url, b.where, args, tmp)
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
            "total_s": round(time.perf_counter() - started, 2),
        },
    )
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
