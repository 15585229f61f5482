"""Faults under load, against real `redress serve` processes on PostgreSQL (`make test-faults`):

- the database goes away mid-load (a TCP proxy in front of PostgreSQL drops every connection
  and refuses new ones for a few seconds, as a restart does): requests during the outage
  answer 503 problem+json with Retry-After, never 500; the servers recover by themselves;
  every acknowledged advance is stored once;
- one of two API processes is killed with SIGKILL mid-load: the clients retry what got no
  answer on the other process with the same Idempotency-Key; nothing acknowledged is lost and
  nothing is applied twice.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import APPLICANT, PG_SKIP, PG_URL, World
from server_support import Server

from engine.demo import OBJECTION_INTAKE

pytestmark = pytest.mark.faults


class Proxy:
    """A TCP proxy to PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = int(self.listener.getsockname()[1])
        self.up = True
        self.closing = False
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                conn.close()  # the server is "down": the connection is refused at once
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            with self.lock:
                self.pairs.append((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.closing = True
        self.cut()
        self.listener.close()


def _via(url: str, port: int) -> str:
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/", 1)


@pytest.fixture
def pg_world(world: World, db_url: str) -> World:
    if not db_url.startswith("postgresql"):
        pytest.skip("the faults are PostgreSQL's (production)")
    if not PG_URL:
        pytest.skip(PG_SKIP)
    return world


def _cases(world: World, n: int) -> list[int]:
    office = world.actor("office_handler")
    return [
        world.engine.open_case(
            procedure="objection",
            record_id=world.record(),
            applicant=APPLICANT,
            actor=office,
            payload=OBJECTION_INTAKE,
        ).case_id
        for _ in range(n)
    ]


class Load:
    """Clients advancing cases (accept, each with its own Idempotency-Key) and retrying what
    got no final answer: a 503 after its Retry-After, a dropped connection on the next server.
    Every answer is kept."""

    def __init__(self, servers: list[Server], token: str, case_ids: list[int]) -> None:
        self.servers = servers
        self.token = token
        self.todo = list(case_ids)
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.acked: dict[int, dict[str, Any]] = {}
        self.dropped = 0

    def _next(self) -> int | None:
        with self.lock:
            return self.todo.pop() if self.todo else None

    def worker(self, index: int) -> None:
        client = httpx.Client(timeout=30)
        while (case_id := self._next()) is not None:
            attempt = 0
            while True:
                server = self.servers[(index + attempt) % len(self.servers)]
                attempt += 1
                if server.proc.poll() is not None:
                    continue  # a dead process: the load balancer sends it elsewhere
                try:
                    r = client.post(
                        f"{server.base}/cases/{case_id}/actions/accept",
                        headers={
                            "Authorization": f"Bearer {self.token}",
                            "If-Match": "1",
                            "Idempotency-Key": f"accept-{case_id}",
                        },
                        json={},
                    )
                except httpx.HTTPError:
                    with self.lock:
                        self.dropped += 1
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.statuses[r.status_code] += 1
                if r.status_code == 503:
                    ok = (
                        r.headers["content-type"].startswith("application/problem+json")
                        and r.headers.get("retry-after") == "5"
                    )
                    if not ok:
                        self.bad.append(f"503 without problem+json or Retry-After: {r.headers}")
                    time.sleep(0.2)  # shorter than Retry-After: the test has no time to lose
                    continue
                if r.status_code != 200:
                    self.bad.append(f"case {case_id}: {r.status_code} {r.text[:300]}")
                else:
                    with self.lock:
                        self.acked[case_id] = r.json()
                break
        client.close()

    def run(self, clients: int, during: Any) -> None:
        threads = [threading.Thread(target=self.worker, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        during()
        for t in threads:
            t.join(180)


def _accepts(world: World, case_ids: list[int]) -> Counter[int]:
    with world.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT case_id FROM case_events WHERE trigger = 'accept'")
        ).all()
    ids = set(case_ids)
    return Counter(int(r[0]) for r in rows if int(r[0]) in ids)


def _status_lookups(server: Server, case_no: str, code: str, stop: threading.Event) -> list[int]:
    seen: list[int] = []
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                r = client.get(f"{server.base}/status/{case_no}", headers={"X-Access-Code": code})
                seen.append(r.status_code)
            except httpx.HTTPError:
                seen.append(-1)
            time.sleep(0.02)
    return seen


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy(("127.0.0.1", 5432))
    yield p
    p.close()


def test_a_database_outage_mid_load_answers_503_and_loses_nothing(
    pg_world: World, db_url: str, tmp_path: Path, proxy: Proxy
) -> None:
    world = pg_world
    case_ids = _cases(world, 240)
    status_case = world.engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant=APPLICANT,
        actor=world.actor("office_handler"),
        payload=OBJECTION_INTAKE,
    )
    servers = [Server(_via(db_url, proxy.port), tmp_path) for _ in range(2)]
    try:
        for s in servers:
            s.wait()
        load = Load(servers, world.tokens["office_handler"], case_ids)
        stop = threading.Event()
        lookups: list[int] = []

        def look() -> None:
            lookups.extend(
                _status_lookups(
                    servers[0], status_case.case_no, status_case.access_code or "", stop
                )
            )

        looker = threading.Thread(target=look)
        looker.start()

        def outage() -> None:
            time.sleep(0.8)
            proxy.cut()
            time.sleep(4.0)
            proxy.restore()

        load.run(6, outage)
        stop.set()
        looker.join(30)
        assert not load.bad, (load.bad[:3], servers[0].output()[-4000:])
        assert load.statuses[500] == 0 and 500 not in lookups
        assert load.statuses[503] > 0, f"the outage was not seen: {load.statuses}"
        assert 503 in lookups and lookups[-1] == 200, Counter(lookups)
        # Every advance acknowledged, each stored once.
        assert set(load.acked) == set(case_ids)
        assert _accepts(world, case_ids) == Counter(dict.fromkeys(case_ids, 1))
        # Recovered by itself: the servers answer normally after the outage.
        for s in servers:
            assert httpx.get(f"http://127.0.0.1:{s.port}/healthz", timeout=10).status_code == 200
    finally:
        for s in servers:
            s.stop()


def test_kill_9_of_an_api_process_mid_load_loses_nothing_and_applies_nothing_twice(
    pg_world: World, db_url: str, tmp_path: Path
) -> None:
    world = pg_world
    case_ids = _cases(world, 300)
    servers = [Server(db_url, tmp_path) for _ in range(2)]
    try:
        for s in servers:
            s.wait()
        load = Load(servers, world.tokens["office_handler"], case_ids)

        def kill_one() -> None:
            deadline = time.monotonic() + 60
            while len(load.acked) < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
            servers[0].proc.kill()  # SIGKILL: no draining, answers in flight are lost

        load.run(8, kill_one)
        assert not load.bad, load.bad[:5]
        assert servers[0].proc.poll() is not None
        assert set(load.acked) == set(case_ids)
        assert _accepts(world, case_ids) == Counter(dict.fromkeys(case_ids, 1))
        replayed = sum(1 for a in load.acked.values() if a.get("replayed"))
        # What the killed process had committed without answering came back as a replay.
        assert replayed <= load.dropped
    finally:
        for s in servers:
            s.stop()
