"""Scale-out under load (`make test-faults`, PostgreSQL only): two `redress serve` processes and
two `prefect worker` processes on one PostgreSQL database, the flows deployed by `redress deploy`
to a real Prefect server, mail to a real SMTP server started here.

- Under a bounded load of advances, applications and status look-ups through both servers,
  sweeps on both workers fire 1,000 due timers: every acknowledged write is stored once, every
  due timer's every step fires once, every mail arrives once (compared with the outbox).
- `kill -9` of a worker and of its flow-run process inside a sweep's transaction, then a rerun:
  no timer lost, none fired twice. The same inside a delivery, between the SMTP server taking a
  mail and the commit that records it: nothing is lost, and exactly that one mail arrives twice,
  with the same Message-ID. Delivery is at least once (engine/outbox.py, engine/channels.py):
  a repeat is possible only for a send in flight when its deliverer dies, at most one per
  delivery run (each sends one message at a time), and only after the claim's lease (5 min).

The servers and workers run on the real clock. Overdue cases are opened through the engine with
a filing date (`filed_on`, the day the paper application arrived) a month back: their deadlines
are counted from that day and so are due now.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import PG_SKIP, PG_URL
from load_support import QUEUES, HoldingInbox, Prefect, Worker, smtp_server, workers
from server_support import Server

from engine.db import Database
from engine.demo import OBJECTION_INTAKE, Staff, add_staff
from engine.migrate import upgrade
from engine.outbox import Policy
from engine.service import Actor, Engine, Opened
from states.identifiers import make_uscc

pytestmark = [pytest.mark.faults]

DUE_TIMERS = 1000  # overdue objection cases, one due formal-check timer each
LOAD_CASES = 600  # cases the load advances twice (accept, then mark disputed)
APPLICATIONS = 150  # public filings during the load
LOOKUPS = 1500  # applicants' status look-ups during the load
KILL_TIMERS = 400  # overdue cases for the kill -9 test
# formal_check escalates three times (assignee, reviewer, head), each step due by now.
STEPS = {("deadline_expired", 0), ("deadline_escalated", 1), ("deadline_escalated", 2)}
# Staff who hear of the escalations by mail, so that every fired step sends a mail.
DUTY = (("duty_handler", "handler"), ("duty_reviewer", "reviewer"), ("duty_head", "head"))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prefect]:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    p = Prefect(PG_URL, tmp_path_factory.mktemp("prefect"))
    try:
        p.start()
        yield p
    finally:
        p.stop()


@dataclass
class Office:
    """redress's schema with staff, on the real clock (what the servers and workers use)."""

    url: str
    engine: Engine
    staff: Staff

    @property
    def handler(self) -> Actor:
        return self.staff.actors["office_handler"]

    def record(self, i: int) -> int:
        # Published two months ago: disputable, and its publication (12 months at most for a
        # general record) ends long after the test, so no record timer is due.
        published = self.engine.today() - timedelta(days=60)
        return self.engine.create_record(
            actor=self.staff.actors["office_credit_office"],
            subject_kind="enterprise",
            subject_name=f"负载测试企业{i}",
            subject_identifier=uscc(),
            source_category="administrative_penalty",
            severity="general",
            determining_unit="amr",
            decision_date=published,
            published_from=published,
        )

    def open_cases(self, n: int, filed_on: date | None = None) -> list[Opened]:
        """n objection cases, each on its own record, filed on `filed_on` (default today)."""

        def one(i: int) -> Opened:
            return self.engine.open_case(
                procedure="objection",
                record_id=self.record(i),
                applicant=applicant(f"case{uuid.uuid4().hex[:8]}@example.com"),
                actor=self.handler,
                payload=OBJECTION_INTAKE,
                filed_on=filed_on,
            )

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(n)))

    def records(self, n: int) -> list[int]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(self.record, range(n)))

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.db.read() as conn:
            return conn.execute(sa.text(query), params).scalar_one()

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.db.read() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params).all()]


def uscc() -> str:
    return make_uscc("91310000MA" + uuid.uuid4().hex[:7].upper())


def applicant(email: str) -> dict[str, Any]:
    return {"kind": "enterprise", "name": "负载测试企业", "identifier": uscc(), "email": email}


