"""The deadline sweep among many open cases, against the bare floor, on SQLite and PostgreSQL.

Two figures from the issue: timers fired per second by `Deadlines.sweep` with D due among N
open cases (target: at least 1,000 per second on SQLite with 10,000 due among 1,000,000), and
the time of a sweep that finds nothing due among N cases (target: under 20 ms).

Setup (not timed). The database is migrated and staffed (engine.demo.add_staff); one credit
record and one objection are made through the engine (`create_record`, `open_case`) and serve
as templates: every other row is a copy of theirs, bulk-inserted straight through the driver
(executemany on SQLite, COPY on PostgreSQL) with its own ids, case number, record (a few
thousand records are shared by the cases), `submit` event hash (computed with the engine's own
`_event_body`/`event_hash`, so the audit chain holds) and timer. Each case is `submitted` with
its submit event, its receipt notice (already sent) and one active `formal_check` timer. For
most cases that timer is due later (next_at spread over the next 30 days). For the D due ones
it is exactly what `open_case` made a few days ago: overdue at the benchmark's "now" (next
action `due`), and firing it is escalation step 0 (one staff message and one system event;
the next step falls due only tomorrow). Records' own publicity timers are there too (due in
months). Record versions and platform-sync rows of the copied records are not.

Measured, with an engine on a fixed clock:
- the sweep: one `Deadlines(engine).sweep(now, batch=500)` call firing the D due timers,
  wall-clock (fired/s = D / elapsed), with each timer's firing and each batch query also timed;
- the floor for firing: the statements `fire_timer` sends (captured from a real firing during
  warm-up and checked against the floor's plan), straight through the driver, one transaction
  per timer, on a second set of D timers that the engine's sweep does not see (due one second
  after its "now"); half before the sweep, half after;
- the empty sweep, after everything has fired: `sweep()` (which also reloads the operators'
  calendar), the bare `due_timers()` query, and the floor (the DUE_TIMERS query, in a read
  transaction, through the driver), each repeated; plus the plans of DUE_TIMERS;
- for scale, beside the core issue's advance floor: bench/advance.py's `accept` floor (and the
  engine's `accept`) on a few hundred of the same cases, in the same database;
- with `--sweepers N` (N ≥ 2, PostgreSQL): sweeper processes, each its own engine and
  `Deadlines(engine).sweep(at, batch=500)` on the same database. First one process sweeps D
  timers due at "now" + 2 s, then N processes at once sweep another D due at "now" + 3 s (the
  same kind of timers, spread over the same table alike); fired/s is D over the wall-clock from
  the first sweep's start to the last one's end (CLOCK_MONOTONIC, shared by the processes).
  Each process is started, connected and warmed up (a few firings of its own) before a common
  start signal. Then the database is checked: every due timer fired exactly once (one
  `deadline_expired` event and one staff message per case, the chain's head on it, the timer
  at step 1) and the sweepers' `fired` add up to D. Two sweepers work down the same ordered
  batches; the case row lock (FOR UPDATE SKIP LOCKED) or the moved `next_at` makes the one
  that comes second skip a timer (`skipped`).

    python bench/sweep.py                      # 100,000 cases, 1,000 due; SQLite (+PG from env)
    python bench/sweep.py --pg postgresql://postgres@127.0.0.1:5432/test
    python bench/sweep.py --full               # 1,000,000 cases, 10,000 due
    python bench/sweep.py --no-sqlite --pg URL --sweepers 2   # + one sweeper vs two processes

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import _common as c
import advance as adv

from engine import schema as t
from engine import sql
from engine.clock import FixedClock
from engine.core import GENESIS, _event_body, event_hash
from engine.db import Database, to_pyformat
from engine.deadlines import Deadlines
from engine.definitions import builtin
from engine.demo import add_staff
from engine.service import Actor, Engine, canonical
from states.calendar import Period, WorkCalendar

BENCH = "sweep"
DEFAULT_CASES, DEFAULT_DUE, DEFAULT_ADVANCE = 100_000, 1_000, 500
FULL_CASES, FULL_DUE, FULL_ADVANCE = 1_000_000, 10_000, 2_000
TARGET_FIRED_PER_S = 1000.0  # on SQLite, 10,000 due among 1,000,000 cases
TARGET_EMPTY_MS = 20.0  # an empty sweep among 1,000,000 cases
BATCH = 500
WARM = 20  # warm-up firings (engine and floor each) and warm-up advances
REPEAT = 100  # empty-sweep repetitions
RECORDS_MAX = 5000
CHUNK = 50_000  # rows per setup transaction
NOW = c.BENCH_NOW  # Tuesday 7 April 2026, 09:00 in Shanghai
FLOOR_AT = NOW + timedelta(seconds=1)  # the floor's timers: due just after the sweep's "now"
# --sweepers: one process sweeps at ONE_AT, then N at once at MANY_AT (each sees only its set;
# everything due earlier has fired by then and moved on to tomorrow's escalation step)
ONE_AT = NOW + timedelta(seconds=2)
MANY_AT = NOW + timedelta(seconds=3)
SWEEPER_TIMEOUT_S = 1800.0
TIMER = "formal_check"

# Groups of cases (index = case id).
IDLE, DUE, DUE_WARM, FLOOR, FLOOR_WARM, ADV_ENGINE, ADV_FLOOR, ADV_WARM = range(8)
SWEEP_ONE, SWEEP_MANY = 8, 9  # --sweepers: the one-process set and the N-process set

# What `Deadlines.fire_timer` sends for a due case timer at escalation step 0, in order:
# (Tx method, SQL). The first statement is written inline in engine/deadlines.py. On PostgreSQL
# the case SELECT gets a row-locking clause; the floor sends what the engine sent.
FIRE_PLAN: list[tuple[str, str]] = [
    ("one", "SELECT case_id, record_id FROM timers WHERE id = :id"),
    ("one", sql.CASE_FOR_COMMAND),
    ("one", sql.TIMER_FOR_FIRING),
    ("execute", sql.TIMER_NEXT),
    ("execute", sql.EVENT_INSERT),
    ("execute", sql.CASE_CHAIN_UPDATE),
    ("all", sql.STAFF_EMAILS_BY_ROLE),
    ("executemany", sql.OUTBOX_INSERT),
]
_LOCKING = re.compile(r" FOR (?:NO KEY )?UPDATE(?: OF \w+(?:, \w+)*)?(?: SKIP LOCKED| NOWAIT)?")


# -- dates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    opened: datetime  # when the due cases were opened
    due_day: date
    due_at: datetime  # their formal check's deadline (passed at NOW)
    step1_at: datetime  # when escalation step 1 falls due (after NOW)


def pick_moments(engine: Engine) -> Moments:
    """The latest opening day whose formal check is overdue at NOW with only step 0 due."""
    spec = builtin().get("objection", 1).timers[TIMER]
    cal: WorkCalendar = engine.calendar
    step1 = (
        Period.parse(spec.escalation[0].after).amount
        + Period.parse(spec.escalation[1].after).amount
    )
    day = cal.local_date(NOW)
    for _ in range(60):
        day -= timedelta(days=1)
        if not cal.is_working_day(day):
            continue
        due = cal.add(day, Period.parse(spec.period))
        nxt = cal.add(due.day, Period(step1, "working_days")).at
        if due.at <= NOW < nxt:
            return Moments(datetime.combine(day, dtime(10, 0), cal.tz), due.day, due.at, nxt)
    raise SystemExit("no opening day puts exactly escalation step 0 due at NOW")


# -- setup ---------------------------------------------------------------------------------------


def assign_groups(n: int, sizes: dict[int, int]) -> bytearray:
    """Group of each case 1..n, the special ones spread evenly over the ids (case 1 is the
    engine-made template, a warm-up firing)."""
    groups = bytearray(n + 1)
    labels = [g for g, k in sizes.items() for _ in range(k)]
    random.Random(7).shuffle(labels)
    span = n - 1
    for j, g in enumerate(labels):
        groups[2 + j * span // len(labels)] = g
    groups[1] = DUE_WARM
    return groups


def fetch_dict(conn: Any, query: str, params: dict[str, Any], pg: bool) -> dict[str, Any]:
    cur = conn.cursor()
    cur.execute(to_pyformat(query) if pg else query, params)
    row = cur.fetchone()
    assert row is not None, query
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


def setup_connection(db: Database, url: str) -> Any:
    if db.dialect == "sqlite":
        conn = sqlite3.connect(db.engine.url.database or "", timeout=30, isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=OFF"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB, this connection only
        return conn
    import psycopg

    return psycopg.connect(c.libpq_url(url))


class Loader:
    """Bulk rows into one table: executemany (SQLite) or COPY (PostgreSQL)."""

    def __init__(self, conn: Any, pg: bool) -> None:
        self.conn, self.pg = conn, pg

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        cols = ", ".join(columns)
        if self.pg:
            with self.conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.pg:
            with self.conn.transaction():
                yield
        else:
            self.conn.execute("BEGIN")
            yield
            self.conn.execute("COMMIT")


class RowMaker:
    """Copies of a template row with some columns changed (positional, so it is cheap)."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.columns = list(template)
        self._base = list(template.values())
        self._at = {name: i for i, name in enumerate(self.columns)}

    def pos(self, name: str) -> int:
        return self._at[name]

    def make(self, changes: Sequence[tuple[int, Any]]) -> tuple[Any, ...]:
        row = self._base.copy()
        for i, v in changes:
            row[i] = v
        return tuple(row)


