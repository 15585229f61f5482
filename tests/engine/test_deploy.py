"""Deploying procedure versions through the engine (SQLite and PostgreSQL): stored once and
never changed, refused with every problem located, for administrators only; roles the
installation declares."""

from __future__ import annotations

import pytest
import yaml
from conftest import World, build_world
from helpers import builtin_document

from engine.db import Database
from engine.service import SYSTEM, Engine
from engine.settings import get_settings
from states.errors import Conflict, Forbidden, InvalidDefinition


def text(version: int, verify: str = "4 working days", **changes: object) -> str:
    doc = builtin_document("objection", 1)
    doc.update(version=version, **changes)
    next(t for t in doc["timers"] if t["name"] == "verify")["period"] = verify
    return yaml.safe_dump(doc, allow_unicode=True)


def test_a_version_is_stored_once_and_never_changes(world: World) -> None:
    admin = world.actor("office_admin")
    first = world.engine.deploy_procedure(text(2), admin)
    assert first.created and first.stored.deployed_by == "office_admin"
    again = world.engine.deploy_procedure(text(2), admin)
    assert not again.created and again.stored.id == first.stored.id
    with pytest.raises(Conflict) as err:
        world.engine.deploy_procedure(text(2, "3 working days"), admin)
    assert "never changes" in err.value.message and "new version" in err.value.message
    # The same content for another jurisdiction is another version.
    other = world.engine.deploy_procedure(text(2), admin, jurisdiction="zhejiang")
    assert other.created and other.stored.jurisdiction == "zhejiang"
    assert other.stored.sha256 != first.stored.sha256  # the jurisdiction is in the document


def test_refusals_say_what_and_where_and_store_nothing(world: World) -> None:
    before = len(world.engine.procedures.stored())
    with pytest.raises(Forbidden):
        world.engine.deploy_procedure(text(2), world.actor("office_head"))
    bad = text(2, "five days").replace("dest: deemed_withdrawn", "dest: deemd", 1)
    with pytest.raises(InvalidDefinition) as err:
        world.engine.deploy_procedure(bad, SYSTEM, source="edit.yaml")
    where = {p.where: p for p in err.value.problems}
    assert any(w.endswith(".period") for w in where) and any(w.endswith(".dest") for w in where)
    assert all(p.line and p.column for p in err.value.problems)
    assert len(world.engine.procedures.stored()) == before


def test_roles_the_installation_declares(
    database: Database, clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = yaml.safe_load(text(2))
    next(t for t in doc["triggers"] if t["name"] == "deem_withdrawn")["roles"].append("inspector")
    lead = yaml.safe_dump(doc, allow_unicode=True)
    plain = build_world(Engine(database, clock=clock), clock)  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition) as err:
        plain.engine.deploy_procedure(lead, SYSTEM)
    assert "inspector" in err.value.problems[0].en
    monkeypatch.setenv(
        "REDRESS_EXTRA_ROLES", '["lead_department", "task_group", "leading_group", "inspector"]'
    )
    get_settings.cache_clear()
    try:
        engine = Engine(database, clock=clock)  # type: ignore[arg-type]
        assert engine.deploy_procedure(lead, SYSTEM).created
        uid, _ = engine.add_user("insp_zhang", "inspector", "office")
        assert uid > 0
    finally:
        get_settings.cache_clear()
