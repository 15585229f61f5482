"""The objection procedure's main path in redress and in what a user would pick instead.

Every case goes submit → accept → verify (mark_disputed) → decide (propose_decision,
approve_decision) → notify → close (finalize, restore_reputation): eight steps, eight committed
transactions, on the same database, for each of

(a) redress: `Engine.open_case` and seven `Engine.advance` calls with the expected version, by
    the users the demo data uses for each trigger (engine/demo.py `actor_key`).
(b) SpiffWorkflow (the Python BPMN engine) running `bench/peers/objection.bpmn`, one user task
    per redress command, with two exclusive gateways. Its best case: the BPMN file is parsed
    once per process; every step is what a stateless service does per request: in one
    transaction, read the workflow's row with the bare DB-API driver, deserialize it with
    `BpmnWorkflowSerializer`, complete the ready user task with the step's data, run the engine
    steps (gateways), serialize, and write it back (UPDATE with a version check). Submission
    creates the workflow, runs it to the first user task and INSERTs it. No audit trail, no
    deadlines, no notices, no record changes: only the workflow's own state.
(c) Prefect alone, one flow run per step: an async `@flow` (its best case: a sync flow run
    took about a second here, cf. workflows/flows.py) that runs the floor's transaction for its
    step on the same database, so (c) − (d) is Prefect's own cost. Prefect runs in a child
    process with its ephemeral API server and its own database on the same backend: a SQLite
    file, or a throwaway PostgreSQL database (asyncpg) created and dropped here. The server's
    start-up and two warm-up cases are not timed. Prefect runs far fewer cases (5, or 30 with
    --full); per-case time is what is compared.
(d) the bare floor: exactly the statements redress sent for each step, in the same order, one
    transaction per step, through the DB-API driver (sqlite3 with the engine's PRAGMAs and
    BEGIN IMMEDIATE, or psycopg), with no procedure logic. The statements and their parameters
    are captured from three real cases during warm-up; a parameter that differs between them is
    tied to where the engine took it from (the case's id, record id or case number, a value the
    step read earlier, that value + 1, or a text with those inside), and the rule must predict
    the second and third case exactly. What differs and cannot be explained (hashes, the access
    code's hash, the request hash) is sent as captured: the floor computes nothing. The floor
    checks that every write touched as many rows as the engine's did.
(e) eight one-row commits: per step, one transaction that inserts one small row, through the
    same driver, PRAGMAs and checkpointing. Not a peer but a bound: whatever keeps each step
    durable before it answers takes at least this long per case. Each target asks redress for a
    per-case time (SpiffWorkflow's ÷ 5, Prefect's ÷ 300); where that is below (e), no system that
    commits every step can meet it on this machine and database, and the report says so.

Per case the eight steps are timed one by one; a case's time is their sum. The systems run in
interleaved blocks (rotating order, Prefect's cases spread over the blocks), so drift and
background work hit all alike. Afterwards every case of every system is checked in the database:
closed at version 8 with identical rows (events, timers, notices, record versions) for (a), (c)
and (d); workflow completed at version 8 for (b). Any mismatch exits non-zero.

    python bench/peers.py                     # SQLite; PostgreSQL too if the env names one
    python bench/peers.py --pg postgresql://postgres@127.0.0.1:5432/test
    python bench/peers.py --full              # 2000 cases (default 200; Prefect 30, not 5)

Needs the bench extra (`make bench` installs requirements-bench.lock). The last line of stdout is
one JSON object with every figure; `bench/plot.py` draws it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import _common as c

from engine.db import Database, to_pyformat
from engine.demo import OBJECTION_PATHS, PAYLOADS, actor_key
from engine.service import Engine

BENCH = "peers"
PATH = OBJECTION_PATHS["closed"]  # the main path, submit to close
STEPS = ["submit", *PATH]
SYSTEMS = ("redress", "floor", "spiff", "prefect", "commits")
REPORT_ORDER = ("floor", "redress", "spiff", "prefect", "commits")  # rows and columns printed
LABELS = {
    "redress": "(a) redress advance",
    "spiff": "(b) SpiffWorkflow + persistence",
    "prefect": "(c) Prefect, flow run per step",
    "floor": "(d) floor (bare driver)",
    "commits": "(e) 8 one-row commits (bound)",
}
DEFAULT_CASES = 200
FULL_CASES = 2000
DEFAULT_PREFECT = 5
FULL_PREFECT = 30
PREFECT_WARM = 2
BLOCKS = 10  # the timed cases of each system run in this many interleaved blocks
TARGETS = {  # ratio of median per-case times, and which way it must go
    "redress_over_floor": ("≤", 3.0),
    "spiff_over_redress": ("≥", 5.0),
    "prefect_over_redress": ("≥", 300.0),
}
BPMN_FILE = Path(__file__).resolve().parent / "peers" / "objection.bpmn"
BPMN_PROCESS = "objection"
# What the SpiffWorkflow process needs beyond redress's payloads: the approval gateway's input.
SPIFF_EXTRA: dict[str, dict[str, Any]] = {"approve_decision": {"approved": True}}
SETUP_THREADS_PG = 4
PREFECT_FLOW = "objection-step"

Ctx = dict[str, Any]  # one case as the floor knows it: record_id, case_no, then case_id
StepFn = Callable[[Ctx], None]


# -- capturing what the engine sends -----------------------------------------------------------


@dataclass
class Call:
    """One `Tx` call: its statement, parameter rows and what it returned."""

    method: str  # one | all | execute | executemany
    sql: str
    rows: list[dict[str, Any]]
    result: Any  # one: a row or None; all: rows; execute: rowcount; executemany: None

    def fetched(self) -> list[tuple[Any, ...]] | None:
        if self.method == "one":
            return [self.result] if self.result is not None else []
        if self.method == "all":
            return list(self.result)
        return None


@contextmanager
def capture_calls() -> Iterator[list[Call]]:
    """Record every statement the engine sends through `Tx`, with its results."""
    calls: list[Call] = []

    def observe(name: str, text: str, params: Any, result: Any) -> None:
        rows = [dict(p) for p in params] if name == "executemany" else [dict(params or {})]
        if rows:
            calls.append(Call(name, text, rows, result))

    with c.observe_tx(observe):
        yield calls


@dataclass
class Template:
    """One real case driven by the engine, every step's calls captured."""

    record_id: int
    case_id: int
    case_no: str
    steps: list[list[Call]]

    def inputs(self, step: int) -> Ctx:
        ctx: Ctx = {"record_id": self.record_id, "case_no": self.case_no}
        if step > 0:
            ctx["case_id"] = self.case_id
        return ctx

    def fetched(self, step: int) -> list[list[tuple[Any, ...]] | None]:
        return [k.fetched() for k in self.steps[step]]