@dataclass
class Population:
    n: int
    groups: bytearray
    timer_of: Callable[[int], int]  # case id -> its formal_check timer id
    moments: Moments
    records: int

    def ids(self, group: int) -> list[int]:
        return [i for i in range(1, self.n + 1) if self.groups[i] == group]


def populate(
    url: str, label: str, n: int, sizes: dict[int, int]
) -> tuple[Population, dict[str, float]]:
    """Migrate, staff, make the templates through the engine, bulk-copy the rest."""
    pg = not url.startswith("sqlite")
    started = time.perf_counter()
    db = c.migrated_database(url)
    engine = Engine(db, clock=FixedClock(NOW))
    moments = pick_moments(engine)
    opened = FixedClock(moments.opened)
    engine.clock = opened
    staff = add_staff(engine)
    office = c.Office(engine, opened, staff.actors)
    (rid,) = c.create_records(office, 1)
    (cid,) = c.open_objections(office, [rid])
    assert cid == 1 and rid == 1, "expected a fresh database"
    db.dispose()
    prep_s = time.perf_counter() - started

    conn = setup_connection(db, url)
    d = db.dialect
    rec = fetch_dict(conn, "SELECT * FROM credit_records WHERE id = :id", {"id": rid}, pg)
    rec_timer = fetch_dict(conn, "SELECT * FROM timers WHERE record_id = :id", {"id": rid}, pg)
    case = fetch_dict(conn, "SELECT * FROM cases WHERE id = :id", {"id": cid}, pg)
    event = fetch_dict(conn, "SELECT * FROM case_events WHERE case_id = :id", {"id": cid}, pg)
    timer = fetch_dict(conn, "SELECT * FROM timers WHERE case_id = :id", {"id": cid}, pg)
    receipt = fetch_dict(conn, "SELECT * FROM outbox WHERE case_id = :id", {"id": cid}, pg)
    maxes = fetch_dict(
        conn,
        "SELECT (SELECT max(id) FROM timers) AS timers, (SELECT max(id) FROM outbox) AS outbox, "
        "(SELECT max(id) FROM case_events) AS events",
        {},
        pg,
    )
    assert event["id"] == 1 and t.to_ts(timer["due_at"]) == moments.due_at
    t_base, o_base = int(maxes["timers"]), int(maxes["outbox"])
    n_rec = max(1, min(RECORDS_MAX, n // 20))

    def timer_of(i: int) -> int:
        return int(timer["id"]) if i == cid else t_base + i - 1

    def record_of(i: int) -> int:
        return i % n_rec + 1

    groups = assign_groups(n, sizes)
    loader = Loader(conn, pg)
    tpl_no = str(case["case_no"])
    prefix = tpl_no[:10]  # e.g. YY20260401; the template's 6 random characters follow
    at_text = _sqlite_ts(event["at"])
    tpl_detail = json.loads(event["detail"])
    today = engine.calendar.local_date(NOW)
    later = [today + timedelta(days=2 + k) for k in range(30)]
    details = {due: _detail_for(tpl_detail, due) for due in (moments.due_day, *later)}
    later_at = [t.ts_param(engine.calendar.end_of_day(x), d) for x in later]
    due_at, floor_at = t.ts_param(moments.due_at, d), t.ts_param(FLOOR_AT, d)
    # next_at of the overdue groups that the sweep at NOW must not see
    later_due = {FLOOR: floor_at, FLOOR_WARM: floor_at}
    later_due |= {SWEEP_ONE: t.ts_param(ONE_AT, d), SWEEP_MANY: t.ts_param(MANY_AT, d)}

    rm_rec, rm_rtimer = RowMaker(rec), RowMaker(rec_timer)
    rm_case, rm_event = RowMaker(case), RowMaker(event)
    rm_timer, rm_out = RowMaker(timer), RowMaker(receipt)
    p = {k: rm_case.pos(k) for k in ("id", "case_no", "record_id", "data", "last_hash")} | {
        "idem": rm_case.pos("idempotency_key")
    }
    pe = {k: rm_event.pos(k) for k in ("id", "case_id", "detail", "hash")}
    pt = {k: rm_timer.pos(k) for k in ("id", "case_id", "due_day", "due_at", "next_at")}
    pt["action"] = rm_timer.pos("next_action")
    po = {k: rm_out.pos(k) for k in ("id", "case_id", "record_id", "payload", "attempts")}
    po |= {
        "key": rm_out.pos("idempotency_key"),
        "status": rm_out.pos("status"),
        "sent": rm_out.pos("sent_at"),
    }
    sent_at = receipt["created_at"]

    total = (n_rec - 1) * 2 + (n - 1) * 4
    with c.progress_bar() as bar:
        task = bar.add_task(f"{label}: bulk rows", total=total)
        recs = [
            rm_rec.make([(rm_rec.pos("id"), r)]) for r in range(2, n_rec + 1)
        ]  # record ids 2..n_rec
        rtimers = [
            rm_rtimer.make(
                [(rm_rtimer.pos("id"), t_base + n - 1 + r - 1), (rm_rtimer.pos("record_id"), r)]
            )
            for r in range(2, n_rec + 1)
        ]
        with loader.transaction():
            loader.insert("credit_records", rm_rec.columns, recs)
        bar.advance(task, len(recs))
        for lo in range(2, n + 1, CHUNK):
            hi = min(lo + CHUNK, n + 1)
            cases, events, timers, outs = [], [], [], []
            for i in range(lo, hi):
                g = groups[i]
                no = f"{prefix}B{i:07d}"
                if g in (DUE, DUE_WARM, FLOOR, FLOOR_WARM, SWEEP_ONE, SWEEP_MANY):
                    due_day, at, action = moments.due_day, due_at, "due"
                    nxt = later_due.get(g, due_at)
                else:
                    k = i % 30
                    due_day, at, action = later[k], later_at[k], "due"
                    nxt = at
                detail = details[due_day]
                body = _event_body(
                    i,
                    1,
                    event["trigger"],
                    event["from_state"],
                    event["to_state"],
                    event["case_version"],
                    event["actor"],
                    event["actor_role"],
                    at_text,
                    event["payload"],
                    detail,
                )
                h = event_hash(GENESIS, body)
                cases.append(
                    rm_case.make(
                        [
                            (p["id"], i),
                            (p["case_no"], no),
                            (p["record_id"], record_of(i)),
                            (p["data"], case["data"].replace(tpl_no, no)),
                            (p["last_hash"], h),
                            (p["idem"], None),
                        ]
                    )
                )
                events.append(
                    rm_event.make(
                        [(pe["id"], i), (pe["case_id"], i), (pe["detail"], detail), (pe["hash"], h)]
                    )
                )
                timers.append(
                    rm_timer.make(
                        [
                            (pt["id"], timer_of(i)),
                            (pt["case_id"], i),
                            (pt["due_day"], t.date_param(due_day, d)),
                            (pt["due_at"], at),
                            (pt["action"], action),
                            (pt["next_at"], nxt),
                        ]
                    )
                )
                outs.append(
                    rm_out.make(
                        [
                            (po["id"], o_base + i - 1),
                            (po["case_id"], i),
                            (po["record_id"], record_of(i)),
                            (po["payload"], receipt["payload"].replace(tpl_no, no)),
                            (po["key"], f"case:{i}:e1:receipt"),
                            (po["status"], "sent"),
                            (po["attempts"], 1),
                            (po["sent"], sent_at),
                        ]
                    )
                )
            with loader.transaction():
                loader.insert("cases", rm_case.columns, cases)
                loader.insert("case_events", rm_event.columns, events)
                loader.insert("timers", rm_timer.columns, timers)
                loader.insert("outbox", rm_out.columns, outs)
            bar.advance(task, 4 * (hi - lo))
        with loader.transaction():
            loader.insert("timers", rm_rtimer.columns, rtimers)
        bar.advance(task, len(rtimers))

    bulk_s = time.perf_counter() - started - prep_s
    if pg:
        conn.commit()
        for table in ("credit_records", "cases", "case_events", "timers", "outbox"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
        conn.close()
        c.pg_vacuum_analyze(url)
    else:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    pop = Population(n, groups, timer_of, moments, n_rec)
    _check_population(url, pop)
    total_s = time.perf_counter() - started
    return pop, {
        "setup_s": round(total_s, 2),
        "setup_prep_s": round(prep_s, 2),  # migrate, staff, the engine-made templates
        "setup_bulk_s": round(bulk_s, 2),  # bulk rows, hashes included
        "setup_settle_s": round(total_s - prep_s - bulk_s, 2),  # checkpoint/VACUUM, checks
    }


def _sqlite_ts(value: Any) -> str:
    """A stored instant as the text the event hash covers (whatever the dialect stored)."""
    instant = t.to_ts(value)
    assert instant is not None
    return t.ts_to_sqlite(instant)


def _detail_for(template: dict[str, Any], due: date) -> str:
    detail = json.loads(json.dumps(template))
    for item in detail.get("deadlines", []):
        if item.get("timer") == TIMER:
            item["due"] = due.isoformat()
    return canonical(detail)


def _check_population(url: str, pop: Population) -> None:
    """The bulk rows are what the benchmark thinks they are (counts, due timers)."""
    db = Database(url, pool_size=1)
    try:
        with db.tx(readonly=True) as tx:
            n_cases = int(tx.scalar("SELECT count(*) FROM cases"))
            n_events = int(tx.scalar("SELECT count(*) FROM case_events"))
            n_timers = int(tx.scalar("SELECT count(*) FROM timers WHERE case_id IS NOT NULL"))
            due = tx.all(sql.DUE_TIMERS, {"now": t.ts_param(NOW, db.dialect), "limit": 10**9})
    finally:
        db.dispose()
    want_due = sorted(pop.timer_of(i) for i in (*pop.ids(DUE), *pop.ids(DUE_WARM)))
    if (n_cases, n_events, n_timers) != (pop.n, pop.n, pop.n):
        raise SystemExit(f"setup: {n_cases} cases, {n_events} events, {n_timers} case timers")
    if sorted(int(r[0]) for r in due) != want_due:
        raise SystemExit(f"setup: {len(due)} timers due at NOW, expected {len(want_due)}")


# -- the engine, instrumented ------------------------------------------------------------------


class TimedDeadlines(Deadlines):
    """The engine's Deadlines, recording the time of each firing and each batch query."""

    def __init__(self, engine: Engine, capacity: int) -> None:
        super().__init__(engine)
        self.fires = c.Samples(capacity)
        self.queries: list[int] = []

    def due_timers(self, now: datetime, limit: int) -> list[int]:
        t0 = time.perf_counter_ns()
        ids = super().due_timers(now, limit)
        self.queries.append(time.perf_counter_ns() - t0)
        return ids

    def fire_timer(self, timer_id: int, now: datetime) -> str | None:
        t0 = time.perf_counter_ns()
        action = super().fire_timer(timer_id, now)
        self.fires.add(time.perf_counter_ns() - t0)
        return action


# -- the floor -----------------------------------------------------------------------------------


def check_fire_plan(calls: Sequence[adv.Call], pg: bool) -> list[str]:
    """Differences between what `fire_timer` sent and the floor's plan (empty when identical)."""
    problems = []
    for i in range(max(len(calls), len(FIRE_PLAN))):
        got = (calls[i].method, calls[i].sql) if i < len(calls) else ("nothing", "")
        want = FIRE_PLAN[i] if i < len(FIRE_PLAN) else ("nothing", "")
        same = got[0] == want[0] and got[1].startswith(want[1])
        rest = got[1][len(want[1]) :] if same else ""
        if not same or (rest and not (pg and _LOCKING.fullmatch(rest))):
            problems.append(
                f"statement {i + 1}: the engine sent {got[0]} {got[1]!r}, "
                f"the floor plans {want[0]} {want[1]!r}"
            )
            break
    return problems


def make_fire_floor(
    conn: Any, pg: bool, calls: Sequence[adv.Call], after_commit: Callable[[], None]
) -> Callable[[int], None]:
    """The floor's firing: the engine's statements, parameters as captured (constant under the
    fixed clock) with the timer's and case's own ids and row values put in. No hash, no
    procedure lookup, no calendar arithmetic."""
    q_owner, q_case, q_timer, q_next, q_ev, q_chain, q_mail, q_out = (
        to_pyformat(k.sql) if pg else k.sql for k in calls
    )
    p_next, p_ev, p_mail, p_out = (calls[i].params for i in (3, 4, 6, 7))
    action = p_out["idempotency_key"].split(":", 2)[2]
    new_hash = p_ev["hash"]
    cur = conn.cursor()
    begin: Callable[[], None] = (lambda: None) if pg else (lambda: cur.execute("BEGIN IMMEDIATE"))

    def sqlite_commit() -> None:
        cur.execute("COMMIT")
        after_commit()

    commit: Callable[[], None] = conn.commit if pg else sqlite_commit

    def fire(timer_id: int) -> None:
        begin()  # psycopg sends BEGIN with the first statement
        cur.execute(q_owner, {"id": timer_id})
        owner = cur.fetchone()
        cur.execute(q_case, {"id": owner[0]})
        case = cur.fetchone()
        cur.execute(q_timer, {"id": timer_id})
        tm = cur.fetchone()
        if tm[4] != "active":
            raise SystemExit(f"floor: timer {timer_id} is {tm[4]}")
        cur.execute(q_next, {**p_next, "id": timer_id})
        seq = case[9] + 1
        cur.execute(
            q_ev,
            {
                **p_ev,
                "case_id": case[0],
                "seq": seq,
                "case_version": case[4],
                "prev_hash": case[10],
            },
        )
        cur.execute(q_chain, {"seq": seq, "hash": new_hash, "id": case[0]})
        cur.execute(q_mail, p_mail)
        cur.fetchall()
        cur.execute(
            q_out,
            {
                **p_out,
                "case_id": case[0],
                "record_id": case[5],
                "idempotency_key": f"timer:{timer_id}:{action}",
            },
        )
        commit()

    return fire


def make_due_floor(conn: Any, pg: bool, dialect: str) -> Callable[[], int]:
    """The empty sweep's floor: DUE_TIMERS in a read transaction, as `due_timers` sends it."""
    q = to_pyformat(sql.DUE_TIMERS) if pg else sql.DUE_TIMERS
    params = {"now": t.ts_param(NOW, dialect), "limit": BATCH}
    cur = conn.cursor()

    def query() -> int:
        if not pg:
            cur.execute("BEGIN")
        cur.execute(q, params)
        n = len(cur.fetchall())
        if pg:
            conn.commit()
        else:
            cur.execute("COMMIT")
        return n

    return query


def timed(op: Callable[[int], Any], ids: Sequence[int], samples: c.Samples) -> float:
    """Runs op over ids, each timed; returns the wall-clock seconds of the whole loop."""
    clock = time.perf_counter_ns
    start = clock()
    for i in ids:
        t0 = clock()
        op(i)
        samples.add(clock() - t0)
    return (clock() - start) / 1e9


def repeat(op: Callable[[], Any], n: int) -> c.Samples:
    samples = c.Samples(n)
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        op()
        samples.add(clock() - t0)
    return samples


# -- query plans ---------------------------------------------------------------------------------


def due_plan(conn: Any, pg: bool, dialect: str, analyze: bool = False) -> list[str]:
    """The plan of DUE_TIMERS at NOW: EXPLAIN QUERY PLAN (SQLite), EXPLAIN [ANALYZE] (PG)."""
    params = {"now": t.ts_param(NOW, dialect), "limit": BATCH}
    cur = conn.cursor()
    if pg:
        how = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " if analyze else "EXPLAIN "
        cur.execute(how + to_pyformat(sql.DUE_TIMERS), params)
        lines = [str(r[0]) for r in cur.fetchall()]
        conn.commit()
        return lines
    cur.execute("EXPLAIN QUERY PLAN " + sql.DUE_TIMERS, params)
    return [str(r[3]) for r in cur.fetchall()]


def pg_generic_plan(conn: Any) -> list[str]:
    """The plan PostgreSQL would cache for DUE_TIMERS as a prepared statement (generic)."""
    cur = conn.cursor()
    cur.execute("SET plan_cache_mode = force_generic_plan")
    name = f"due_{uuid.uuid4().hex[:8]}"
    text = sql.DUE_TIMERS.replace(":now", "$1").replace(":limit", "$2")
    cur.execute(f"PREPARE {name} (timestamptz, bigint) AS {text}")
    cur.execute(f"EXPLAIN EXECUTE {name} ('{NOW.isoformat()}', {BATCH})")
    lines = [str(r[0]) for r in cur.fetchall()]
    cur.execute(f"DEALLOCATE {name}")
    cur.execute("RESET plan_cache_mode")
    conn.commit()
    return lines


# -- several sweepers (--sweepers) ----------------------------------------------------------------


def sweeper_main(url: str, at: datetime, warm_ids: Sequence[int], go: Any, pipe: Any) -> None:
    """One sweeper process: its own engine, warmed up on its own timers, then one sweep at `at`
    after the common start signal. Sends back what it did and when (monotonic ns)."""
    try:
        db = Database(url, pool_size=2)
        engine = Engine(db, clock=FixedClock(NOW))
        dl = Deadlines(engine)
        dl.refresh_calendar()
        for tid in warm_ids:  # first firings compile the procedure, load templates, connect
            if dl.fire_timer(tid, at) != "escalate:0":
                raise RuntimeError(f"warm-up timer {tid} did not fire")
        pipe.send({"ready": os.getpid()})
        if not go.wait(SWEEPER_TIMEOUT_S):
            raise RuntimeError("no start signal")
        t0 = time.monotonic_ns()
        r = dl.sweep(now=at, batch=BATCH)
        t1 = time.monotonic_ns()
        db.dispose()
        pipe.send(
            {
                "pid": os.getpid(),
                "start_ns": t0,
                "end_ns": t1,
                "found": r.found,
                "fired": r.fired,
                "skipped": r.skipped,
                "actions": r.actions,
                "errors": r.errors[:5],
                "n_errors": len(r.errors),
            }
        )
    except BaseException as exc:  # reported by the parent
        pipe.send({"error": repr(exc)})
        raise
    finally:
        pipe.close()


def run_sweepers(url: str, at: datetime, warm: Sequence[Sequence[int]]) -> dict[str, Any]:
    """len(warm) sweeper processes at once (each warmed on its own timers); their results and
    the wall-clock from the first start to the last end."""
    ctx = mp.get_context("spawn")  # fresh interpreters: no pool or thread of this process
    go = ctx.Event()
    procs, pipes = [], []
    for ids in warm:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=sweeper_main, args=(url, at, list(ids), go, theirs))
        proc.start()
        theirs.close()
        procs.append(proc)
        pipes.append(mine)
    try:
        for pipe in pipes:  # every process ready before any sweeps
            if not pipe.poll(SWEEPER_TIMEOUT_S):
                raise SystemExit("a sweeper process did not get ready")
            msg = pipe.recv()
            if "error" in msg:
                raise SystemExit(f"a sweeper process failed while starting: {msg['error']}")
        go.set()
        out = []
        for pipe in pipes:
            if not pipe.poll(SWEEPER_TIMEOUT_S):
                raise SystemExit("a sweeper process did not finish")
            msg = pipe.recv()
            if "error" in msg:
                raise SystemExit(f"a sweeper process failed: {msg['error']}")
            out.append(msg)
    except EOFError:
        raise SystemExit("a sweeper process ended early") from None
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for pipe in pipes:
            pipe.close()
    wall = (max(m["end_ns"] for m in out) - min(m["start_ns"] for m in out)) / 1e9
    fired = sum(m["fired"] for m in out)
    return {
        "sweepers": len(warm),
        "at": at.isoformat(),
        "wall_s": round(wall, 3),
        "fired": fired,
        "fired_per_s": round(fired / wall, 1) if wall else None,
        "skipped": sum(m["skipped"] for m in out),
        "errors": sum(m["n_errors"] for m in out),
        "each": [
            {
                "pid": m["pid"],
                "fired": m["fired"],
                "skipped": m["skipped"],
                "found": m["found"],
                "elapsed_s": round((m["end_ns"] - m["start_ns"]) / 1e9, 3),
                "errors": m["errors"],
            }
            for m in out
        ],
    }


def check_exactly_once(url: str, pop: Population, group: int) -> dict[str, int]:
    """For every case of `group`: one `deadline_expired` event (the case's chain ends on it),
    one staff message, its timer at escalation step 1. PostgreSQL only."""
    import psycopg

    case_ids = pop.ids(group)
    timer_ids = [pop.timer_of(i) for i in case_ids]
    with psycopg.connect(c.libpq_url(url), autocommit=True) as conn:

        def one(query: str, ids: Sequence[int], *params: Any) -> int:
            row = conn.execute(query, (list(ids), *params)).fetchone()
            return int(row[0]) if row else -1

        events = one(
            "SELECT count(*) FROM case_events WHERE case_id = ANY(%s) "
            "AND trigger = 'deadline_expired'",
            case_ids,
        )
        cases_once = one(
            "SELECT count(*) FROM (SELECT case_id FROM case_events WHERE case_id = ANY(%s) "
            "AND trigger = 'deadline_expired' GROUP BY case_id HAVING count(*) = 1) x",
            case_ids,
        )
        heads = one(
            "SELECT count(*) FROM cases c JOIN case_events e ON e.case_id = c.id "
            "AND e.seq = c.event_seq WHERE c.id = ANY(%s) AND c.event_seq = 2 "
            "AND e.trigger = 'deadline_expired' AND c.last_hash = e.hash",
            case_ids,
        )
        staff = one(
            "SELECT count(*) FROM outbox WHERE case_id = ANY(%s) AND kind = 'staff' "
            "AND name = 'staff_escalation'",
            case_ids,
        )
        moved = one(
            "SELECT count(*) FROM timers WHERE id = ANY(%s) AND next_action = 'escalate:1' "
            "AND next_at = %s",
            timer_ids,
            pop.moments.step1_at,
        )
    got = {
        "cases": len(case_ids),
        "deadline_expired events": events,
        "cases fired exactly once": cases_once,
        "chain heads on the event": heads,
        "staff messages": staff,
        "timers at step 1": moved,
    }
    if len(set(got.values())) != 1:
        raise SystemExit(f"not exactly once: {got}")
    return got


def run_multi(url: str, pop: Population, n_due: int, sweepers: int) -> dict[str, Any]:
    """One sweeper process on one set of D due timers, then `sweepers` processes at once on
    another; each set checked fired exactly once."""
    out: dict[str, Any] = {}
    for key, group, at, k in (
        ("one", SWEEP_ONE, ONE_AT, 1),
        ("many", SWEEP_MANY, MANY_AT, sweepers),
    ):
        timers = [pop.timer_of(i) for i in pop.ids(group)]
        warm = [timers[j * WARM : (j + 1) * WARM] for j in range(k)]  # first k × WARM
        c.note(f"sweepers: {k} process{'es' if k > 1 else ''}, {n_due:,} due at {at:%H:%M:%S}")
        r = run_sweepers(url, at, warm)
        if (r["fired"], r["errors"]) != (n_due, 0):
            raise SystemExit(f"{k} sweeper(s) fired {r['fired']} of {n_due}: {r}")
        r["exactly_once"] = check_exactly_once(url, pop, group)
        out[key] = r
    out["ratio"] = round(out["many"]["fired_per_s"] / out["one"]["fired_per_s"], 2)
    return out


# -- one backend ---------------------------------------------------------------------------------


def run_backend(
    label: str,
    url: str,
    n: int,
    n_due: int,
    n_adv: int,
    reps: int,
    location: str,
    sweepers: int = 1,
) -> dict[str, Any]:
    pg = not url.startswith("sqlite")
    multi = sweepers > 1 and pg
    sizes = {
        DUE: n_due,
        DUE_WARM: WARM - 1,  # plus the template case
        FLOOR: n_due,
        FLOOR_WARM: WARM,
        ADV_ENGINE: n_adv,
        ADV_FLOOR: n_adv,
        ADV_WARM: 2 * WARM,
    }
    if multi:  # D due for each run, plus each process's warm-up timers
        sizes |= {SWEEP_ONE: n_due + WARM, SWEEP_MANY: n_due + sweepers * WARM}
    pop, setup = populate(url, label, n, sizes)
    started = time.perf_counter()
    due_ids = [pop.timer_of(i) for i in pop.ids(DUE)]
    warm_ids = [pop.timer_of(i) for i in pop.ids(DUE_WARM)]  # the template first (case 1)
    floor_ids = [pop.timer_of(i) for i in pop.ids(FLOOR)]
    floor_warm = [pop.timer_of(i) for i in pop.ids(FLOOR_WARM)]

    db = Database(url, pool_size=2)
    engine = Engine(db, clock=FixedClock(NOW))
    dl = TimedDeadlines(engine, WARM + 1)
    fconn = c.driver_connection(url)
    plans: dict[str, Any] = {"with_due": due_plan(fconn, pg, db.dialect, analyze=pg)}

    # Warm-up: the engine fires the warm-up timers one by one (statements captured from a bulk
    # one and checked against the floor's plan, the last one traced at the driver).
    dl.refresh_calendar()
    with adv.capture_tx_calls() as calls:
        assert dl.fire_timer(warm_ids[1], NOW) == "escalate:0"
    problems = check_fire_plan(calls, pg)
    if problems:
        raise SystemExit(
            "fire_timer's statements no longer match the floor's plan; update bench/sweep.py:"
            "\n  " + "\n  ".join(problems)
        )
    for tid in [warm_ids[0], *warm_ids[2:-1]]:
        assert dl.fire_timer(tid, NOW) == "escalate:0", tid
    raw = c.write_connection(db)
    with adv.pg_trace(raw) if pg else adv.sqlite_trace(raw) as engine_trace:
        assert dl.fire_timer(warm_ids[-1], NOW) == "escalate:0"
    if not engine_trace.statements:
        c.note("[yellow]note: the engine used another pooled connection; no driver trace[/]")
    dl.fires, dl.queries = c.Samples(n_due + 1), []

    fire_floor = make_fire_floor(fconn, pg, calls, c.after_commit(db, fconn))
    for tid in floor_warm[:-1]:
        fire_floor(tid)
    with adv.pg_trace(fconn) if pg else adv.sqlite_trace(fconn) as floor_trace:
        fire_floor(floor_warm[-1])

    # Timed: half the floor, the engine's sweep, the other half of the floor.
    half = len(floor_ids) // 2
    floor_s = c.Samples(len(floor_ids))
    floor_wall = timed(fire_floor, floor_ids[:half], floor_s)
    t0 = time.perf_counter_ns()
    result = dl.sweep(now=NOW, batch=BATCH)
    sweep_wall = (time.perf_counter_ns() - t0) / 1e9
    floor_wall += timed(fire_floor, floor_ids[half:], floor_s)
    if (result.found, result.fired, result.skipped, result.errors) != (n_due, n_due, 0, []):
        raise SystemExit(f"the sweep did not fire exactly the {n_due} due timers: {result}")
    if result.actions != {"escalate": n_due}:
        raise SystemExit(f"unexpected actions {result.actions}")
    fires = dl.fires.values()
    batch_queries = list(dl.queries)
    written = verify_firing(db, pop, due_ids, warm_ids, floor_ids, floor_warm)

    # The empty sweep: nothing is due at NOW any more (the engine's own Deadlines, untimed).
    plain = Deadlines(engine)
    first = repeat(lambda: _expect_empty(Deadlines(engine).sweep(now=NOW).found), 1)
    empty_sweep = repeat(lambda: _expect_empty(Deadlines(engine).sweep(now=NOW).found), reps)
    empty_query = repeat(lambda: _expect_empty(len(plain.due_timers(NOW, BATCH))), reps)
    calendar = repeat(plain.refresh_calendar, reps)
    due_floor = make_due_floor(fconn, pg, db.dialect)
    empty_floor = repeat(lambda: _expect_empty(due_floor()), reps)
    plans["empty"] = due_plan(fconn, pg, db.dialect, analyze=pg)
    if pg:
        plans["generic"] = pg_generic_plan(fconn)

    # Beside the core issue's advance floor: bench/advance.py's accept, same database.
    advance = run_advance(engine, db, fconn, pg, pop)
    fconn.close()
    db.dispose()
    several = run_multi(url, pop, n_due, sweepers) if multi else None

    eng = c.summarize(fires)
    flo = c.summarize(floor_s.values())
    eng_per_s = round(n_due / sweep_wall, 1)
    flo_per_s = round(len(floor_ids) / floor_wall, 1)
    e_norm = [adv.normalise(s) for s in engine_trace.statements]
    f_norm = [adv.normalise(s) for s in floor_trace.statements]
    empty: dict[str, Any] = {
        "first_after_firing_ms": round(first.values()[0] / 1e6, 3),
        "sweep": c.summarize(empty_sweep.values()),
        "due_timers": c.summarize(empty_query.values()),
        "refresh_calendar": c.summarize(calendar.values()),
        "floor": c.summarize(empty_floor.values()),
    }
    empty["ratio_sweep_p50"] = round(empty["sweep"]["p50_ms"] / empty["floor"]["p50_ms"], 2)
    empty["ratio_due_timers_p50"] = round(
        empty["due_timers"]["p50_ms"] / empty["floor"]["p50_ms"], 2
    )
    return {
        "backend": label,
        "location": location,
        "cases": n,
        "due": n_due,
        "records": pop.records,
        "sweep": {
            "fired": result.fired,
            "elapsed_s": round(sweep_wall, 3),
            "fired_per_s": eng_per_s,
            "per_timer": eng,
            "batch_queries": {
                "n": len(batch_queries),
                "total_ms": round(sum(batch_queries) / 1e6, 2),
                "max_ms": round(max(batch_queries) / 1e6, 3),
                "mean_ms": round(sum(batch_queries) / len(batch_queries) / 1e6, 3),
            },
            "outside_firing_ms": round((sweep_wall * 1e9 - sum(fires)) / 1e6, 2),
        },
        "floor": {"fired": len(floor_ids), "fired_per_s": flo_per_s, "per_timer": flo},
        "ratio": round(flo_per_s / eng_per_s, 2),
        "ratio_p50": round(eng["p50_ms"] / flo["p50_ms"], 2),
        "engine_overhead_us": round((eng["mean_ms"] - flo["mean_ms"]) * 1000, 1),
        "statements_per_firing": {
            "engine": len(engine_trace.statements) or None,
            "floor": len(floor_trace.statements),
            "engine_only": sorted((Counter(e_norm) - Counter(f_norm)).elements()),
            "floor_only": sorted((Counter(f_norm) - Counter(e_norm)).elements()),
        },
        "round_trips_per_firing": (
            {"engine": engine_trace.round_trips, "floor": floor_trace.round_trips} if pg else None
        ),
        "statements": [f"{k.method}: {adv.short(k.sql, 200)}" for k in calls],
        "engine_trace": [adv.short(s, 200) for s in engine_trace.statements],
        "written": written,
        "empty": empty,
        "plans": plans,
        "advance": advance,
        "sweepers": several,
        "within_target_fired": eng_per_s >= TARGET_FIRED_PER_S,
        "within_target_empty": empty["sweep"]["p99_ms"] < TARGET_EMPTY_MS,
        **setup,
        "run_s": round(time.perf_counter() - started, 2),
    }


def _expect_empty(found: int) -> None:
    if found:
        raise SystemExit(f"an empty sweep found {found} timers due")


def verify_firing(
    db: Database,
    pop: Population,
    due_ids: Sequence[int],
    warm_ids: Sequence[int],
    floor_ids: Sequence[int],
    floor_warm: Sequence[int],
) -> dict[str, int]:
    """Exactly one `deadline_expired` event and one staff message per fired timer, the
    engine-fired cases' hash chains intact, the timers moved on to escalation step 1."""
    fired = len(due_ids) + len(warm_ids) + len(floor_ids) + len(floor_warm)
    d = db.dialect
    with db.tx(readonly=True) as tx:
        events = int(
            tx.scalar("SELECT count(*) FROM case_events WHERE trigger = 'deadline_expired'")
        )
        staff = int(
            tx.scalar(
                "SELECT count(*) FROM outbox WHERE kind = 'staff' "
                "AND name = 'staff_escalation' AND idempotency_key LIKE :pattern",
                {"pattern": "timer:%:escalate:0"},
            )
        )
        moved = int(
            tx.scalar(
                "SELECT count(*) FROM timers WHERE next_action = 'escalate:1' AND next_at = :at",
                {"at": t.ts_param(pop.moments.step1_at, d)},
            )
        )
        engine_cases = [i for i in range(1, pop.n + 1) if pop.groups[i] in (DUE, DUE_WARM)]
        rows: list[tuple[Any, ...]] = []
        for lo in range(0, len(engine_cases), 500):
            part = engine_cases[lo : lo + 500]
            marks = ", ".join(f":c{j}" for j in range(len(part)))
            rows += tx.all(
                "SELECT e.case_id, e.seq, e.trigger, e.from_state, e.to_state, e.case_version, "
                "e.actor, e.actor_role, e.at, e.payload, e.detail, e.prev_hash, e.hash, "
                "c.event_seq, c.last_hash FROM case_events e JOIN cases c ON c.id = e.case_id "
                f"WHERE e.case_id IN ({marks}) ORDER BY e.case_id, e.seq",
                {f"c{j}": cid for j, cid in enumerate(part)},
            )
    want = {"deadline_expired events": fired, "staff messages": fired, "timers at step 1": fired}
    got = {"deadline_expired events": events, "staff messages": staff, "timers at step 1": moved}
    if got != want:
        raise SystemExit(f"verification failed: {got}, expected {want}")
    broken, prev, chains = 0, GENESIS, 0
    for k, r in enumerate(rows):
        if r[1] == 1:
            prev = GENESIS
        at = _sqlite_ts(r[8])
        body = _event_body(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], at, r[9], r[10])
        if r[11] != prev or event_hash(prev, body) != r[12]:
            broken += 1
        prev = r[12]
        last = k + 1 == len(rows) or rows[k + 1][0] != r[0]
        if last:
            chains += 1
            if (r[1], r[2], r[13], r[14]) != (2, "deadline_expired", 2, r[12]):
                broken += 1
    if broken or chains != len(engine_cases):
        raise SystemExit(f"audit: {broken} broken links in {chains} engine-fired cases")
    return {**got, "engine_chains_verified": chains}


def run_advance(
    engine: Engine, db: Database, fconn: Any, pg: bool, pop: Population
) -> dict[str, Any]:
    """bench/advance.py's accept, engine and floor, on idle cases of the big database."""
    with db.tx(readonly=True) as tx:
        row = tx.one(
            "SELECT id, name, role, department_id FROM users WHERE name = :n",
            {"n": "office_handler"},
        )
    assert row is not None
    actor = Actor(name=row[1], role=row[2], department_id=row[3], user_id=int(row[0]))
    warm = pop.ids(ADV_WARM)
    e_ids, f_ids = pop.ids(ADV_ENGINE), pop.ids(ADV_FLOOR)

    def engine_op(case_id: int) -> None:
        engine.advance(case_id, adv.TRIGGER, actor, {}, 1)

    with adv.capture_tx_calls() as calls:
        engine_op(warm[0])
    problems = adv.check_plan(calls, pg)
    if problems:
        raise SystemExit("advance's floor plan does not match: " + "; ".join(problems))
    for cid in warm[1:WARM]:
        engine_op(cid)
    floor_op = adv.make_floor(fconn, pg, calls, c.after_commit(db, fconn))
    for cid in warm[WARM:]:
        floor_op(cid)
    e_s, f_s = c.Samples(len(e_ids)), c.Samples(len(f_ids))
    for i, lo in enumerate(range(0, len(e_ids), adv.BLOCK)):
        blocks = [
            (engine_op, e_ids[lo : lo + adv.BLOCK], e_s),
            (floor_op, f_ids[lo : lo + adv.BLOCK], f_s),
        ]
        for op, ids, samples in blocks if i % 2 == 0 else blocks[::-1]:
            timed(op, ids, samples)
    with db.tx(readonly=True) as tx:
        accepted = int(
            tx.scalar("SELECT count(*) FROM cases WHERE state = 'accepted' AND version = 2")
        )
    if accepted != len(warm) + len(e_ids) + len(f_ids):
        raise SystemExit(f"advance: {accepted} cases accepted")
    eng, flo = c.summarize(e_s.values()), c.summarize(f_s.values())
    return {
        "transition": adv.TRANSITION,
        "cases_each": len(e_ids),
        "engine": eng,
        "floor": flo,
        "ratio": round(eng["mean_ms"] / flo["mean_ms"], 2),
    }


# -- report --------------------------------------------------------------------------------------


def print_backend(r: dict[str, Any]) -> None:
    sw, fl, em, ad = r["sweep"], r["floor"], r["empty"], r["advance"]
    print(f"\n{r['backend']}  ({r['location']})")
    print(
        f"  {r['cases']:,} objection cases (submitted, one formal-check timer each), "
        f"{r['records']:,} records; {r['due']:,} timers due at {NOW:%Y-%m-%d %H:%M %Z}, "
        "each firing escalation step 0 (1 staff message + 1 system event)"
    )
    print(f"  firing       {'fired/s':>10}{'mean ms':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, per_s, s in (
        ("engine sweep", sw["fired_per_s"], sw["per_timer"]),
        ("floor", fl["fired_per_s"], fl["per_timer"]),
    ):
        print(
            f"  {name:13}{c.fmt_int(per_s):>10}{s['mean_ms']:>10.3f}{s['p50_ms']:>9.3f}"
            f"{s['p99_ms']:>9.3f}{s['max_ms']:>9.2f}"
        )
    bq = sw["batch_queries"]
    verdict = "meets" if r["within_target_fired"] else "below"
    print(
        f"  sweep: {sw['fired']:,} fired in {sw['elapsed_s']:.2f} s ({verdict} the "
        f"{TARGET_FIRED_PER_S:,.0f}/s target set for SQLite); "
        f"ratio engine/floor {r['ratio']:.2f}x by throughput, {r['ratio_p50']:.2f}x by "
        f"median; engine overhead {r['engine_overhead_us']:.0f} us per timer"
    )
    print(
        f"  sweep outside firing: {sw['outside_firing_ms']:.1f} ms, of which {bq['n']} batch "
        f"queries {bq['total_ms']:.1f} ms (mean {bq['mean_ms']:.2f}, max {bq['max_ms']:.2f})"
    )
    st = r["statements_per_firing"]
    line = f"  statements per firing (driver trace): engine {st['engine']}, floor {st['floor']}"
    if r["round_trips_per_firing"]:
        rt = r["round_trips_per_firing"]
        line += f"; round trips: engine {rt['engine']}, floor {rt['floor']}"
    print(line)
    if st["engine_only"] or st["floor_only"]:
        print(f"    engine only: {st['engine_only']}; floor only: {st['floor_only']}")
    print("  fire_timer's Tx statements (the floor sends these, one transaction per timer):")
    for i, s in enumerate(r["statements"], 1):
        print(f"    {i}. {adv.short(s, 92)}")
    w = r["written"]
    print(
        f"  written: {w['deadline_expired events']:,} deadline_expired events, "
        f"{w['staff messages']:,} staff messages, {w['timers at step 1']:,} timers at step 1 "
        f"(engine, warm-up and floor); {w['engine_chains_verified']:,} engine-fired hash "
        "chains verified"
    )
    print(f"  empty sweep ({em['sweep']['n']} times)  {'mean ms':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, key in (
        ("sweep()", "sweep"),
        ("  of which refresh_calendar", "refresh_calendar"),
        ("due_timers()", "due_timers"),
        ("floor: DUE_TIMERS", "floor"),
    ):
        s = em[key]
        print(f"  {name:28}{s['mean_ms']:>9.3f}{s['p50_ms']:>9.3f}{s['p99_ms']:>9.3f}")
    verdict = "meets" if r["within_target_empty"] else "MISSES"
    print(
        f"  empty sweep p99 {em['sweep']['p99_ms']:.2f} ms ({verdict} the "
        f"{TARGET_EMPTY_MS:.0f} ms target); first one after the firing "
        f"{em['first_after_firing_ms']:.2f} ms; ratio to the floor by median: sweep() "
        f"{em['ratio_sweep_p50']:.1f}x, due_timers() {em['ratio_due_timers_p50']:.1f}x"
    )
    for name, lines in r["plans"].items():
        what = {
            "with_due": f"with {r['due']:,} due",
            "empty": "nothing due",
            "generic": "generic plan (prepared, plan_cache_mode=force_generic_plan)",
        }[name]
        print(f"  plan of DUE_TIMERS, {what}:")
        for line in lines:
            print(f"    {line}")
    print(
        f"  beside: advance floor ({ad['transition']}; {ad['cases_each']} cases each, "
        "same database)"
    )
    print(f"  {'':22}{'ops/s':>10}{'mean ms':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, s in (
        ("advance, engine", ad["engine"]),
        ("advance, floor", ad["floor"]),
        ("fire timer, engine", sw["per_timer"]),
        ("fire timer, floor", fl["per_timer"]),
    ):
        print(
            f"  {name:22}{c.fmt_int(s['per_s']):>10}{s['mean_ms']:>10.3f}{s['p50_ms']:>9.3f}"
            f"{s['p99_ms']:>9.3f}"
        )
    if r["sweepers"]:
        print_sweepers(r["sweepers"])
    print(
        f"  setup {r['setup_s']:.1f} s (migrate and templates {r['setup_prep_s']:.1f} s, bulk "
        f"rows {r['setup_bulk_s']:.1f} s, settle {r['setup_settle_s']:.1f} s), measured part "
        f"{r['run_s']:.1f} s"
    )


def print_sweepers(m: dict[str, Any]) -> None:
    one, many = m["one"], m["many"]
    print(
        f"  several sweepers: each a process of its own, Deadlines(engine).sweep(batch={BATCH}) "
        f"on the same database; {one['fired']:,} timers due for each run"
    )
    print(f"  {'sweepers':>8}{'fired/s':>10}{'×1':>7}{'wall s':>9}  fired / skipped per process")
    for r in (one, many):
        each = ", ".join(f"{x['fired']:,} / {x['skipped']:,}" for x in r["each"])
        print(
            f"  {r['sweepers']:>8}{c.fmt_int(r['fired_per_s']):>10}"
            f"{r['fired_per_s'] / one['fired_per_s']:>7.2f}{r['wall_s']:>9.2f}  {each}"
        )
    for r in (one, many):
        x = r["exactly_once"]
        print(
            f"  exactly once ({r['sweepers']} sweeper{'s' if r['sweepers'] > 1 else ''}, warm-up "
            f"included): {x['cases']:,} cases, {x['deadline_expired events']:,} deadline_expired "
            f"events, {x['cases fired exactly once']:,} cases with exactly one, "
            f"{x['chain heads on the event']:,} chain heads on it, {x['staff messages']:,} staff "
            f"messages, {x['timers at step 1']:,} timers at step 1 — ok"
        )
    print(
        f"  note: the sweepers, PostgreSQL and this script share {os.cpu_count()} cores; "
        "a skipped timer is one the other process had locked or had already fired"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cases", type=int, default=None, help=f"cases (default {DEFAULT_CASES:,})")
    ap.add_argument("--due", type=int, default=None, help=f"due timers (default {DEFAULT_DUE:,})")
    ap.add_argument("--full", action="store_true", help=f"{FULL_CASES:,} cases, {FULL_DUE:,} due")
    ap.add_argument(
        "--advance-cases",
        type=int,
        default=None,
        help=f"accept commands per side, for scale (default {DEFAULT_ADVANCE}; "
        f"{FULL_ADVANCE} with --full)",
    )
    ap.add_argument("--repeat", type=int, default=REPEAT, help="empty-sweep repetitions")
    ap.add_argument(
        "--sweepers",
        type=int,
        default=1,
        help="with N ≥ 2 (PostgreSQL): one sweeper process, then N at once, on the same "
        "database, each set of --due timers checked fired exactly once",
    )
    c.add_backend_args(ap, sqlite_switch=True)
    args = ap.parse_args(argv)
    n = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    n_due = args.due or (FULL_DUE if args.full else DEFAULT_DUE)
    n_adv = args.advance_cases or (FULL_ADVANCE if args.full else DEFAULT_ADVANCE)
    special = 2 * n_due + 2 * WARM + 2 * n_adv + 2 * WARM
    if args.sweepers > 1:
        special += 2 * n_due + (1 + args.sweepers) * WARM
    if n_due < 10 or n_adv < 10 or args.repeat < 2 or not 1 <= args.sweepers <= 16:
        ap.error(
            "--due and --advance-cases must be at least 10, --repeat at least 2, --sweepers 1 to 16"
        )
    if n < 2 * special:
        ap.error(f"--cases must be at least {2 * special:,} for {n_due:,} due")
    pg_url = None if args.no_pg else args.pg
    if args.sweepers > 1 and not pg_url:
        ap.error("--sweepers needs PostgreSQL (--pg URL)")
    if args.sweepers > 1 and not args.no_sqlite:
        c.note("note: several sweepers run on PostgreSQL only (SKIP LOCKED); SQLite runs one")
    load_before = [round(x, 2) for x in os.getloadavg()]

    results: dict[str, Any] = {"sqlite": None, "postgresql": None}
    if not args.no_sqlite:
        with c.sqlite_backend(args.sqlite_dir, "sweep") as b:
            results["sqlite"] = run_backend(b.label, b.url, n, n_due, n_adv, args.repeat, b.where)
        print_backend(results["sqlite"])

    if pg_url:
        with c.pg_backend(pg_url) as b:
            results["postgresql"] = run_backend(
                b.label, b.url, n, n_due, n_adv, args.repeat, b.where, args.sweepers
            )
        print_backend(results["postgresql"])
    else:
        print(c.PG_SKIPPED)

    machine = c.machine_info(c.libpq_url(pg_url) if pg_url else None)
    c.emit_json(
        BENCH,
        {
            "cases": n,
            "due": n_due,
            "batch": BATCH,
            "now": NOW.isoformat(),
            "targets": {
                "fired_per_s_sqlite": TARGET_FIRED_PER_S,
                "empty_sweep_ms": TARGET_EMPTY_MS,
            },
            "sweepers": args.sweepers,
            **results,
            "machine": machine,
            "loadavg_before": load_before,  # machine["loadavg"] is at the end
        },
    )


if __name__ == "__main__":
    main()
