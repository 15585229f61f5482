"""Shared fixtures: a migrated database per test on SQLite and, when configured, PostgreSQL.

PostgreSQL tests need REDRESS_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test);
each test gets its own schema, dropped afterwards. Without the variable those tests skip.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.clock import FixedClock
from engine.db import Database, make_engine
from engine.demo import Staff, add_staff
from engine.migrate import upgrade
from engine.service import Actor, Engine
from states.identifiers import make_resident_id, make_uscc

# Browser fixtures (site, browser, page) for tests/browser; they skip without Chromium.
pytest_plugins = ["browser_support"]

# A strong key of the tests' own (the server refuses the development key outside dev mode);
# subprocesses (the CLI, Prefect workers) inherit it.
os.environ.setdefault("REDRESS_SECRET_KEY", "test-secret-key-" + "k" * 40)
# The test clock stands in April 2026 while server processes started by tests run on the real
# clock: tokens made by the fixtures last long enough for both (expiry has its own tests).
os.environ.setdefault("REDRESS_TOKEN_DAYS", "3650")

# Prefect keeps its state in a throwaway home for the test run (set before it is imported).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="redress-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_URL = os.environ.get("REDRESS_TEST_DATABASE_URL", "")
PG_SKIP = (
    "PostgreSQL tests need REDRESS_TEST_DATABASE_URL, "
    "e.g. REDRESS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test make test"
)


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. at('2026-04-07 09:00')."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'redress.db'}"
    url: str = request.getfixturevalue("pg_schema")
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url, pool_size=20)
    upgrade(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FixedClock:
    # Tuesday 7 April 2026, 09:00 in Shanghai: an ordinary working day under Order 36.
    return FixedClock(at("2026-04-07 09:00"))


@dataclass
class World:
    """A small office: a credit office, two determining units, staff of every role."""

    engine: Engine
    clock: FixedClock
    staff: Staff

    @property
    def actors(self) -> dict[str, Actor]:
        return self.staff.actors

    @property
    def tokens(self) -> dict[str, str]:
        return self.staff.tokens

    def actor(self, key: str) -> Actor:
        return self.actors[key]

    def record(
        self,
        severity: str = "general",
        published_from: date = date(2025, 6, 1),
        unit: str = "amr",
        kind: str = "enterprise",
    ) -> int:
        if kind in ("enterprise", "government"):
            ident = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
        else:
            ident = make_resident_id("31010419900307" + str(uuid.uuid4().int)[:3])
        return self.engine.create_record(
            actor=self.actors["office_credit_office"],
            subject_kind=kind,
            subject_name="上海示例贸易有限公司",
            subject_identifier=ident,
            source_category="administrative_penalty",
            severity=severity,
            determining_unit=unit,
            decision_date=published_from,
            published_from=published_from,
            content={"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
        )


APPLICANT = {
    "kind": "enterprise",
    "name": "上海示例贸易有限公司",
    "identifier": make_uscc("91310000MA1FL8XX1"),
    "email": "legal@example.com",
}


def build_world(engine: Engine, clock: FixedClock) -> World:
    return World(engine, clock, add_staff(engine))


@pytest.fixture
def world(database: Database, clock: FixedClock) -> World:
    return build_world(Engine(database, clock=clock), clock)


@pytest.fixture
def sqlite_world(tmp_path: Path, clock: FixedClock) -> Iterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}", pool_size=20)
    upgrade(db.engine)
    yield build_world(Engine(db, clock=clock), clock)
    db.dispose()


def count(engine: Engine, table: str) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def snapshot(engine: Engine) -> dict[str, int]:
    tables = ("cases", "case_events", "timers", "outbox", "record_versions", "credit_records")
    return {name: count(engine, name) for name in tables}
