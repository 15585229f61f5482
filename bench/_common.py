"""Shared helpers for the benchmarks in `bench/`.

Timing (nanosecond samples, percentiles), memory readings (RSS from /proc/self/statm, Python's
allocated blocks, gc objects), the machine a run happened on, private PostgreSQL schemas, a
small office to run commands in (the setup idea of tests/conftest.py, copied, not imported),
and the one JSON line every benchmark ends with.

Benchmarks run as scripts (`python bench/advance.py`), so this module is imported as `_common`.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import uuid
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.clock import FixedClock
from engine.db import Database, Tx, sqlite_pragmas
from engine.migrate import upgrade
from engine.service import Actor, Engine
from engine.settings import get_settings
from states.identifiers import make_uscc

# Benchmarks hash tokens and serve the app: a throwaway strong key of their own, unless one
# is set (the server refuses the development key outside dev mode).
os.environ.setdefault("REDRESS_SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)
get_settings.cache_clear()

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 7 April 2026, 09:00 in Shanghai: an ordinary working day (as in tests/conftest.py).
BENCH_NOW = datetime(2026, 4, 7, 9, 0, tzinfo=SHANGHAI)
PG_ENV_VARS = ("REDRESS_BENCH_PG_URL", "REDRESS_TEST_DATABASE_URL")

APPLICANT: dict[str, Any] = {
    "kind": "enterprise",
    "name": "上海示例贸易有限公司",
    "identifier": make_uscc("91310000MA1FL8XX1"),
}
OBJECTION_INTAKE: dict[str, Any] = {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True}

# Progress bars and notes go to stderr: stdout carries the report and ends with the JSON line.
err = Console(stderr=True)


def note(text: str) -> None:
    err.print(text, highlight=False)


# -- timing ------------------------------------------------------------------------------------


class Samples:
    """Per-operation durations in nanoseconds, preallocated so recording allocates nothing."""

    def __init__(self, capacity: int) -> None:
        self._ns = array("q", bytes(8 * capacity))
        self.n = 0

    def add(self, ns: int) -> None:
        self._ns[self.n] = ns
        self.n += 1

    def values(self) -> list[int]:
        return list(self._ns[: self.n])


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(samples_ns: Sequence[int]) -> dict[str, float]:
    """Operations per second (over the time spent in the operations), mean/p50/p99/max in ms."""
    values = sorted(samples_ns)
    total = sum(values)
    n = len(values)
    return {
        "n": n,
        "per_s": round(n / (total / 1e9), 1) if total else float("nan"),
        "mean_ms": round(total / n / 1e6, 4) if n else float("nan"),
        "p50_ms": round(percentile(values, 50) / 1e6, 4),
        "p99_ms": round(percentile(values, 99) / 1e6, 4),
        "max_ms": round(values[-1] / 1e6, 4) if n else float("nan"),
    }


# -- memory ------------------------------------------------------------------------------------


def rss_kb() -> int:
    """Resident set size of this process in KiB (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def memory_snapshot() -> dict[str, int]:
    """RSS, Python's allocated memory blocks and gc-tracked objects, after a full collection."""
    gc.collect()
    return {
        "rss_kb": rss_kb(),
        "py_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
    }


def growth_per_1000(
    before: Mapping[str, int], after: Mapping[str, int], ops: int
) -> dict[str, float]:
    """How much each memory figure grew per 1000 operations between two snapshots."""
    return {k: round((after[k] - before[k]) * 1000 / ops, 2) for k in before}


# -- machine -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fs_type(path: Path) -> str | None:
    """The filesystem type holding `path` (longest mount-point prefix in /proc/mounts)."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return None
    target = str(path.resolve())
    best: tuple[int, str] | None = None
    for mount_point, kind in mounts:
        mp = mount_point.rstrip("/") or "/"
        if (target == mp or target.startswith(mp.rstrip("/") + "/")) and (
            best is None or len(mp) > best[0]
        ):
            best = (len(mp), kind)
    return best[1] if best else None


def pg_server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def machine_info(pg_url: str | None = None) -> dict[str, Any]:
    import psycopg
    import sqlalchemy

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "postgresql": pg_server_version(pg_url) if pg_url else None,
    }


# -- PostgreSQL --------------------------------------------------------------------------------


def default_pg_url() -> str | None:
    for var in PG_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def schema_url(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (as tests/conftest.py does)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def libpq_url(url: str) -> str:
    """A URL psycopg.connect accepts (no SQLAlchemy driver suffix)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


@contextmanager
def pg_schema(url: str, prefix: str = "bench") -> Iterator[str]:
    """A private schema `<prefix>_<random>`, dropped afterwards; yields a URL that uses it."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(url, schema)
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@dataclass(frozen=True)
class Backend:
    """Where one benchmark run stores its data: a label, a URL, and a line saying where."""

    label: str
    url: str
    where: str


@contextmanager
def sqlite_backend(sqlite_dir: Path | None, name: str) -> Iterator[Backend]:
    """A fresh SQLite file `<name>-<random>.db` in sqlite_dir (a temporary directory when None),
    removed afterwards with its WAL and shared-memory files."""
    tmp = None
    if sqlite_dir is None:
        tmp = sqlite_dir = Path(tempfile.mkdtemp(prefix="redress-bench-"))
    else:
        sqlite_dir.mkdir(parents=True, exist_ok=True)
    db_file = sqlite_dir / f"{name}-{uuid.uuid4().hex[:8]}.db"
    try:
        yield Backend(
            f"SQLite {sqlite3.sqlite_version}",
            f"sqlite:///{db_file}",
            f"{db_file}, {fs_type(sqlite_dir) or '?'}; WAL, synchronous=NORMAL",
        )
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def sqlite_connect(path: str) -> sqlite3.Connection:
    """A bare sqlite3 connection set up as the engine sets up its own (same PRAGMAs), with
    the driver's transaction handling off: the caller sends BEGIN IMMEDIATE and COMMIT.

    The engine checkpoints the WAL on a thread of its own (engine/db.py `Checkpointer`), and
    its writer finishes the copy when the WAL is to start over; a bare connection that writes
    should call `after_commit` after its commits, so that every system in a benchmark runs
    under the same checkpointing."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    settings = get_settings()
    for pragma in sqlite_pragmas(settings.sqlite_busy_timeout_ms, settings.sqlite_mmap_bytes):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def driver_connection(url: str) -> Any:
    """A plain driver connection to the database at url, set up as the engine sets up its own
    (the floors' and SpiffWorkflow's)."""
    if url.startswith("sqlite"):
        return sqlite_connect(url.split("///", 1)[1])
    import psycopg

    return psycopg.connect(libpq_url(url))


def after_commit(db: Database, conn: Any) -> Callable[[], None]:
    """What the bare connection `conn` calls after its COMMIT: what the engine's writer does
    (engine/db.py `Checkpointer.after_commit`)."""
    ck = db.checkpointer
    if ck is None:
        return lambda: None
    return lambda: ck.after_commit(conn)


def write_connection(db: Database) -> Any:
    """The driver connection to trace the engine's next write on: the SQLite writer's own. On
    PostgreSQL, a pooled one, which the next write may not get (the pool hands them out in
    turn); the benchmarks then say there is no driver trace and compare the Tx calls only."""
    raw = db.writer_connection()
    if raw is None:
        fairy = db.engine.raw_connection()
        raw = fairy.driver_connection
        fairy.close()
    return raw


@contextmanager
def pg_backend(pg_url: str) -> Iterator[Backend]:
    """A private schema on the PostgreSQL server at pg_url (`pg_schema`), dropped afterwards."""
    version = pg_server_version(libpq_url(pg_url))
    with pg_schema(pg_url) as url:
        schema = url.rsplit("%3D", 1)[1]
        host = pg_url.split("@")[-1].split("?")[0]
        yield Backend(f"PostgreSQL {version}", url, f"{host}, schema {schema} (dropped afterwards)")


PG_SKIPPED = (
    "\nPostgreSQL: skipped (no --pg URL, REDRESS_BENCH_PG_URL or REDRESS_TEST_DATABASE_URL)"
)


# -- a small office ----------------------------------------------------------------------------


@dataclass
class Office:
    """A credit office and two determining units with staff of every role (cf. build_world)."""

    engine: Engine
    clock: FixedClock
    actors: dict[str, Actor]

    def actor(self, key: str) -> Actor:
        return self.actors[key]


def migrated_database(url: str, pool_size: int = 2) -> Database:
    db = Database(url, pool_size=pool_size)
    upgrade(db.engine)
    return db


def build_office(db: Database, now: datetime = BENCH_NOW) -> Office:
    clock = FixedClock(now)
    engine = Engine(db, clock=clock)
    engine.add_department("office", "市信用办", "City Credit Office", kind="credit_office")
    engine.add_department("amr", "市市场监管局", "Market Regulation Bureau")
    engine.add_department("hrss", "市人社局", "Human Resources Bureau")
    actors: dict[str, Actor] = {}
    for dept in ("office", "amr", "hrss"):
        for role in ("handler", "reviewer", "head", "credit_office", "admin"):
            name = f"{dept}_{role}"
            _, token = engine.add_user(name, role, dept)
            actors[name] = engine.authenticate(token)
    return Office(engine, clock, actors)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _each(
    fn: Callable[[Any], Any], items: Sequence[Any], workers: int, tick: Callable[[], None] | None
) -> list[Any]:
    """`fn` over `items` in order, on `workers` threads (the engine is thread-safe)."""
    out = []
    if workers <= 1:
        for item in items:
            out.append(fn(item))
            if tick:
                tick()
        return out
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(fn, items):
            out.append(result)
            if tick:
                tick()
    return out


def create_records(
    office: Office, n: int, tick: Callable[[], None] | None = None, workers: int = 1
) -> list[int]:
    """`n` published enterprise records, as the credit office publishes them."""
    actor = office.actor("office_credit_office")

    def one(i: int) -> int:
        return int(
            office.engine.create_record(
                actor=actor,
                subject_kind="enterprise",
                subject_name="上海示例贸易有限公司",
                subject_identifier=make_uscc(f"91310000MA1FL{i % 65536:04X}"),
                source_category="administrative_penalty",
                severity="general",
                determining_unit="amr",
                decision_date=date(2025, 6, 1),
                published_from=date(2025, 6, 1),
                content={"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
            )
        )

    return _each(one, range(n), workers, tick)


def open_objections(
    office: Office,
    record_ids: Sequence[int],
    tick: Callable[[], None] | None = None,
    workers: int = 1,
) -> list[int]:
    """One objection per record, filed by the office's handler; returns the case ids."""
    actor = office.actor("office_handler")

    def one(rid: int) -> int:
        return int(
            office.engine.open_case(
                procedure="objection",
                record_id=rid,
                applicant=APPLICANT,
                actor=actor,
                payload=OBJECTION_INTAKE,
            ).case_id
        )

    return _each(one, record_ids, workers, tick)


def pg_vacuum_analyze(url: str) -> None:
    """Settle a freshly filled PostgreSQL schema, so autovacuum does not start mid-run."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        for (table,) in tables:  # this schema's tables only, not the whole database
            conn.execute(f'VACUUM ANALYZE "{table}"')


# -- output ------------------------------------------------------------------------------------


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def emit_json(bench: str, figures: Mapping[str, Any]) -> None:
    """The benchmark's last stdout line: one JSON object with all its figures."""
    line = json.dumps(
        {"bench": bench, **figures}, ensure_ascii=False, separators=(",", ":"), default=str
    )
    print(line, flush=True)


def add_backend_args(ap: Any, sqlite_switch: bool = True) -> None:
    """--pg, --no-pg, (--no-sqlite,) --sqlite-dir: the same for every benchmark."""
    from pathlib import Path as _Path

    ap.add_argument(
        "--pg",
        default=default_pg_url(),
        metavar="URL",
        help="PostgreSQL URL (default: $REDRESS_BENCH_PG_URL or "
        "$REDRESS_TEST_DATABASE_URL); a private schema is created and dropped",
    )
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL even if a URL is set")
    if sqlite_switch:
        ap.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    ap.add_argument(
        "--sqlite-dir",
        type=_Path,
        default=None,
        help="directory for the SQLite file (default: a fresh temporary directory)",
    )


TX_METHODS = ("execute", "executemany", "one", "all")


@contextmanager
def observe_tx(observe: Callable[[str, str, Any, Any], None]) -> Iterator[None]:
    """While the block runs, pass every statement the engine sends through `Tx` to
    observe(method, sql, params, result)."""
    originals = {name: getattr(Tx, name) for name in TX_METHODS}

    def recorder(name: str, fn: Any) -> Any:
        def wrapped(self: Tx, text: str, params: Any = None) -> Any:
            result = fn(self, text, params)
            observe(name, text, params, result)
            return result

        return wrapped

    for name, fn in originals.items():
        setattr(Tx, name, recorder(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(Tx, name, fn)