# -- the floor's plan: the captured statements with each varying parameter explained ----------

# A rule says where a parameter's value comes from:
#   ("c", value)                  sent as captured
#   ("in", name)                  the case's record_id, case_no or case_id
#   ("f", call, row, col, delta)  a value an earlier statement of this step read (+ delta)
#   ("t", parts)                  text: literal strings and ("in"/"f") values, joined
Rule = tuple[Any, ...]


@dataclass
class Stmt:
    method: str
    sql: str
    rows: list[dict[str, Rule]]
    rowcount: int | None  # execute: rows the engine's statement touched, the floor checks it


@dataclass
class FloorPlan:
    steps: list[list[Stmt]]
    case_id: Rule  # where the new case's id comes from in the submit step
    derived: dict[str, str] = field(default_factory=dict)  # param → rule kinds, for the report
    as_captured: list[str] = field(default_factory=list)  # varying, but sent as captured

    def statements(self) -> int:
        return sum(len(s) for s in self.steps)


def _same(x: Any, y: Any) -> bool:
    return type(x) is type(y) and x == y


def resolve(rule: Rule, ctx: Mapping[str, Any], fetched: Sequence[Any]) -> Any:
    kind = rule[0]
    if kind == "c":
        return rule[1]
    if kind == "in":
        return ctx[rule[1]]
    if kind == "f":
        _, i, r, col, delta = rule
        value = fetched[i][r][col]
        return value + delta if delta else value
    return "".join(p if isinstance(p, str) else str(resolve(p, ctx, fetched)) for p in rule[1])


def _cells(fetched: Sequence[Any], upto: int) -> Iterator[tuple[Rule, Any]]:
    for i in range(upto):
        for r, row in enumerate(fetched[i] or ()):
            for col, value in enumerate(row):
                yield ("f", i, r, col, 0), value


def _changed_positions(value: str, others: Sequence[Any]) -> set[int]:
    """Positions of `value` that differ from the same parameter of the other templates."""
    import difflib

    changed: set[int] = set()
    for other in others:
        if not isinstance(other, str):
            return set(range(len(value)))
        ops = difflib.SequenceMatcher(None, value, other, autojunk=False).get_opcodes()
        for op, i1, i2, _, _ in ops:
            if op != "equal":
                changed.update(range(max(i1 - 1, 0), max(i2, i1 + 1)))
    return changed


def _candidates(
    value: Any,
    others: Sequence[Any],
    ctx: Ctx,
    fetched: Sequence[Any],
    upto: int,
    varying: set[Rule],
) -> Iterator[Rule]:
    """Rules that give `value` from this template's case: exact inputs or read values first,
    then read values + 1 or 2, then texts with varying inputs or read values inside."""
    for name, v in ctx.items():
        if _same(v, value):
            yield ("in", name)
    for ref, v in _cells(fetched, upto):
        if _same(v, value):
            yield ref
    if isinstance(value, int) and not isinstance(value, bool):
        for ref, v in _cells(fetched, upto):
            if isinstance(v, int) and not isinstance(v, bool) and 0 < value - v <= 2:
                yield (*ref[:4], value - v)
    if isinstance(value, str):
        tokens: dict[str, Rule] = {}
        sources = [(("in", k), v) for k, v in ctx.items()] + list(_cells(fetched, upto))
        for ref, v in sources:
            if ref in varying and isinstance(v, (int, str)) and not isinstance(v, bool):
                tokens.setdefault(str(v), ref)
        tokens = {t: ref for t, ref in tokens.items() if t and t in value}
        if not tokens:
            return
        pattern = "|".join(
            rf"(?<!\d){re.escape(t)}(?!\d)" if t.isdigit() else re.escape(t)
            for t in sorted(tokens, key=len, reverse=True)
        )
        # Only occurrences where the templates' texts differ: "case:6:e6" → "case:{id}:e6".
        changed = _changed_positions(value, others)
        parts: list[Any] = []
        last = 0
        for m in re.finditer(pattern, value):
            if changed.isdisjoint(range(m.start(), m.end())):
                continue
            parts += [value[last : m.start()], tokens[m.group(0)]]
            last = m.end()
        if last:
            parts.append(value[last:])
            yield ("t", tuple(p for p in parts if p != ""))


def _varying(templates: Sequence[Template], step: int, upto: int) -> set[Rule]:
    """The inputs and read values of this step that differ between the template cases."""
    a, *others = templates
    out: set[Rule] = set()
    for name, v in a.inputs(step).items():
        if any(not _same(t.inputs(step)[name], v) for t in others):
            out.add(("in", name))
    fa = a.fetched(step)
    fo = [t.fetched(step) for t in others]
    for ref, v in _cells(fa, upto):
        _, i, r, col, _ = ref
        for f in fo:
            rows = f[i] or []
            if len(rows) <= r or not _same(rows[r][col], v):
                out.add(ref)
                break
    return out


def derive_plan(templates: Sequence[Template]) -> FloorPlan:
    """The floor's statements from the first template, each varying parameter explained so that
    it predicts the other templates exactly."""
    a, *others = templates
    for t in others:
        for s, (ca, ct) in enumerate(zip(a.steps, t.steps, strict=True)):
            shape_a = [(k.method, k.sql, len(k.rows), sorted(k.rows[0])) for k in ca]
            shape_t = [(k.method, k.sql, len(k.rows), sorted(k.rows[0])) for k in ct]
            if shape_a != shape_t:
                raise SystemExit(
                    f"the engine sent different statements for step {STEPS[s]} of two identical "
                    "cases; the floor cannot replay them"
                )
    steps: list[list[Stmt]] = []
    derived: dict[str, set[str]] = {}
    as_captured: list[str] = []
    for s, calls in enumerate(a.steps):
        ctx_a = a.inputs(s)
        fetched_a = a.fetched(s)
        others_ctx = [(t.inputs(s), t.fetched(s), t.steps[s]) for t in others]
        stmts: list[Stmt] = []
        for i, call in enumerate(calls):
            varying = _varying(templates, s, i)
            rows: list[dict[str, Rule]] = []
            for r, params in enumerate(call.rows):
                rules: dict[str, Rule] = {}
                for name, value in params.items():
                    wanted = [tc[i].rows[r][name] for _, _, tc in others_ctx]
                    if all(_same(w, value) for w in wanted):
                        rules[name] = ("c", value)
                        continue
                    rule = next(
                        (
                            cand
                            for cand in _candidates(value, wanted, ctx_a, fetched_a, i, varying)
                            if all(
                                _same(resolve(cand, ctx, f), w)
                                for (ctx, f, _), w in zip(others_ctx, wanted, strict=True)
                            )
                        ),
                        None,
                    )
                    if rule is None:
                        rules[name] = ("c", value)
                        as_captured.append(f"{STEPS[s]}: {short_sql(call.sql)} :{name}")
                    else:
                        rules[name] = rule
                        derived.setdefault(name, set()).add(rule[0])
                rows.append(rules)
            rowcount = call.result if call.method == "execute" else None
            stmts.append(Stmt(call.method, call.sql, rows, rowcount))
        steps.append(stmts)
    # The new case's id: something the submit step read (INSERT ... RETURNING id).
    fa0 = a.fetched(0)
    case_rule = next(
        (
            ref
            for ref, v in _cells(fa0, len(fa0))
            if _same(v, a.case_id)
            and all(_same(resolve(ref, {}, t.fetched(0)), t.case_id) for t in others)
        ),
        None,
    )
    if case_rule is None:
        raise SystemExit("the floor cannot find the new case's id among what submission read")
    kinds = {"in": "input", "f": "read", "t": "text"}
    return FloorPlan(
        steps,
        case_rule,
        {k: "/".join(sorted(kinds[x] for x in v)) for k, v in sorted(derived.items())},
        as_captured,
    )


