"""Full `advance` commands per second against the bare floor, on SQLite and PostgreSQL.

The measured command is the objection procedure's `accept` on a fresh `submitted` case, by the
credit office's handler, with an empty payload and the expected version: a typical transition
that loads the case and its record, stops the formal-check timer, starts the mark-disputed
timer, queues the notice of acceptance, updates the case (version checked) and appends one
hash-chained event. It does not change the record.

The floor is the same SQL statements, in the same order, with parameters of the same shape,
sent straight through the DB-API driver (sqlite3 with the engine's PRAGMAs and BEGIN IMMEDIATE,
or psycopg), one transaction per case, on a second set of identical cases in the same database.
Its parameters are the ones the engine sent (constant under the fixed clock) with the case's own
ids and fetched row values put in; the floor computes no hash and runs no procedure logic.
The statement list is captured from a real `advance` during warm-up and checked against the
floor's plan before anything is timed, so the two cannot silently drift apart. Engine and floor
run in alternating blocks so that database growth and background work hit both alike.

Memory: RSS, Python's allocated blocks and gc objects, after a warm-up, after N engine advances
and after 2N (the second N on more cases), reported as growth per 1000 cases.

    python bench/advance.py                    # SQLite; PostgreSQL too if the env names one
    python bench/advance.py --pg postgresql://postgres@127.0.0.1:5432/test
    python bench/advance.py --full             # 20000 cases

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import _common as c

from engine import sql
from engine.db import Database, to_pyformat
from engine.service import Engine

BENCH = "advance"
TRIGGER = "accept"
TRANSITION = "objection accept (submitted → accepted), by office_handler, payload {}"
DEFAULT_CASES = 2000
FULL_CASES = 20000
TARGET_RATIO = 3.0
BLOCK = 250  # engine and floor alternate in blocks of this many cases
SETUP_THREADS_PG = 4

Op = Callable[[int], None]


# -- the statements --------------------------------------------------------------------------


# The Tx calls `advance(accept)` makes on a fresh case, in order: (method, SQL of engine/sql.py).
# On PostgreSQL the engine may add a row-locking clause to a SELECT; the floor sends what the
# engine sent, so it locks the same rows. The engine sends its one-row inserts with
# executemany; the floor, being the bare minimum, sends them with execute.
FLOOR_PLAN: list[tuple[str, str]] = [
    ("one", sql.CASE_FOR_COMMAND),  # the case and its record
    ("all", sql.timers_stop_live(1)),  # accept stops one timer by name, RETURNING it
    ("executemany", sql.TIMER_INSERT),
    ("all", sql.TIMERS_RUNNING),  # the deadlines the acceptance letter names
    ("executemany", sql.OUTBOX_INSERT),
    ("execute", sql.CASE_UPDATE),
    ("execute", sql.EVENT_INSERT),
]
_LOCKING = re.compile(r" FOR (?:NO KEY )?UPDATE(?: OF \w+(?:, \w+)*)?")


@dataclass
class Call:
    method: str
    sql: str
    params: dict[str, Any]
    rows: int = 1


@contextmanager
def capture_tx_calls() -> Iterator[list[Call]]:
    """Record every statement the engine sends through `Tx` while the block runs."""
    calls: list[Call] = []

    def observe(name: str, text: str, params: Any, _result: Any) -> None:
        if name != "executemany":
            calls.append(Call(name, text, dict(params or {})))
        elif params:
            calls.append(Call(name, text, dict(params[0]), len(params)))

    with c.observe_tx(observe):
        yield calls


def check_plan(calls: Sequence[Call], pg: bool) -> list[str]:
    """Differences between what the engine sent and the floor's plan (empty when identical)."""
    problems = []
    for i in range(max(len(calls), len(FLOOR_PLAN))):
        got = (calls[i].method, calls[i].sql) if i < len(calls) else ("nothing", "")
        want = FLOOR_PLAN[i] if i < len(FLOOR_PLAN) else ("nothing", "")
        same = got[0] == want[0] and got[1].startswith(want[1])
        rest = got[1][len(want[1]) :] if same else ""
        if not same or (rest and not (pg and _LOCKING.fullmatch(rest))):
            problems.append(
                f"statement {i + 1}: the engine sent {got[0]} {got[1]!r}, "
                f"the floor plans {want[0]} {want[1]!r}"
            )
            break
    for k in calls:
        if k.rows != 1:
            problems.append(f"{short(k.sql)} went with {k.rows} rows, the floor sends 1")
    return problems