@pytest.fixture
def office(pg_schema: str) -> Iterator[Office]:
    db = Database(pg_schema, pool_size=20)
    upgrade(db.engine)
    engine = Engine(db)  # the real clock
    staff = add_staff(engine)
    for name, role in DUTY:
        engine.add_user(name, role, "office", f"{name}@office.example")
    try:
        yield Office(pg_schema, engine, staff)
    finally:
        db.dispose()


def worker_env(prefect: Prefect, office: Office, var: Path, smtp_port: int) -> dict[str, str]:
    return {
        **prefect.env,
        "REDRESS_DATABASE_URL": office.url,
        "REDRESS_VAR_DIR": str(var),
        "REDRESS_SMTP_HOST": "127.0.0.1",
        "REDRESS_SMTP_PORT": str(smtp_port),
        "REDRESS_SMTP_FROM": "redress@office.example",
    }


@pytest.fixture
def servers(office: Office, tmp_path: Path) -> Iterator[list[Server]]:
    started = [Server(office.url, tmp_path / "var") for _ in range(2)]
    try:
        for s in started:
            s.wait()
        yield started
    finally:
        for s in started:
            s.stop()


# -- the load -----------------------------------------------------------------------------------


class Traffic:
    """A bounded load through both servers, each request retried (same Idempotency-Key) on the
    other server when it got no answer. Every answer is kept."""

    def __init__(self, servers: list[Server], token: str) -> None:
        self.servers = servers
        self.token = token
        self.lock = threading.Lock()
        self.bad: list[str] = []
        self.advanced: Counter[tuple[int, str]] = Counter()  # acknowledged (case, trigger)
        self.filed: dict[str, dict[str, Any]] = {}  # idempotency key → the 201's body
        self.lookups: Counter[int] = Counter()
        self.dropped = 0
        self.advance_seconds = 0.0
        self.latencies: list[float] = []  # per acknowledged advance, retries included

    def _send(self, client: httpx.Client, i: int, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(6):
            server = self.servers[(i + attempt) % len(self.servers)]
            try:
                return client.request(method, server.base + path, **kw)
            except httpx.HTTPError:
                with self.lock:
                    self.dropped += 1
                time.sleep(0.05)
        return None

    def advance_cases(self, client: httpx.Client, i: int, cases: list[Opened]) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        for case in cases:
            version = 1
            for trigger in ("accept", "mark_disputed"):
                headers = {
                    **auth,
                    "If-Match": f'"{version}"',
                    "Idempotency-Key": f"{trigger}-{case.case_id}",
                }
                sent = time.monotonic()
                r = self._send(
                    client,
                    i,
                    "POST",
                    f"/cases/{case.case_id}/actions/{trigger}",
                    headers=headers,
                    json={},
                )
                took = time.monotonic() - sent
                if r is None or r.status_code != 200:
                    self.bad.append(
                        f"{trigger} {case.case_id}: {r and r.status_code} {r and r.text}"
                    )
                    break
                version = int(r.json()["version"])
                with self.lock:
                    self.advanced[(case.case_id, trigger)] += 1
                    self.latencies.append(took)

    def file(self, client: httpx.Client, i: int, record_ids: list[int]) -> None:
        for rid in record_ids:
            key = f"app-{rid}"
            body = {
                "procedure": "objection",
                "record_id": rid,
                "applicant": applicant(f"app{rid}@example.com"),
                "grounds": "该处罚决定已被依法撤销",
                "commitment_signed": True,
            }
            r = self._send(
                client, i, "POST", "/applications", headers={"Idempotency-Key": key}, json=body
            )
            if r is None or r.status_code != 201:
                self.bad.append(f"application {rid}: {r and r.status_code} {r and r.text}")
                continue
            with self.lock:
                self.filed[key] = r.json()

    def look(self, client: httpx.Client, i: int, targets: list[tuple[str, str]]) -> None:
        for case_no, code in targets:
            r = self._send(client, i, "GET", f"/status/{case_no}", headers={"X-Access-Code": code})
            with self.lock:
                self.lookups[r.status_code if r is not None else -1] += 1

    def run(
        self, cases: list[Opened], record_ids: list[int], targets: list[tuple[str, str]]
    ) -> None:
        jobs: list[tuple[Callable[..., None], list[Any]]] = []
        advancers, filers, lookers = 8, 2, 2
        jobs += [(self.advance_cases, cases[k::advancers]) for k in range(advancers)]
        jobs += [(self.file, record_ids[k::filers]) for k in range(filers)]
        jobs += [(self.look, targets[k::lookers]) for k in range(lookers)]
        ends: dict[int, float] = {}

        def drive(i: int, job: Callable[..., None], part: list[Any]) -> None:
            with httpx.Client(timeout=30) as client:
                job(client, i, part)
            ends[i] = time.monotonic()

        started = time.monotonic()
        threads = [
            threading.Thread(target=drive, args=(i, job, part))
            for i, (job, part) in enumerate(jobs)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.advance_seconds = max(ends[i] for i in range(advancers)) - started


# -- what the database says -----------------------------------------------------------------------


def timer_steps(office: Office, case_ids: list[int]) -> Counter[tuple[int, str, int]]:
    """Every step the sweeps recorded on these cases: (case, event, escalation step)."""
    ids = set(case_ids)
    found: Counter[tuple[int, str, int]] = Counter()
    for case_id, trigger, detail in office.rows(
        "SELECT case_id, trigger, detail FROM case_events WHERE actor_role = 'system'"
    ):
        if case_id in ids:
            found[(case_id, trigger, int(json.loads(detail).get("step", -1)))] += 1
    return found


def assert_every_step_fired_once(office: Office, case_ids: list[int]) -> int:
    expected = Counter({(c, ev, step): 1 for c in case_ids for ev, step in STEPS})
    found = timer_steps(office, case_ids)
    twice = {k: n for k, n in found.items() if n > 1}
    missing = set(expected) - set(found)
    assert not twice, f"fired twice: {list(twice.items())[:5]}"
    assert not missing, f"{len(missing)} steps never fired, e.g. {sorted(missing)[:5]}"
    assert found == expected
    # Each timer row says nothing is left to do, and no timer anywhere is still due.
    left = office.rows(
        "SELECT case_id, next_action, next_at FROM timers WHERE name = 'formal_check'"
        " AND case_id = ANY(:ids)",
        ids=case_ids,
    )
    assert len(left) == len(case_ids) and all(a is None and at is None for _, a, at in left)
    assert office.scalar("SELECT count(*) FROM timers WHERE next_at <= now()") == 0
    return sum(found.values())


def assert_every_mail_once(
    office: Office, inbox: HoldingInbox, twice: frozenset[str] = frozenset()
) -> int:
    """Every outbox row sent, with one successful attempt recorded; every mail row arrived at
    the SMTP server once (those in `twice` exactly twice); nothing arrived that has no row."""
    pending = office.rows("SELECT id, status, last_error FROM outbox WHERE status != 'sent'")
    assert not pending, pending[:5]
    attempts = office.rows(
        "SELECT o.id, count(a.id) FILTER (WHERE a.ok), count(a.id) FILTER (WHERE NOT a.ok)"
        " FROM outbox o LEFT JOIN outbox_attempts a ON a.outbox_id = o.id GROUP BY o.id"
    )
    failures = office.rows(
        "SELECT o.id, o.kind, o.channel, a.answer FROM outbox_attempts a"
        " JOIN outbox o ON o.id = a.outbox_id WHERE NOT a.ok ORDER BY a.id"
    )
    assert all(ok == 1 and failed == 0 for _, ok, failed in attempts), (
        [a for a in attempts if a[1:] != (1, 0)][:5],
        len(failures),
        Counter((k, c, ans[:80]) for _, k, c, ans in failures),
    )
    keys = {
        str(k) for (k,) in office.rows("SELECT idempotency_key FROM outbox WHERE channel = 'email'")
    }
    arrived = Counter(str(m["X-Redress-Key"]) for m in inbox.messages)
    expected = Counter({k: 2 if k in twice else 1 for k in keys})
    assert arrived == expected, (
        f"missing {sorted(set(expected) - set(arrived))[:5]}, "
        f"unexpected {[(k, n) for k, n in arrived.items() if expected.get(k) != n][:5]}"
    )
    return len(keys)


class Sampler:
    """The sweeps' progress on the wall clock: the count of steps recorded, every 50 ms (the
    events carry the sweep's `now`, fixed when it starts, so they cannot time it)."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), steps_fired(self.office)))
            time.sleep(0.05)

    def end(self) -> None:
        self.stop.set()
        self.thread.join(10)

    def window(self, total: int) -> float:
        """Seconds from the last sample with nothing fired to the first with all `total`."""
        before = max(t for t, n in self.samples if n == 0)
        done = min(t for t, n in self.samples if n >= total)
        return done - before


def deliver_everything(
    prefect: Prefect, office: Office, queues: tuple[str, ...] = QUEUES, **params: Any
) -> int:
    """Delivery runs (one per queue at once) until nothing is pending: a platform push waits
    for the earlier one of its record, so a round may leave some for the next. Returns the
    rounds it took."""
    for rounds in range(6):
        if office.scalar("SELECT count(*) FROM outbox WHERE status = 'pending'") == 0:
            return rounds
        runs = [prefect.start_run("deliver-outbox", q, limit=20000, **params) for q in queues]
        assert prefect.wait(runs) == ["COMPLETED"] * len(runs)
    left = office.scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
    assert left == 0, f"{left} messages still pending after 6 delivery rounds"
    return 6


def steps_fired(office: Office) -> int:
    return int(office.scalar("SELECT count(*) FROM case_events WHERE actor_role = 'system'"))


def blocked_by(office: Office, backend: int, query_like: str = "%") -> list[int]:
    """The PostgreSQL backends waiting for a lock `backend` holds, running a query like this."""
    return [
        int(pid)
        for (pid,) in office.rows(
            "SELECT pid FROM pg_stat_activity WHERE :b = ANY(pg_blocking_pids(pid))"
            " AND query LIKE :q",
            b=backend,
            q=query_like,
        )
    ]


def wait_until(what: str, done: Callable[[], object], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Held:
    """A transaction of the test's own on redress's database, kept open to make others wait."""

    def __init__(self, office: Office) -> None:
        self.conn = office.engine.db.engine.connect()
        self.tx = self.conn.begin()
        self.backend = int(self.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def execute(self, query: str, **params: Any) -> None:
        self.conn.execute(sa.text(query), params)

    def end(self) -> None:
        if self.tx.is_active:
            self.tx.rollback()
        self.conn.close()


@contextmanager
def held(office: Office) -> Iterator[Held]:
    h = Held(office)
    try:
        yield h
    finally:
        h.end()


# -- the tests ------------------------------------------------------------------------------------


def test_two_servers_two_workers_under_load_store_fire_and_send_everything_once(
    prefect: Prefect, office: Office, servers: list[Server], tmp_path: Path
) -> None:
    t0 = time.monotonic()
    month_ago = office.engine.today() - timedelta(days=30)
    overdue = office.open_cases(DUE_TIMERS, filed_on=month_ago)
    load_cases = office.open_cases(LOAD_CASES)
    application_records = office.records(APPLICATIONS)
    setup = time.monotonic() - t0
    # Exactly the overdue cases' timers are due, and nothing else.
    assert office.scalar("SELECT count(*) FROM timers WHERE next_at <= now()") == DUE_TIMERS
    targets = [(c.case_no, c.access_code or "") for c in load_cases]
    targets = (targets * (LOOKUPS // len(targets) + 1))[:LOOKUPS]
    traffic = Traffic(servers, office.staff.tokens["office_handler"])

    with smtp_server() as (smtp, inbox):
        env = worker_env(prefect, office, tmp_path / "var", smtp.port)
        with workers(env, prefect.pool, tmp_path) as (a, b), held(office) as gate:
            # A start gate: the timers table locked, so that each worker's sweep waits at its
            # first query until both are there; then both sweep side by side, and the load
            # starts with them.
            gate.execute("LOCK TABLE timers IN ACCESS EXCLUSIVE MODE")
            sweeps = [prefect.start_run("sweep-deadlines", q) for q in QUEUES]
            deliveries = [prefect.start_run("deliver-outbox", q, limit=20000) for q in QUEUES]
            wait_until(
                "both sweeps at the gate",
                lambda: (
                    len(blocked_by(office, gate.backend, "%FROM timers WHERE next_at <=%")) == 2
                ),
            )
            sampler = Sampler(office)
            gate.end()
            load_start = time.monotonic()
            traffic.run(load_cases, application_records, targets)
            load_seconds = time.monotonic() - load_start
            fired_during_load = steps_fired(office)
            states = prefect.wait(sweeps + deliveries, timeout=120)
            sampler.end()
            assert states == ["COMPLETED"] * 4, (states, a.log()[-3000:], b.log()[-3000:])
            assert a.ran(sweeps[0]) and b.ran(sweeps[1]), "each worker ran its own sweep"
            rounds = deliver_everything(prefect, office)
        results = [prefect.result(r) for r in sweeps]

        # The load: every acknowledged write stored once, every look-up answered.
        assert not traffic.bad, traffic.bad[:5]
        ids = {c.case_id for c in load_cases}
        stored = Counter(
            (int(c), str(t))
            for c, t in office.rows(
                "SELECT case_id, trigger FROM case_events"
                " WHERE trigger IN ('accept', 'mark_disputed')"
            )
            if int(c) in ids
        )
        expected = Counter({(c, t): 1 for c in ids for t in ("accept", "mark_disputed")})
        assert traffic.advanced == expected and stored == expected
        filed = {body["case_no"] for body in traffic.filed.values()}
        assert len(traffic.filed) == APPLICATIONS and len(filed) == APPLICATIONS
        stored_filings = office.rows(
            "SELECT case_no FROM cases WHERE idempotency_key LIKE 'app-%' ORDER BY case_no"
        )
        assert [no for (no,) in stored_filings] == sorted(filed)
        assert traffic.lookups == Counter({200: LOOKUPS})

        # The sweeps: every step of every due timer fired once; both sweeps fired, and their
        # own counts add up to exactly what the cases record.
        fired = assert_every_step_fired_once(office, [c.case_id for c in overdue])
        assert fired == DUE_TIMERS * len(STEPS)
        assert all(r["fired"] > 0 and not r["errors"] for r in results), results
        assert sum(r["fired"] for r in results) == fired
        assert fired_during_load > 0, "the load ended before any sweep fired"
        # Every mail once; every event chain intact after the concurrent appends.
        mails = assert_every_mail_once(office, inbox)
        assert office.engine.verify_audit() == []

    span = sampler.window(DUE_TIMERS * len(STEPS))
    advances = sum(traffic.advanced.values())
    latency = sorted(traffic.latencies)
    p50, p99 = (latency[len(latency) * q // 100] * 1000 for q in (50, 99))
    print(
        f"\n[scale-load] setup {setup:.1f} s: {DUE_TIMERS} overdue cases, {LOAD_CASES} to advance"
        f"\n[scale-load] load through 2 servers, {load_seconds:.1f} s: {advances} advances in"
        f" {traffic.advance_seconds:.1f} s ({advances / traffic.advance_seconds:.0f}/s, p50"
        f" {p50:.0f} ms, p99 {p99:.0f} ms),"
        f" {APPLICATIONS} applications, {LOOKUPS} status look-ups;"
        f" {traffic.dropped} dropped connections"
        f"\n[scale-load] sweeps on 2 workers: {fired} steps of {DUE_TIMERS} timers in {span:.1f} s"
        f" = {fired / span:.0f} steps/s ({DUE_TIMERS / span:.0f} timers/s);"
        f" {fired_during_load} during the load; per run fired {[r['fired'] for r in results]},"
        f" skipped {[r['skipped'] for r in results]}"
        f"\n[scale-load] {mails} mails, each received once; delivery rounds after the sweeps:"
        f" {rounds}"
    )


def test_kill_9_of_a_worker_mid_sweep_and_mid_delivery_loses_nothing(
    prefect: Prefect, office: Office, tmp_path: Path
) -> None:
    month_ago = office.engine.today() - timedelta(days=30)
    overdue = office.open_cases(KILL_TIMERS, filed_on=month_ago)
    case_ids = [c.case_id for c in overdue]
    steps = KILL_TIMERS * len(STEPS)
    # A timer halfway through the sweep: every timer's first step fires before any second one
    # (the sweep goes by next_at), so this one's second step comes after about half the work.
    victim = overdue[KILL_TIMERS // 2].case_id
    timer_id = office.scalar(
        "SELECT id FROM timers WHERE case_id = :c AND name = 'formal_check'", c=victim
    )
    victim_key = f"timer:{timer_id}:escalate:1:duty_reviewer@office.example"

    with smtp_server() as (smtp, inbox):
        env = worker_env(prefect, office, tmp_path / "var", smtp.port)
        with workers(env, prefect.pool, tmp_path) as started:
            a, b = started

            # 1. Inside a sweep's transaction. The test's own uncommitted outbox row with the key
            # of the victim's second step makes the sweep wait at that step's insert, after it
            # locked the case, moved the timer and wrote the event, none of it committed. (The
            # row names no case: a foreign key would lock the case row, and the sweep would
            # pass the case by instead.)
            with held(office) as hold:
                hold.execute(
                    "INSERT INTO outbox (kind, name, recipient, channel, payload,"
                    " idempotency_key, status, attempts, next_attempt_at, created_at)"
                    " VALUES ('staff', 'hold', 'test', 'log', '{}', :k, 'pending', 0,"
                    " now(), now())",
                    k=victim_key,
                )
                killed_sweep = prefect.start_run("sweep-deadlines", "a")
                wait_until(
                    "the sweep to reach the victim", lambda: blocked_by(office, hold.backend)
                )
                (sweeper,) = blocked_by(office, hold.backend)
                before_kill = steps_fired(office)
                flow_processes = a.kill9()
            # The test's row is gone (rolled back); the dead sweeper's backend, woken, finds its
            # client gone and rolls back too: nothing it had not committed remains.
            wait_until(
                "the killed sweeper's transaction to end",
                lambda: (
                    office.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=sweeper)
                    == 0
                ),
            )
            assert flow_processes, "the worker had no flow-run process to kill"
            assert 0 < before_kill < steps and steps_fired(office) == before_kill
            assert (victim, "deadline_escalated", 1) not in timer_steps(office, [victim])
            assert max(timer_steps(office, case_ids).values()) == 1
            assert prefect.state(killed_sweep) != "COMPLETED"

            rerun = prefect.start_run("sweep-deadlines", "b")
            assert prefect.wait([rerun]) == ["COMPLETED"], b.log()[-3000:]
            assert b.ran(rerun)
            assert assert_every_step_fired_once(office, case_ids) == steps
            again = prefect.result(rerun)
            # The rerun fired exactly what the killed sweep had not committed.
            assert again["fired"] == steps - before_kill and not again["errors"]

            # 2. Inside a delivery, after the SMTP server took a mail and before the deliverer
            # got its answer (so before the commit that records it).
            hold_at = 100
            inbox.hold_at = hold_at
            killed_delivery = prefect.start_run("deliver-outbox", "b", limit=20000)
            wait_until("the held mail", inbox.held.is_set)
            in_flight = str(inbox.messages[hold_at - 1]["X-Redress-Key"])
            flow_processes = b.kill9()
            inbox.release.set()
            assert flow_processes, "the worker had no flow-run process to kill"
            assert prefect.state(killed_delivery) != "COMPLETED"
            arrived = Counter(str(m["X-Redress-Key"]) for m in inbox.messages)
            assert len(inbox.messages) == hold_at and max(arrived.values()) == 1
            sent = {
                str(k)
                for (k,) in office.rows(
                    "SELECT idempotency_key FROM outbox WHERE status = 'sent' AND channel = 'email'"
                )
            }
            # Every mail that arrived is recorded as sent, but the one in flight: that one is
            # still pending, leased to the dead deliverer.
            assert set(arrived) - sent == {in_flight}
            leased = office.rows(
                "SELECT idempotency_key, attempts FROM outbox"
                " WHERE status = 'pending' AND next_attempt_at > now()"
            )
            assert leased == [(in_flight, 0)]

            # A worker restarted on the queue; the next deliveries run after the lease (5 min)
            # has run out, which the flow's `now` stands for here.
            restarted = Worker(env, prefect.pool, "b", "worker-b2", tmp_path)
            started.append(restarted)
            restarted.wait_started()
            later = (office.engine.now() + Policy().lease + timedelta(minutes=1)).isoformat()
            deliver_everything(prefect, office, queues=("b",), now=later)

        # Nothing lost, and exactly the mail in flight at the kill arrived twice, with the
        # same Message-ID (a receiver can tell it is the same message).
        mails = assert_every_mail_once(office, inbox, twice=frozenset({in_flight}))
        copies = [m for m in inbox.messages if m["X-Redress-Key"] == in_flight]
        assert len({m["Message-ID"] for m in copies}) == 1
        assert office.engine.verify_audit() == []

    print(
        f"\n[scale-load] kill -9 mid-sweep: {before_kill} of {steps} steps committed before the"
        f" kill, {again['fired']} fired by the rerun, each once"
        f"\n[scale-load] kill -9 mid-delivery: {mails} mails, all arrived; 1 arrived twice"
        f" (the one in flight: taken by the SMTP server, not yet recorded)"
    )