def short_sql(text: str, width: int = 48) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- the floor ---------------------------------------------------------------------------------


Getter = Callable[[Ctx, list[Any]], Any]


def _getter(rule: Rule) -> Getter:
    kind = rule[0]
    if kind == "in":
        name = rule[1]
        return lambda ctx, f: ctx[name]
    if kind == "f":
        _, i, r, col, delta = rule
        if delta:
            return lambda ctx, f: f[i][r][col] + delta
        return lambda ctx, f: f[i][r][col]
    if kind == "t":
        parts = [(p, None) if isinstance(p, str) else ("", _getter(p)) for p in rule[1]]
        return lambda ctx, f: "".join(s if g is None else str(g(ctx, f)) for s, g in parts)
    value = rule[1]
    return lambda ctx, f: value


class FloorMismatch(RuntimeError):
    pass


def make_floor(
    conn: Any, pg: bool, plan: FloorPlan, after_commit: Callable[[], None] | None = None
) -> list[StepFn]:
    """One function per step: the step's statements, one transaction, nothing else."""
    cur = conn.cursor()
    poke = after_commit or (lambda: None)
    case_id_of = _getter(plan.case_id)

    def compile_step(index: int, stmts: Sequence[Stmt]) -> StepFn:
        compiled = []
        for st in stmts:
            rows = []
            for rules in st.rows:
                const = {k: r[1] for k, r in rules.items() if r[0] == "c"}
                dyn = [(k, _getter(r)) for k, r in rules.items() if r[0] != "c"]
                rows.append((const, dyn))
            compiled.append((st.method, to_pyformat(st.sql) if pg else st.sql, rows, st.rowcount))
        first = index == 0

        def params(row: tuple[dict[str, Any], list[tuple[str, Getter]]], ctx: Ctx, f: Any) -> Any:
            const, dyn = row
            if not dyn:
                return const
            p = dict(const)
            for k, g in dyn:
                p[k] = g(ctx, f)
            return p

        def step(ctx: Ctx) -> None:
            f: list[Any] = []
            try:
                if not pg:
                    cur.execute("BEGIN IMMEDIATE")  # psycopg sends BEGIN with the first statement
                for method, q, rows, expect in compiled:
                    if len(rows) == 1:
                        cur.execute(q, params(rows[0], ctx, f))
                    else:
                        cur.executemany(q, [params(row, ctx, f) for row in rows])
                    if method == "one":
                        row = cur.fetchone()
                        f.append([row] if row is not None else [])
                    elif method == "all":
                        f.append(cur.fetchall())
                    else:
                        f.append(None)
                        if expect is not None and cur.rowcount != expect:
                            raise FloorMismatch(
                                f"{STEPS[index]}: {short_sql(q)} touched {cur.rowcount} rows, "
                                f"the engine's touched {expect}"
                            )
                if first:
                    ctx["case_id"] = case_id_of(ctx, f)
            except BaseException:
                conn.rollback() if pg else cur.execute("ROLLBACK")
                raise
            if pg:
                conn.commit()
            else:
                cur.execute("COMMIT")
                poke()

        return step

    return [compile_step(i, stmts) for i, stmts in enumerate(plan.steps)]


def floor_case_no(template_no: str, n: int) -> str:
    """A case number of the engine's length that the engine never makes (it uses no '-')."""
    return f"{template_no[:-7]}-{n:06d}"


# -- the systems -------------------------------------------------------------------------------


Timer = Callable[[], int]


class Redress:
    def __init__(self, engine: Engine, office: c.Office) -> None:
        self.engine = engine
        self.filer = office.actor("office_handler")
        self.path = [(t, office.actor(actor_key("objection", t)), PAYLOADS[t]) for t in PATH]

    def case(self, record_id: int, ns: list[int]) -> int:
        clock = time.perf_counter_ns
        engine = self.engine
        t0 = clock()
        case_id = engine.open_case(
            procedure="objection",
            record_id=record_id,
            applicant=c.APPLICANT,
            actor=self.filer,
            payload=c.OBJECTION_INTAKE,
        ).case_id
        t1 = clock()
        ns.append(t1 - t0)
        version = 1
        for trigger, actor, payload in self.path:
            t0 = clock()
            engine.advance(case_id, trigger, actor, payload, version)
            t1 = clock()
            ns.append(t1 - t0)
            version += 1
        return int(case_id)


class Floor:
    def __init__(self, steps: list[StepFn], template_no: str) -> None:
        self.steps = steps
        self.template_no = template_no
        self.made = 0

    def case(self, record_id: int, ns: list[int]) -> int:
        clock = time.perf_counter_ns
        self.made += 1
        ctx: Ctx = {"record_id": record_id, "case_no": floor_case_no(self.template_no, self.made)}
        for step in self.steps:
            t0 = clock()
            step(ctx)
            t1 = clock()
            ns.append(t1 - t0)
        return int(ctx["case_id"])