def short(text: str, width: int = 72) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- what the driver actually sees -------------------------------------------------------------


@dataclass
class Trace:
    statements: list[str] = field(default_factory=list)
    round_trips: int | None = None  # PostgreSQL only: Query + Sync messages sent


@contextmanager
def sqlite_trace(conn: sqlite3.Connection) -> Iterator[Trace]:
    trace = Trace()
    conn.set_trace_callback(trace.statements.append)
    try:
        yield trace
    finally:
        conn.set_trace_callback(None)


_PQ_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)", re.MULTILINE)


@contextmanager
def pg_trace(conn: Any) -> Iterator[Trace]:
    """libpq's protocol trace of `conn`; prepared statements are off meanwhile, so every
    statement's text shows in its Parse message."""
    from psycopg import pq

    trace = Trace()
    threshold = conn.prepare_threshold
    with tempfile.TemporaryFile(mode="w+b") as f:
        conn.prepare_threshold = None
        conn.pgconn.trace(f.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield trace
        finally:
            conn.pgconn.untrace()  # flushes
            conn.prepare_threshold = threshold
            f.seek(0)
            text = f.read().decode("utf-8", "replace")
    matches = list(_PQ_MESSAGE.finditer(text))
    trips = 0
    for i, m in enumerate(matches):
        if m.group(1) != "F":
            continue
        body = text[m.end() : matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        kind = m.group(2)
        if kind in ("Query", "Sync"):
            trips += 1
        if kind == "Query":
            trace.statements.append(body.strip().strip('"'))
        elif kind == "Parse":
            parts = body.split('"')
            trace.statements.append(parts[3] if len(parts) > 3 else body.strip())
    trace.round_trips = trips


def normalise(statement: str) -> str:
    """Statement text with literals blanked (sqlite3's trace expands bound values)."""
    s = " ".join(statement.split())
    s = re.sub(r"'(?:[^']|'')*'", "?", s)
    return re.sub(r"(?<![\w$])-?\d+(?:\.\d+)?\b", "?", s)


# -- the floor ---------------------------------------------------------------------------------


def make_floor(
    conn: Any, pg: bool, calls: Sequence[Call], after_commit: Callable[[], None] | None = None
) -> Op:
    """The floor's `accept`: the engine's statements with parameters built from the captured
    ones (constant for every case under the fixed clock) and the case's own ids and row."""
    q_case, q_stop, q_tins, q_run, q_out, q_cupd, q_ev = (
        to_pyformat(k.sql) if pg else k.sql for k in calls
    )
    t_stop, t_tins, t_run, t_out, t_cupd, t_ev = (calls[i].params for i in (1, 2, 3, 4, 5, 6))
    notice = t_out["name"]
    cur = conn.cursor()
    commit = conn.commit

    def floor(case_id: int) -> None:
        if not pg:
            cur.execute("BEGIN IMMEDIATE")  # psycopg sends BEGIN with the first statement
        cur.execute(q_case, {"id": case_id})
        case = cur.fetchone()
        cur.execute(q_stop, {**t_stop, "case_id": case_id})
        cur.fetchall()
        cur.execute(q_tins, {**t_tins, "case_id": case_id})
        cur.execute(q_run, {**t_run, "case_id": case_id})
        cur.fetchall()
        seq = case[9] + 1
        cur.execute(
            q_out,
            {
                **t_out,
                "case_id": case_id,
                "record_id": case[5],
                "idempotency_key": f"case:{case_id}:e{seq}:{notice}",
            },
        )
        cur.execute(
            q_cupd, {**t_cupd, "data": case[8], "seq": seq, "id": case_id, "version": case[4]}
        )
        cur.execute(
            q_ev,
            {
                **t_ev,
                "case_id": case_id,
                "seq": seq,
                "case_version": case[4] + 1,
                "prev_hash": case[10],
            },
        )
        if pg:
            commit()
        else:
            cur.execute("COMMIT")
            poke()

    poke = after_commit or (lambda: None)
    return floor


# -- one backend -------------------------------------------------------------------------------


def timed(op: Op, ids: Sequence[int], samples: c.Samples) -> None:
    clock = time.perf_counter_ns
    for case_id in ids:
        t0 = clock()
        op(case_id)
        samples.add(clock() - t0)


def run_backend(label: str, url: str, n: int, location: str) -> dict[str, Any]:
    pg = not url.startswith("sqlite")
    started = time.perf_counter()
    warm = max(10, min(100, n // 20))
    total = 2 * warm + 3 * n
    # Setup on its own Database (threads help on PostgreSQL; SQLite serialises writers anyway);
    # the measured engine then gets a fresh pool that a single thread keeps at one connection.
    workers = SETUP_THREADS_PG if pg else 1
    setup_db = c.migrated_database(url, pool_size=workers + 1)
    office = c.build_office(setup_db)
    with c.progress_bar() as bar:
        task = bar.add_task(f"{label}: records", total=total)
        records = c.create_records(office, total, lambda: bar.advance(task), workers)
        bar.update(task, description=f"{label}: open cases", completed=0)
        cases = c.open_objections(office, records, lambda: bar.advance(task), workers)
    setup_db.dispose()
    if pg:
        c.pg_vacuum_analyze(url)
    # Warm-up cases first, then engine and floor cases alternate, then the engine's second N.
    warm_engine, warm_floor = cases[:warm], cases[warm : 2 * warm]
    paired = cases[2 * warm : 2 * warm + 2 * n]
    engine_ids, floor_ids = paired[0::2], paired[1::2]
    engine_more = cases[2 * warm + 2 * n :]
    setup_s = time.perf_counter() - started

    db = Database(url, pool_size=2)
    engine = Engine(db, clock=office.clock)
    handler = office.actor("office_handler")

    def engine_op(case_id: int) -> None:
        engine.advance(case_id, TRIGGER, handler, {}, 1)

    # Warm up, capturing the statements of the first advance and tracing the last one.
    with capture_tx_calls() as calls:
        engine_op(warm_engine[0])
    problems = check_plan(calls, pg)
    if problems:
        raise SystemExit(
            "the engine's statements for accept no longer match the floor's plan; "
            "update bench/advance.py:\n  " + "\n  ".join(problems)
        )
    for case_id in warm_engine[1:-1]:
        engine_op(case_id)
    raw = c.write_connection(db)
    with pg_trace(raw) if pg else sqlite_trace(raw) as engine_trace:
        engine_op(warm_engine[-1])
    if not engine_trace.statements:
        c.note("[yellow]note: the engine used another pooled connection; no driver trace[/]")

    fconn = c.driver_connection(url)
    floor_op = make_floor(fconn, pg, calls, c.after_commit(db, fconn))
    for case_id in warm_floor[:-1]:
        floor_op(case_id)
    with pg_trace(fconn) if pg else sqlite_trace(fconn) as floor_trace:
        floor_op(warm_floor[-1])

    # Timed: N engine and N floor advances in alternating blocks, then N more engine ones.
    engine_s, floor_s, more_s = c.Samples(n), c.Samples(n), c.Samples(len(engine_more))
    mem0 = c.memory_snapshot()
    for i, start in enumerate(range(0, n, BLOCK)):
        blocks: list[tuple[Op, Sequence[int], c.Samples]] = [
            (engine_op, engine_ids[start : start + BLOCK], engine_s),
            (floor_op, floor_ids[start : start + BLOCK], floor_s),
        ]
        for op, ids, samples in blocks if i % 2 == 0 else blocks[::-1]:
            timed(op, ids, samples)
    mem1 = c.memory_snapshot()
    timed(engine_op, engine_more, more_s)
    mem2 = c.memory_snapshot()

    verify(db, len(cases))
    fconn.close()
    db.dispose()

    eng, flo, more = (c.summarize(s.values()) for s in (engine_s, floor_s, more_s))
    ratio = round(eng["mean_ms"] / flo["mean_ms"], 2)
    ratio_p50 = round(eng["p50_ms"] / flo["p50_ms"], 2)
    e_norm = [normalise(s) for s in engine_trace.statements]
    f_norm = [normalise(s) for s in floor_trace.statements]
    return {
        "backend": label,
        "location": location,
        "engine": eng,
        "floor": flo,
        "engine_second_n": more,
        "ratio": ratio,
        "ratio_p50": ratio_p50,
        "within_target": ratio <= TARGET_RATIO,
        "engine_overhead_us": round((eng["mean_ms"] - flo["mean_ms"]) * 1000, 1),
        "statements_per_advance": {
            "engine": len(engine_trace.statements) or None,
            "floor": len(floor_trace.statements),
            "engine_only": sorted((Counter(e_norm) - Counter(f_norm)).elements()),
            "floor_only": sorted((Counter(f_norm) - Counter(e_norm)).elements()),
        },
        "round_trips_per_advance": (
            {"engine": engine_trace.round_trips, "floor": floor_trace.round_trips} if pg else None
        ),
        "statements": [f"{k.method}: {short(k.sql, 200)}" for k in calls],
        "engine_trace": [short(s, 200) for s in engine_trace.statements],
        "memory": {
            "after_warmup": mem0,
            "after_n": mem1,
            "after_2n": mem2,
            "per_1000_cases_n": c.growth_per_1000(mem0, mem1, n),
            "per_1000_cases_2n": c.growth_per_1000(mem0, mem2, 2 * n),
            "per_1000_cases_second_n": c.growth_per_1000(mem1, mem2, n),
        },
        "setup_s": round(setup_s, 2),
        "run_s": round(time.perf_counter() - started - setup_s, 2),
    }


def verify(db: Database, n_cases: int) -> None:
    """Every case, engine's or floor's, ends in the same place having written the same rows."""
    checks = {
        "accepted at version 2": (
            "SELECT count(*) FROM cases WHERE state = 'accepted' AND version = 2 AND event_seq = 2"
        ),
        "with 2 events, 2 timers (1 stopped) and 2 notices": (
            "SELECT count(*) FROM cases c "
            "JOIN (SELECT case_id, count(*) AS n FROM case_events GROUP BY case_id) e "
            "ON e.case_id = c.id AND e.n = 2 "
            "JOIN (SELECT case_id, count(*) AS n, "
            "sum(CASE WHEN status = 'stopped' THEN 1 ELSE 0 END) AS stopped "
            "FROM timers GROUP BY case_id) t ON t.case_id = c.id AND t.n = 2 AND t.stopped = 1 "
            "JOIN (SELECT case_id, count(*) AS n FROM outbox WHERE case_id IS NOT NULL "
            "GROUP BY case_id) o ON o.case_id = c.id AND o.n = 2"
        ),
    }
    with db.tx(readonly=True) as tx:
        for what, query in checks.items():
            got = int(tx.scalar(query))
            if got != n_cases:
                raise SystemExit(f"verification failed: {got} of {n_cases} cases {what}")


# -- report ------------------------------------------------------------------------------------


def print_backend(r: dict[str, Any], n: int) -> None:
    eng, flo, more = r["engine"], r["floor"], r["engine_second_n"]
    st = r["statements_per_advance"]
    print(f"\n{r['backend']}  ({r['location']})")
    print(f"  transition: {TRANSITION}; {n} cases each")
    print(f"  {'':22}{'advances/s':>12}{'mean ms':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, s in (
        ("engine", eng),
        ("floor (bare driver)", flo),
        (f"engine, next {more['n']}", more),
    ):
        print(
            f"  {name:22}{c.fmt_int(s['per_s']):>12}{s['mean_ms']:>10.3f}{s['p50_ms']:>9.3f}"
            f"{s['p99_ms']:>9.3f}{s['max_ms']:>9.2f}"
        )
    verdict = "within" if r["within_target"] else "OVER"
    print(
        f"  ratio engine/floor: {r['ratio']:.2f}x by throughput ({verdict} the "
        f"{TARGET_RATIO:.0f}x target), {r['ratio_p50']:.2f}x by median; "
        f"engine overhead {r['engine_overhead_us']:.0f} us per advance"
    )
    line = f"  statements per advance (driver trace): engine {st['engine']}, floor {st['floor']}"
    if r["round_trips_per_advance"]:
        rt = r["round_trips_per_advance"]
        line += f"; round trips: engine {rt['engine']}, floor {rt['floor']}"
    print(line)
    if st["engine_only"] or st["floor_only"]:
        print(f"    engine only: {st['engine_only']}; floor only: {st['floor_only']}")
    print("  engine's Tx statements (the floor sends these, one transaction per case):")
    for i, s in enumerate(r["statements"], 1):
        print(f"    {i}. {short(s, 92)}")
    m = r["memory"]
    cache = (
        "; RSS includes SQLite's page cache, 2 MiB per connection"
        if "SQLite" in r["backend"]
        else ""
    )
    print(f"  memory of the process, engine advancing{cache}:")
    print(f"    {'':18}{'RSS KiB':>10}{'py blocks':>11}{'gc objects':>12}")
    for name, key in (
        ("after warm-up", "after_warmup"),
        (f"after {n}", "after_n"),
        (f"after {2 * n}", "after_2n"),
    ):
        s = m[key]
        print(f"    {name:18}{s['rss_kb']:>10,}{s['py_blocks']:>11,}{s['gc_objects']:>12,}")
    for name, key in (
        (f"per 1000, first {n}", "per_1000_cases_n"),
        (f"per 1000, all {2 * n}", "per_1000_cases_2n"),
        (f"per 1000, next {n}", "per_1000_cases_second_n"),
    ):
        g = m[key]
        print(
            f"    {name:22}{g['rss_kb']:>+8.1f} KiB{g['py_blocks']:>+10.1f}"
            f"{g['gc_objects']:>+12.1f}"
        )
    print(f"  setup {r['setup_s']:.1f} s, measured part {r['run_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--cases",
        type=int,
        default=None,
        help=f"cases per side (default {DEFAULT_CASES}; {FULL_CASES} with --full)",
    )
    ap.add_argument("--full", action="store_true", help=f"{FULL_CASES} cases")
    c.add_backend_args(ap, sqlite_switch=False)
    args = ap.parse_args(argv)
    n = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    if n < 100:
        ap.error("--cases must be at least 100")
    pg_url = None if args.no_pg else args.pg

    results: dict[str, Any] = {"sqlite": None, "postgresql": None}
    with c.sqlite_backend(args.sqlite_dir, "advance") as b:
        results["sqlite"] = run_backend(b.label, b.url, n, b.where)
    print_backend(results["sqlite"], n)

    if pg_url:
        with c.pg_backend(pg_url) as b:
            results["postgresql"] = run_backend(b.label, b.url, n, b.where)
        print_backend(results["postgresql"], n)
    else:
        print(c.PG_SKIPPED)

    machine = c.machine_info(c.libpq_url(pg_url) if pg_url else None)
    c.emit_json(
        BENCH,
        {
            "cases": n,
            "transition": TRANSITION,
            "target_ratio": TARGET_RATIO,
            **results,
            "machine": machine,
        },
    )


if __name__ == "__main__":
    main()
