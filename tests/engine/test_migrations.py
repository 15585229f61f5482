"""Alembic migrations: head matches the schema the code declares; down and up again works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import World
from helpers import drive, open_objection, open_repair

from engine.db import Database
from engine.migrate import current, downgrade, head, upgrade
from engine.schema import metadata
from engine.service import SYSTEM, Engine


def test_head_matches_declared_schema(database: Database) -> None:
    assert current(database.engine) == head()
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), metadata
        )
    assert diff == []


def test_downgrade_to_nothing_and_up_again(database: Database) -> None:
    downgrade(database.engine, "base")
    assert current(database.engine) is None
    upgrade(database.engine)
    assert current(database.engine) == head()


def test_0007_upgrades_a_database_with_cases(world: World) -> None:
    """An installation of session 10 (0006) with cases, events, timers and letters: 0007
    rebuilds `cases` (which everything references), points each case at the built-in
    definition it ran, and every chain still verifies."""
    opened = [open_objection(world) for _ in range(2)]
    drive(world, opened[0].case_id, "objection", ["accept", "mark_disputed"])
    repair = open_repair(world)
    db = world.engine.db
    downgrade(db.engine, "0006")
    assert current(db.engine) == "0006"
    upgrade(db.engine)
    engine = Engine(db, clock=world.clock)  # definition ids are new: a fresh engine
    assert engine.verify_audit() == []
    for case, (name, version) in (
        (opened[0], ("objection", 1)),
        (opened[1], ("objection", 1)),
        (repair, ("repair", 2)),
    ):
        view = engine.case_view(case.case_id, SYSTEM)
        proc = engine.procedures.by_id(view["definition_id"])
        assert (proc.name, proc.version, proc.spec.jurisdiction) == (name, version, "default")
    assert engine.case_view(opened[0].case_id, SYSTEM)["state"] == "verifying"
    drive(World(engine, world.clock, world.staff), opened[0].case_id, "objection", ["forward"])
