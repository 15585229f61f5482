"""Scale-out, once, for real: `prefect server start` on PostgreSQL (loopback), the flows deployed
by `redress deploy` with cron schedules, a `prefect worker` running them against redress's
PostgreSQL schema. Needs REDRESS_TEST_DATABASE_URL; takes about a minute."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import PG_SKIP, PG_URL

from engine.clock import FixedClock, SystemClock
from engine.db import Database, make_engine
from engine.demo import OBJECTION_INTAKE, add_staff
from engine.migrate import upgrade
from engine.service import Engine

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prefect_server(pg_schema: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    db_name = f"prefect_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f"CREATE DATABASE {db_name}")
    base = PG_URL.split("://", 1)[1].rsplit("/", 1)[0]
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{base}/{db_name}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "REDRESS_DATABASE_URL": pg_schema,
        "REDRESS_VAR_DIR": str(tmp_path),
    }
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(1)
        else:
            pytest.fail("prefect server did not start:\n" + (tmp_path / "server.log").read_text())
        yield env
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        admin.dispose()


def _run(env: dict[str, str], *args: str, timeout: int = 120) -> str:
    out = subprocess.run(
        args,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, f"{args}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_deployed_flows_run_on_a_worker(prefect_server: dict[str, str]) -> None:
    env = prefect_server
    db = Database(env["REDRESS_DATABASE_URL"])
    upgrade(db.engine)
    # Cases opened three weeks ago: their formal-check deadlines have long passed.
    past = FixedClock(SystemClock().now() - timedelta(days=21))
    engine = Engine(db, clock=past)
    staff = add_staff(engine)
    from states.identifiers import make_uscc

    case_ids = []
    for i in range(3):
        rec = engine.create_record(
            actor=staff.actors["office_credit_office"],
            subject_kind="enterprise",
            subject_name=f"公司{i}",
            subject_identifier=make_uscc(f"91310000MA1FLAB{i}0"),
            source_category="administrative_penalty",
            severity="serious",
            determining_unit="amr",
            decision_date=past.now().date(),
            published_from=past.now().date(),
        )
        case_ids.append(
            engine.open_case(
                procedure="objection",
                record_id=rec,
                actor=staff.actors["office_handler"],
                applicant={
                    "kind": "enterprise",
                    "name": f"公司{i}",
                    "identifier": make_uscc(f"91310000MA1FLAB{i}0"),
                },
                payload=OBJECTION_INTAKE,
            ).case_id
        )

    _run(env, str(BIN / "prefect"), "work-pool", "create", "redress-test", "--type", "process")
    out = _run(env, str(BIN / "redress"), "deploy", "--pool", "redress-test")
    assert "deployed 2 flows" in out
    with httpx.Client(base_url=env["PREFECT_API_URL"], timeout=10) as api:
        deployments = api.post("/deployments/filter", json={}).json()
        by_name = {d["name"]: d for d in deployments}
        assert set(by_name) == {"sweep-deadlines", "deliver-outbox"}
        for d in deployments:
            (schedule,) = d["schedules"]
            assert schedule["schedule"]["cron"] == "* * * * *"
        runs = []
        for name in ("sweep-deadlines", "deliver-outbox"):
            r = api.post(f"/deployments/{by_name[name]['id']}/create_flow_run", json={})
            assert r.status_code in (200, 201), r.text
            runs.append(r.json()["id"])
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "redress-test"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 180
            states: list[str] = []
            fired: list[int] = []
            sent = 0
            while time.monotonic() < deadline:
                states = [api.get(f"/flow_runs/{rid}").json()["state"]["type"] for rid in runs]
                if all(s in ("COMPLETED", "FAILED", "CRASHED") for s in states):
                    break
                time.sleep(2)
            # The cron schedules run sweeps too, and one may run beside ours: a case it holds is
            # skipped by ours (SKIP LOCKED) and fired by it, or by the next minute's sweep if the
            # worker is stopped mid-transaction. So the promise is checked as it is made: every
            # due timer fires, exactly once, while the worker keeps running.
            while states == ["COMPLETED", "COMPLETED"] and time.monotonic() < deadline + 120:
                with db.read() as conn:
                    fired = list(
                        conn.execute(
                            sa.text(
                                "SELECT case_id FROM case_events"
                                " WHERE trigger = 'deadline_expired' ORDER BY case_id"
                            )
                        ).scalars()
                    )
                    sent = conn.execute(
                        sa.text("SELECT count(*) FROM outbox WHERE status = 'sent'")
                    ).scalar_one()
                if len(fired) >= len(case_ids) and sent > 0:
                    break
                time.sleep(2)
        finally:
            worker.terminate()
            output = worker.communicate(timeout=30)[0]
    assert states == ["COMPLETED", "COMPLETED"], output[-4000:]
    assert fired == sorted(case_ids), output[-4000:]
    assert sent > 0, output[-4000:]
    db.dispose()