class CommitProbe:
    """(e) The least a step can be and still be durable when it answers: one small row, one
    committed transaction, as the floor and SpiffWorkflow commit theirs."""

    def __init__(self, conn: Any, pg: bool, after_commit: Callable[[], None] | None = None) -> None:
        self.conn = conn
        self.pg = pg
        self.cur = conn.cursor()
        self.after_commit = after_commit or (lambda: None)
        ph = "%s" if pg else "?"
        self.q = f"INSERT INTO peer_commit_probe (case_ref, step) VALUES ({ph}, {ph})"
        self.made = 0

    def case(self, record_id: int, ns: list[int]) -> int:
        clock = time.perf_counter_ns
        cur, conn, pg, q = self.cur, self.conn, self.pg, self.q
        self.made += 1
        for step in range(len(STEPS)):
            t0 = clock()
            if pg:
                cur.execute(q, (record_id, step))
                conn.commit()
            else:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(q, (record_id, step))
                cur.execute("COMMIT")
                self.after_commit()
            t1 = clock()
            ns.append(t1 - t0)
        return self.made


SPIFF_PHASES = ("database", "deserialize", "run", "serialize")
SPIFF_TABLE_SQLITE = """
CREATE TABLE peer_spiff_workflows (id INTEGER PRIMARY KEY, record_id INTEGER NOT NULL,
    state TEXT NOT NULL, version INTEGER NOT NULL, workflow TEXT NOT NULL)
"""
SPIFF_TABLE_PG = SPIFF_TABLE_SQLITE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
PROBE_TABLE_SQLITE = """
CREATE TABLE peer_commit_probe (id INTEGER PRIMARY KEY, case_ref INTEGER NOT NULL,
    step INTEGER NOT NULL)
"""
PROBE_TABLE_PG = PROBE_TABLE_SQLITE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")


class Spiff:
    """SpiffWorkflow with its workflow persisted after every step, deserialized before each."""

    def __init__(self, conn: Any, pg: bool, after_commit: Callable[[], None] | None = None) -> None:
        try:
            from SpiffWorkflow.bpmn.parser import BpmnParser
            from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
            from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
            from SpiffWorkflow.util.task import TaskState
        except ImportError:  # pragma: no cover - depends on the environment
            raise SystemExit(
                "SpiffWorkflow is missing: `make bench` installs the bench extra "
                "(requirements-bench.lock)"
            ) from None
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN_FILE))
        self.spec = parser.get_spec(BPMN_PROCESS)  # parsed once per process
        self.workflow_cls = BpmnWorkflow
        self.serializer = BpmnWorkflowSerializer()
        self.ready = TaskState.READY
        self.conn = conn
        self.pg = pg
        self.cur = conn.cursor()
        self.after_commit = after_commit or (lambda: None)
        ph = "%s" if pg else "?"
        self.q_insert = (
            "INSERT INTO peer_spiff_workflows (record_id, state, version, workflow) "
            f"VALUES ({ph}, {ph}, 1, {ph}) RETURNING id"
        )
        self.q_load = f"SELECT workflow, version FROM peer_spiff_workflows WHERE id = {ph}"
        self.q_save = (
            f"UPDATE peer_spiff_workflows SET workflow = {ph}, state = {ph}, "
            f"version = version + 1 WHERE id = {ph} AND version = {ph}"
        )
        self.path = [(t, {**PAYLOADS[t], **SPIFF_EXTRA.get(t, {})}) for t in PATH]
        self.sizes: list[int] = []  # serialized bytes after each step of the last case
        # Where a step's time goes (summed over the steps after submission, reset after warm-up).
        self.phases = dict.fromkeys(SPIFF_PHASES, 0)
        self.phase_steps = 0

    def _begin(self) -> None:
        if not self.pg:
            self.cur.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        if self.pg:
            self.conn.commit()
        else:
            self.cur.execute("COMMIT")
            self.after_commit()

    def _rollback(self) -> None:
        if self.pg:
            self.conn.rollback()
        else:
            self.cur.execute("ROLLBACK")

    def _waiting_for(self, wf: Any) -> str:
        if wf.is_completed():
            return "closed"
        task = wf.get_next_task(state=self.ready, manual=True)
        return str(task.task_spec.bpmn_id) if task is not None else "stuck"

    def case(self, record_id: int, ns: list[int]) -> int:
        clock = time.perf_counter_ns
        cur, ser = self.cur, self.serializer
        sizes = []
        t0 = clock()
        wf = self.workflow_cls(self.spec)
        wf.task_tree.data.update(c.OBJECTION_INTAKE)
        wf.do_engine_steps()
        text = ser.serialize_json(wf)
        try:
            self._begin()
            cur.execute(self.q_insert, (record_id, self._waiting_for(wf), text))
            wf_id = int(cur.fetchone()[0])
        except BaseException:
            self._rollback()
            raise
        self._commit()
        t1 = clock()
        ns.append(t1 - t0)
        sizes.append(len(text.encode()))
        phases = self.phases
        for trigger, data in self.path:
            t0 = clock()
            try:
                self._begin()
                cur.execute(self.q_load, (wf_id,))
                text, version = cur.fetchone()
                t1 = clock()
                wf = ser.deserialize_json(text)
                t2 = clock()
                task = wf.get_next_task(state=self.ready, manual=True)
                if task is None or task.task_spec.bpmn_id != trigger:
                    raise RuntimeError(f"workflow {wf_id} is not waiting for {trigger}")
                task.data.update(data)
                task.run()
                wf.do_engine_steps()
                waiting = self._waiting_for(wf)
                t3 = clock()
                text = ser.serialize_json(wf)
                t4 = clock()
                cur.execute(self.q_save, (text, waiting, wf_id, version))
                if cur.rowcount != 1:
                    raise RuntimeError(f"workflow {wf_id} changed underneath")
            except BaseException:
                self._rollback()
                raise
            self._commit()
            t5 = clock()
            ns.append(t5 - t0)
            sizes.append(len(text.encode()))
            phases["database"] += t1 - t0 + t5 - t4
            phases["deserialize"] += t2 - t1
            phases["run"] += t3 - t2
            phases["serialize"] += t4 - t3
        self.phase_steps += len(self.path)
        self.sizes = sizes
        return wf_id


# -- Prefect, in a child process ---------------------------------------------------------------


def _send(out: IO[str], obj: Any) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def prefect_child() -> None:
    """The child: Prefect configured from the environment before it is imported; answers one
    JSON command per stdin line on the original stdout (Prefect's own output goes to stderr)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(_prefect_main(proto))


async def _prefect_main(proto: IO[str]) -> None:
    from prefect import flow

    floor: list[StepFn] = []

    @flow(name=PREFECT_FLOW, retries=0, persist_result=False)
    async def objection_step(step: int, case: dict[str, Any]) -> dict[str, Any]:
        """One step of one objection case: the floor's transaction for that step."""
        ctx = dict(case)
        floor[step](ctx)
        return ctx

    @flow(name="warm-up", retries=0, persist_result=False)
    async def warm_up() -> int:
        return 1

    conn = None
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "start":
            t0 = time.perf_counter()
            await warm_up()
            started = time.perf_counter() - t0
            await warm_up()
            _send(proto, {"startup_s": round(started, 2)})
        elif op == "plan":
            with open(cmd["plan"], "rb") as f:
                plan = pickle.load(f)
            url = cmd["url"]
            conn = c.driver_connection(url)
            floor[:] = make_floor(conn, not url.startswith("sqlite"), plan)
            _send(proto, {"ok": True})
        elif op == "run":
            done = []
            clock = time.perf_counter_ns
            for record_id, case_no in cmd["cases"]:
                ctx: Ctx = {"record_id": record_id, "case_no": case_no}
                ns = []
                for step in range(len(floor)):
                    t0 = clock()
                    ctx = await objection_step(step, ctx)
                    ns.append(clock() - t0)
                done.append({"case_id": ctx["case_id"], "ns": ns})
            _send(proto, {"cases": done})
        elif op == "count":
            from prefect.client.orchestration import get_client
            from prefect.client.schemas.filters import (
                FlowFilter,
                FlowFilterName,
                FlowRunFilter,
                FlowRunFilterState,
                FlowRunFilterStateType,
            )
            from prefect.client.schemas.objects import StateType

            async with get_client() as client:
                n = await client.count_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[PREFECT_FLOW])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.COMPLETED])
                        )
                    ),
                )
            _send(proto, {"completed": n})
        elif op == "quit":
            break
    if conn is not None:
        conn.close()


class PrefectPeer:
    """The parent's handle on the Prefect child; the child starts its server at once."""

    def __init__(self, pg_url: str | None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="redress-bench-prefect-"))
        self.pg_url = pg_url
        self.database: str | None = None
        if pg_url:
            import psycopg
            from sqlalchemy.engine import make_url

            self.database = f"redress_bench_prefect_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(c.libpq_url(pg_url), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {self.database}")
            api_db = (
                make_url(c.libpq_url(pg_url))
                .set(drivername="postgresql+asyncpg", database=self.database, query={})
                .render_as_string(hide_password=False)
            )
            self.where = f"PostgreSQL database {self.database} (asyncpg; dropped afterwards)"
        else:
            api_db = f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
            self.where = "SQLite file in a temporary PREFECT_HOME"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_DATABASE_CONNECTION_URL=api_db,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--prefect-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.startup_s: float | None = None
        self._ask_later({"op": "start"})

    def _ask_later(self, cmd: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def _answer(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the Prefect child died (exit {self.proc.wait()})")
        return json.loads(line)

    def ask(self, cmd: Mapping[str, Any]) -> Any:
        self._ask_later(cmd)
        return self._answer()

    def ready(self, plan_file: Path, url: str) -> None:
        if self.startup_s is None:
            self.startup_s = float(self._answer()["startup_s"])
        self.ask({"op": "plan", "plan": str(plan_file), "url": url})

    def run(self, cases: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
        return list(self.ask({"op": "run", "cases": [list(x) for x in cases]})["cases"])

    def close(self) -> None:
        if self.proc.poll() is None:
            with suppress(OSError):
                self._ask_later({"op": "quit"})
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)
        if self.database and self.pg_url:
            import psycopg

            with psycopg.connect(c.libpq_url(self.pg_url), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


# -- one backend -------------------------------------------------------------------------------


@dataclass
class Timings:
    """Per-step and per-case nanoseconds of one system."""

    capacity: int
    cases: c.Samples = field(init=False)
    steps: list[c.Samples] = field(init=False)
    ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cases = c.Samples(self.capacity)
        self.steps = [c.Samples(self.capacity) for _ in STEPS]

    def add(self, case_id: int, ns: Sequence[int]) -> None:
        if len(ns) != len(STEPS):
            raise SystemExit(f"a case took {len(ns)} steps, not {len(STEPS)}")
        self.ids.append(case_id)
        self.cases.add(sum(ns))
        for s, v in zip(self.steps, ns, strict=True):
            s.add(v)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = c.summarize(self.cases.values())
        out.pop("per_s", None)
        out["per_step_ms"] = {
            name: round(c.percentile(sorted(s.values()), 50) / 1e6, 4)
            for name, s in zip(STEPS, self.steps, strict=True)
        }
        out["per_step_mean_ms"] = round(out["mean_ms"] / len(STEPS), 4)
        return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    stack += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return total


def split_blocks(items: Sequence[Any], blocks: int) -> list[Sequence[Any]]:
    n = len(items)
    return [items[b * n // blocks : (b + 1) * n // blocks] for b in range(blocks)]


def run_backend(
    label: str, url: str, n: int, n_prefect: int, location: str, admin_pg: str | None
) -> dict[str, Any]:
    pg = not url.startswith("sqlite")
    started = time.perf_counter()
    prefect = PrefectPeer(admin_pg if pg else None) if n_prefect else None
    try:
        return _run_backend(label, url, n, n_prefect, location, prefect, started)
    finally:
        if prefect is not None:
            prefect.close()


def _run_backend(
    label: str,
    url: str,
    n: int,
    n_prefect: int,
    location: str,
    prefect: PrefectPeer | None,
    started: float,
) -> dict[str, Any]:
    pg = not url.startswith("sqlite")
    warm = max(5, min(20, n // 20))
    n_templates = 3
    p_total = n_prefect + PREFECT_WARM if prefect else 0
    total = (warm + n_templates) + (warm + n) + (warm + n) + p_total
    workers = SETUP_THREADS_PG if pg else 1
    setup_db = c.migrated_database(url, pool_size=workers + 1)
    office = c.build_office(setup_db)
    with c.progress_bar() as bar:
        task = bar.add_task(f"{label}: records", total=total)
        records = c.create_records(office, total, lambda: bar.advance(task), workers)
    with setup_db.engine.begin() as conn:
        conn.exec_driver_sql(SPIFF_TABLE_PG if pg else SPIFF_TABLE_SQLITE)
        conn.exec_driver_sql(PROBE_TABLE_PG if pg else PROBE_TABLE_SQLITE)
    setup_db.dispose()
    if pg:
        c.pg_vacuum_analyze(url)
    # Templates take records from the end, so their record ids are far from their case ids.
    pool = list(records)
    template_records = [pool.pop() for _ in range(n_templates)]

    def take(k: int) -> list[int]:
        return [pool.pop(0) for _ in range(k)]

    warm_engine, warm_floor = take(warm), take(warm)
    engine_records, floor_records = take(n), take(n)
    prefect_warm, prefect_records = take(PREFECT_WARM if prefect else 0), take(n_prefect)

    db = Database(url, pool_size=2)
    engine = Engine(db, clock=office.clock)
    redress = Redress(engine, office)
    scratch: list[int] = []
    for rid in warm_engine:
        redress.case(rid, scratch)
        scratch.clear()

    # Three template cases through the engine, every step captured: the floor's plan.
    templates = []
    for rid in template_records:
        steps: list[list[Call]] = []
        with capture_calls() as calls:
            opened = engine.open_case(
                procedure="objection",
                record_id=rid,
                applicant=c.APPLICANT,
                actor=redress.filer,
                payload=c.OBJECTION_INTAKE,
            )
        steps.append(list(calls))
        for v, (trigger, actor, payload) in enumerate(redress.path, 1):
            with capture_calls() as calls:
                engine.advance(opened.case_id, trigger, actor, payload, v)
            steps.append(list(calls))
        templates.append(Template(rid, int(opened.case_id), opened.case_no, steps))
    plan = derive_plan(templates)

    fconn = c.driver_connection(url)
    floor = Floor(
        make_floor(fconn, pg, plan, c.after_commit(engine.db, fconn)), templates[0].case_no
    )
    for rid in warm_floor:
        floor.case(rid, scratch)
        scratch.clear()

    sconn = c.driver_connection(url)
    spiff = Spiff(sconn, pg, c.after_commit(engine.db, sconn))
    for rid in warm_engine:  # Spiff's table is its own; the record id is only a column there
        spiff.case(rid, scratch)
        scratch.clear()
    spiff.phases = dict.fromkeys(SPIFF_PHASES, 0)
    spiff.phase_steps = 0

    pconn = c.driver_connection(url)
    probe = CommitProbe(pconn, pg, c.after_commit(engine.db, pconn))
    for rid in warm_engine:
        probe.case(rid, scratch)
        scratch.clear()

    prefect_cases: list[tuple[int, str]] = []
    if prefect is not None:
        plan_file = prefect.home / "plan.pickle"
        with open(plan_file, "wb") as f:
            pickle.dump(plan, f)
        t_wait = time.perf_counter()
        prefect.ready(plan_file, url)
        waited = time.perf_counter() - t_wait
        c.note(
            f"{label}: Prefect's server started in {prefect.startup_s:.1f} s "
            f"(waited {waited:.1f} s after setup)"
        )
        numbered = [
            (rid, floor_case_no(templates[0].case_no, 900_000 + i))
            for i, rid in enumerate(prefect_warm + prefect_records)
        ]
        prefect.run(numbered[:PREFECT_WARM])
        prefect_cases = numbered[PREFECT_WARM:]
    setup_s = time.perf_counter() - started

    # Timed: the systems in interleaved blocks, the order rotating from block to block.
    timings = {name: Timings(n if name != "prefect" else max(n_prefect, 1)) for name in SYSTEMS}
    runners: dict[str, Callable[[int, list[int]], int]] = {
        "redress": redress.case,
        "floor": floor.case,
        "spiff": spiff.case,
        "commits": probe.case,
    }
    per_system = {
        "redress": split_blocks(engine_records, BLOCKS),
        "floor": split_blocks(floor_records, BLOCKS),
        "spiff": split_blocks(engine_records, BLOCKS),
        "prefect": split_blocks(prefect_cases, BLOCKS),
        "commits": split_blocks(engine_records, BLOCKS),
    }
    order = ["redress", "floor", "spiff", "commits", "prefect"]
    beside = [0.0, 0.0]  # Prefect's processes: CPU seconds, wall seconds, while the others ran
    with c.progress_bar() as bar:
        task = bar.add_task(f"{label}: cases", total=4 * n + len(prefect_cases))
        for b in range(BLOCKS):
            rot = b % len(order)
            for name in order[rot:] + order[:rot]:
                items = per_system[name][b]
                if not items:
                    continue
                if name == "prefect":
                    assert prefect is not None
                    for done in prefect.run(items):
                        timings["prefect"].add(int(done["case_id"]), done["ns"])
                    bar.advance(task, len(items))
                    continue
                run = runners[name]
                cpu0, wall0 = (
                    (tree_cpu_s(prefect.proc.pid) if prefect else 0.0),
                    time.perf_counter(),
                )
                for rid in items:
                    ns: list[int] = []
                    timings[name].add(run(rid, ns), ns)
                    bar.advance(task)
                if prefect is not None:
                    beside[0] += tree_cpu_s(prefect.proc.pid) - cpu0
                    beside[1] += time.perf_counter() - wall0
    run_s = time.perf_counter() - started - setup_s

    prefect_runs = None
    if prefect is not None:
        prefect_runs = int(prefect.ask({"op": "count"})["completed"])
        expected = (PREFECT_WARM + n_prefect) * len(STEPS)
        if prefect_runs != expected:
            raise SystemExit(f"Prefect completed {prefect_runs} flow runs, not {expected}")
    verify(db, timings, n, n_prefect if prefect else 0, (warm + n) * len(STEPS))
    fconn.close()
    sconn.close()
    pconn.close()
    db.dispose()

    systems = {name: timings[name].summary() for name in SYSTEMS if timings[name].ids}
    med = {name: s["p50_ms"] for name, s in systems.items()}
    mean = {name: s["mean_ms"] for name, s in systems.items()}
    ratios: dict[str, float | None] = {}
    for key, (num, den) in {
        "redress_over_floor": ("redress", "floor"),
        "spiff_over_redress": ("spiff", "redress"),
        "prefect_over_redress": ("prefect", "redress"),
    }.items():
        both = num in med and den in med
        ratios[key] = round(med[num] / med[den], 2) if both else None
        ratios[key + "_by_mean"] = round(mean[num] / mean[den], 2) if both else None
    met = {}
    for key, (way, target) in TARGETS.items():
        r = ratios[key]
        met[key] = None if r is None else (r <= target if way == "≤" else r >= target)
    reach = within_reach(med)
    sizes = spiff.sizes
    steps_done = max(spiff.phase_steps, 1)
    spiff_phases = {k: round(v / steps_done / 1e6, 4) for k, v in spiff.phases.items()}
    overhead = {
        "redress_minus_floor_per_step_ms": round(
            (systems["redress"]["p50_ms"] - systems["floor"]["p50_ms"]) / len(STEPS), 4
        ),
        "spiff_python_per_step_ms": round(
            sum(v for k, v in spiff_phases.items() if k != "database"), 4
        ),
        "spiff_phases_per_step_ms": spiff_phases,
    }
    if "prefect" in systems:
        overhead["prefect_minus_floor_per_step_ms"] = round(
            (systems["prefect"]["p50_ms"] - systems["floor"]["p50_ms"]) / len(STEPS), 3
        )
    return {
        "backend": label,
        "location": location,
        "cases": {name: len(timings[name].ids) for name in SYSTEMS},
        "systems": systems,
        "ratios": ratios,
        "targets_met": met,
        "within_reach": reach,
        "where_time_goes": overhead,
        "spiff_serialized_bytes": {
            "after_submit": sizes[0],
            "closed": sizes[-1],
            "mean": round(sum(sizes) / len(sizes)),
        },
        "floor_plan": {
            "transactions": len(plan.steps),
            "statements": plan.statements(),
            "per_step": [len(s) for s in plan.steps],
            "derived": plan.derived,
            "sent_as_captured": dict(Counter(x.rsplit(":", 1)[1] for x in plan.as_captured)),
        },
        "prefect": (
            {
                "api_database": prefect.where,
                "server_startup_s": prefect.startup_s,
                "flow_runs_completed": prefect_runs,
                "warm_up_cases": PREFECT_WARM,
                "cpu_share_beside_others": round(beside[0] / beside[1], 3) if beside[1] else None,
            }
            if prefect is not None
            else None
        ),
        "setup_s": round(setup_s, 2),
        "run_s": round(run_s, 2),
    }


def within_reach(med: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """What per-case time each peer target asks of redress, beside two bounds: (e), the least
    any system that commits every step takes, and (e) plus redress's own work (redress − floor:
    its Python, not its SQL), the least redress could take if each of its steps cost the
    database no more than one small row. A target asking for less than the first cannot be met
    by any such system here; less than the second, not by redress's logic however lean its
    SQL."""
    out: dict[str, dict[str, Any]] = {}
    if "commits" not in med:
        return out
    own = max(med["redress"] - med["floor"], 0.0)
    for key, (way, target) in TARGETS.items():
        num, den = key.split("_over_")
        if way != "≥" or den != "redress" or num not in med:
            continue
        asks = med[num] / target
        if asks <= med["commits"]:
            verdict = "out of reach for any system that commits every step"
        elif asks <= med["commits"] + own:
            verdict = "out of reach for redress's own work beside the commits, whatever its SQL"
        else:
            verdict = "within reach"
        out[key] = {
            "redress_at_most_ms": round(asks, 4),
            "commits_ms": med["commits"],
            "commits_plus_own_work_ms": round(med["commits"] + own, 4),
            "reachable": verdict == "within reach",
            "verdict": verdict,
        }
    return out


def verify(db: Database, t: Mapping[str, Timings], n: int, n_prefect: int, probe_rows: int) -> None:
    """Every case of every system ended closed, (a), (c), (d) wrote identical rows, and every
    commit of (e) is there."""
    problems = []
    for name, want in (
        ("redress", n),
        ("floor", n),
        ("spiff", n),
        ("prefect", n_prefect),
        ("commits", n),
    ):
        if len(t[name].ids) != want or len(set(t[name].ids)) != want:
            problems.append(f"{name}: {len(set(t[name].ids))} distinct cases, not {want}")
    case_sql = (
        "SELECT c.id, c.state, c.version, c.event_seq, c.closed_at IS NOT NULL, "
        "(SELECT count(*) FROM case_events e WHERE e.case_id = c.id), "
        "(SELECT count(*) FROM timers m WHERE m.case_id = c.id), "
        "(SELECT count(*) FROM timers m WHERE m.case_id = c.id AND m.status = 'stopped'), "
        "(SELECT count(*) FROM outbox o WHERE o.case_id = c.id), "
        "(SELECT count(*) FROM record_versions v WHERE v.record_id = c.record_id), "
        "(SELECT count(*) FROM outbox o WHERE o.record_id = c.record_id AND o.case_id IS NULL), "
        "r.status, r.disputed, r.version "
        "FROM cases c JOIN credit_records r ON r.id = c.record_id"
    )
    with db.tx(readonly=True) as tx:
        rows = {int(r[0]): tuple(r[1:]) for r in tx.all(case_sql)}
        spiff_rows = {
            int(r[0]): (r[1], int(r[2]))
            for r in tx.all("SELECT id, state, version FROM peer_spiff_workflows")
        }
        probed = int(tx.scalar("SELECT count(*) FROM peer_commit_probe") or 0)
    if probed != probe_rows:
        problems.append(f"commits: {probed} rows stored, not {probe_rows}")
    signatures: dict[tuple[Any, ...], list[str]] = {}
    for name in ("redress", "floor", "prefect"):
        for case_id in t[name].ids:
            sig = rows.get(case_id)
            if sig is None:
                problems.append(f"{name}: case {case_id} is not in the database")
                continue
            if sig[:4] != ("closed", 8, 8, True) or sig[4] != 8:
                problems.append(f"{name}: case {case_id} ended as {sig}")
            signatures.setdefault(sig, []).append(name)
    if len(signatures) > 1:
        for sig, names in signatures.items():
            problems.append(f"{len(names)} cases ({', '.join(sorted(set(names)))}) wrote {sig}")
    for wf_id in t["spiff"].ids:
        if spiff_rows.get(wf_id) != ("closed", 8):
            problems.append(f"spiff: workflow {wf_id} ended as {spiff_rows.get(wf_id)}")
    if problems:
        raise SystemExit("verification failed:\n  " + "\n  ".join(problems[:20]))


# -- report ------------------------------------------------------------------------------------


def verdict(key: str, r: Mapping[str, Any]) -> str:
    way, target = TARGETS[key]
    ratio = r["ratios"][key]
    if ratio is None:
        return "not measured"
    mark = "✓" if r["targets_met"][key] else "✗"
    return f"{ratio:,.2f}× (target {way} {target:g}×) {mark}"


def print_backend(r: dict[str, Any]) -> None:
    print(f"\n{r['backend']}  ({r['location']})")
    print(f"  path: {' → '.join(STEPS)} ({len(STEPS)} transactions per case)")
    systems = r["systems"]
    print(
        f"  {'':34}{'cases':>6}{'per case p50 ms':>17}{'p99 ms':>10}{'mean ms':>10}"
        f"{'per step ms':>13}{'÷ redress':>11}"
    )
    base = systems["redress"]["p50_ms"]
    for name in REPORT_ORDER:
        s = systems.get(name)
        if s is None:
            continue
        print(
            f"  {LABELS[name]:34}{s['n']:>6}{s['p50_ms']:>17.3f}{s['p99_ms']:>10.3f}"
            f"{s['mean_ms']:>10.3f}{s['per_step_mean_ms']:>13.3f}{s['p50_ms'] / base:>10.2f}×"
        )
    print("  ratios of median per-case time:")
    print(f"    redress ÷ floor        {verdict('redress_over_floor', r)}")
    print(f"    SpiffWorkflow ÷ redress {verdict('spiff_over_redress', r)}")
    print(f"    Prefect ÷ redress      {verdict('prefect_over_redress', r)}")
    reach = r.get("within_reach") or {}
    if reach:
        bounds = next(iter(reach.values()))
        print(
            f"  what each target asks of redress per case, beside (e), the least any system that "
            f"commits every step takes ({bounds['commits_ms']:.3f} ms), and (e) + redress's own "
            f"work, redress − floor ({bounds['commits_plus_own_work_ms']:.3f} ms):"
        )
        peers = (("spiff_over_redress", "SpiffWorkflow"), ("prefect_over_redress", "Prefect"))
        for key, name in peers:
            w = reach.get(key)
            if w is not None:
                target = TARGETS[key][1]
                asks = w["redress_at_most_ms"]
                print(f"    {target:g}× {name:14} ≤ {asks:8.3f} ms: {w['verdict']}")
    print("  median ms per step:")
    names = [x for x in REPORT_ORDER if x in systems]
    print(f"    {'step':20}" + "".join(f"{x:>10}" for x in names))
    for step in STEPS:
        print(
            f"    {step:20}" + "".join(f"{systems[x]['per_step_ms'][step]:>10.3f}" for x in names)
        )
    w = r["where_time_goes"]
    ph = w["spiff_phases_per_step_ms"]
    print(
        f"  where a step's time goes: redress's own work over the floor "
        f"{w['redress_minus_floor_per_step_ms']:.3f} ms (median case ÷ {len(STEPS)}); "
        f"SpiffWorkflow's Python {w['spiff_python_per_step_ms']:.3f} ms (deserialize "
        f"{ph['deserialize']:.3f}, run {ph['run']:.3f}, serialize {ph['serialize']:.3f}) "
        f"+ database {ph['database']:.3f} ms (mean of steps after submission)"
    )
    if "prefect_minus_floor_per_step_ms" in w:
        print(
            f"    Prefect's own cost per flow run over the floor's transaction: "
            f"{w['prefect_minus_floor_per_step_ms']:.1f} ms"
        )
    sz = r["spiff_serialized_bytes"]
    print(
        f"  SpiffWorkflow's serialized workflow: {sz['after_submit']:,} bytes after submission, "
        f"{sz['closed']:,} closed, {sz['mean']:,} on average (read and written every step)"
    )
    fp = r["floor_plan"]
    print(
        f"  floor: {fp['statements']} statements in {fp['transactions']} transactions per case "
        f"(per step {fp['per_step']}); parameters tied to the case: "
        + ", ".join(f"{k} ({v})" for k, v in fp["derived"].items())
    )
    if fp["sent_as_captured"]:
        print(
            "    varying between cases but sent as captured (computed by the engine): "
            + ", ".join(f":{k} ×{v}" for k, v in fp["sent_as_captured"].items())
        )
    if r["prefect"]:
        p = r["prefect"]
        print(
            f"  Prefect: API database {p['api_database']}; server start-up "
            f"{p['server_startup_s']:.1f} s (not timed); {p['flow_runs_completed']} flow runs "
            f"completed, {p['warm_up_cases']} warm-up cases untimed; while the others ran, "
            f"Prefect's processes used {100 * (p['cpu_share_beside_others'] or 0):.1f}% of a core"
        )
    print(f"  setup {r['setup_s']:.1f} s, measured part {r['run_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and sys.argv[1:] == ["--prefect-child"]:
        prefect_child()
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--cases",
        type=int,
        default=None,
        help=f"cases for redress, SpiffWorkflow and the floor each "
        f"(default {DEFAULT_CASES}; {FULL_CASES} with --full)",
    )
    ap.add_argument(
        "--prefect-cases",
        type=int,
        default=None,
        help=f"cases for Prefect (default {DEFAULT_PREFECT}; {FULL_PREFECT} with --full; "
        "0 skips Prefect)",
    )
    ap.add_argument(
        "--full", action="store_true", help=f"{FULL_CASES} cases, Prefect {FULL_PREFECT}"
    )
    ap.add_argument("--json-out", type=Path, default=None, help="also write the JSON line here")
    c.add_backend_args(ap, sqlite_switch=False)
    args = ap.parse_args(argv)
    n = args.cases or (FULL_CASES if args.full else DEFAULT_CASES)
    n_prefect = (
        args.prefect_cases
        if args.prefect_cases is not None
        else (FULL_PREFECT if args.full else DEFAULT_PREFECT)
    )
    if n < BLOCKS:
        ap.error(f"--cases must be at least {BLOCKS}")
    pg_url = None if args.no_pg else args.pg
    t_all = time.perf_counter()

    results: dict[str, Any] = {"sqlite": None, "postgresql": None}
    with c.sqlite_backend(args.sqlite_dir, "peers") as b:
        results["sqlite"] = run_backend(b.label, b.url, n, n_prefect, b.where, None)
    print_backend(results["sqlite"])

    if pg_url:
        with c.pg_backend(pg_url) as b:
            results["postgresql"] = run_backend(b.label, b.url, n, n_prefect, b.where, pg_url)
        print_backend(results["postgresql"])
    else:
        print(c.PG_SKIPPED)

    machine = c.machine_info(c.libpq_url(pg_url) if pg_url else None)
    versions = {}
    for dist in ("SpiffWorkflow", "prefect", "transitions"):
        with suppress(Exception):
            from importlib.metadata import version as dist_version

            versions[dist] = dist_version(dist)
    figures = {
        "cases": n,
        "prefect_cases": n_prefect,
        "steps": STEPS,
        "targets": {k: f"{way} {t:g}" for k, (way, t) in TARGETS.items()},
        "ratio_basis": "median per-case time",
        **results,
        "versions": versions,
        "machine": machine,
        "total_s": round(time.perf_counter() - t_all, 1),
    }
    print(f"\ntotal {figures['total_s']:.1f} s")
    c.emit_json(BENCH, figures)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(
            json.dumps(
                {"bench": BENCH, **figures}, ensure_ascii=False, separators=(",", ":"), default=str
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
