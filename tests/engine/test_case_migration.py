"""Migrating running cases between deployed versions: a dry-run plan, timers re-evaluated under
the new version (due days checked before and after), a refused plan, and a crash halfway
followed by a rerun that migrates each case exactly once with its hash chain intact."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import yaml
from conftest import World, snapshot
from helpers import builtin_document, drive, open_objection

from engine.migration import Migrations
from engine.service import SYSTEM
from states.errors import Conflict


def deploy(w: World, data: dict[str, Any]) -> None:
    w.engine.deploy_procedure(yaml.safe_dump(data, allow_unicode=True), SYSTEM)


def version_2() -> dict[str, Any]:
    """What an office changes: verification 5 → 3 working days, no separate forwarding
    deadline, and a new one-day deadline for the first look at an application."""
    v2 = builtin_document("objection", 1)
    v2.update(version=2, effective_from="2026-04-01")
    timers = {t["name"]: t for t in v2["timers"]}
    timers["verify"]["period"] = "3 working days"
    v2["timers"] = [t for t in v2["timers"] if t["name"] != "forward_due"]
    for s in v2["states"]:
        for key in ("starts", "stops", "pauses"):
            if key in s:
                s[key] = [n for n in s[key] if n != "forward_due"]
    v2["timers"].append(
        {
            "name": "first_look",
            "label": {"zh": "初步审查期限", "en": "first look"},
            "period": "1 working day",
            "basis": "(default) 本办内部要求：1个工作日内初步审查",
            "reminder_before": None,
            "escalation": [{"notify": "assignee", "after": "0 working days"}],
        }
    )
    next(s for s in v2["states"] if s["name"] == "submitted")["starts"].append("first_look")
    return v2


def timers(w: World, case_id: int) -> dict[str, dict[str, Any]]:
    return {d["timer"]: d for d in w.engine.case_view(case_id, SYSTEM)["deadlines"]}


def migrated_events(w: World, case_id: int) -> list[dict[str, Any]]:
    return [e for e in w.engine.events(case_id, SYSTEM) if e["trigger"] == "migrated"]


@pytest.fixture
def cases(world: World) -> dict[str, int]:
    """Opened Tue 7 April 2026 under version 1, before version 2 exists."""
    out = {}
    out["submitted"] = open_objection(world).case_id
    for name in ("verifying", "verifying_2"):
        cid = open_objection(world).case_id
        drive(world, cid, "objection", ["accept", "mark_disputed"])
        out[name] = cid
    cid = open_objection(world).case_id
    drive(world, cid, "objection", ["accept", "mark_disputed", "forward"])
    out["forwarded"] = cid
    deploy(world, version_2())
    return out


def test_dry_run_plan_changes_nothing(world: World, cases: dict[str, int]) -> None:
    before = snapshot(world.engine)
    plan = Migrations(world.engine).plan("objection", "default", 1, 2)
    assert plan.ok and len(plan.case_ids) == 4
    assert plan.states == {
        "submitted": ("submitted", 1),
        "verifying": ("verifying", 2),
        "forwarded": ("forwarded", 1),
    }
    by = {tp.name: tp for tp in plan.timers}
    assert (by["verify"].change, by["verify"].old_period, by["verify"].new_period) == (
        "recomputed",
        "5 working days",
        "3 working days",
    )
    assert by["verify"].cases == 3
    assert by["forward_due"].change == "stopped" and by["forward_due"].cases == 2
    assert by["formal_check"].change == "kept"
    assert by["first_look"].change == "started" and by["first_look"].cases == 1
    assert snapshot(world.engine) == before


def test_migration_recomputes_each_deadline(world: World, cases: dict[str, int]) -> None:
    cid = cases["verifying"]
    # Version 1: 5 working days from Tue 7 April → Tue 14 April.
    assert timers(world, cid)["verify"]["due_day"] == date(2026, 4, 14)
    paused_before = timers(world, cases["forwarded"])["verify"]["remaining"]

    result = Migrations(world.engine).run(
        Migrations(world.engine).plan("objection", "default", 1, 2), SYSTEM
    )
    assert (result.migrated, result.skipped) == (4, 0)

    # Version 2: 3 working days from the same anchor → Fri 10 April.
    assert timers(world, cid)["verify"]["due_day"] == date(2026, 4, 10)
    assert "forward_due" not in {
        n for n, d in timers(world, cid).items() if d["status"] in ("active", "paused")
    }
    # Paused while the unit verifies: two working days fewer left.
    assert timers(world, cases["forwarded"])["verify"]["remaining"] == paused_before - 2
    # A deadline the new version starts in the case's state, from the day it entered it.
    assert timers(world, cases["submitted"])["first_look"]["due_day"] == date(2026, 4, 8)

    [event] = migrated_events(world, cid)
    detail = event["detail"]
    assert (detail["from"]["version"], detail["to"]["version"]) == (1, 2)
    verify = next(d for d in detail["deadlines"] if d["timer"] == "verify")
    assert (verify["old_due"], verify["new_due"]) == ("2026-04-14", "2026-04-10")
    view = world.engine.case_view(cid, SYSTEM)
    assert view["definition_version"] == 2
    assert world.engine.verify_audit() == []
    # The case goes on under version 2.
    drive(world, cid, "objection", ["propose_decision"])


def refused_version() -> dict[str, Any]:
    """Version 3 renames `verifying`: cases there have no counterpart without a mapping."""
    text = yaml.safe_dump(version_2(), allow_unicode=True)
    data: dict[str, Any] = yaml.safe_load(re.sub(r"\bverifying\b", "checking", text))
    data.update(version=3)
    return data


def test_a_state_without_counterpart_refuses_the_whole_migration(
    world: World, cases: dict[str, int]
) -> None:
    deploy(world, refused_version())
    migrations = Migrations(world.engine)
    plan = migrations.plan("objection", "default", 1, 3)
    assert plan.refused == ["verifying"]
    before = snapshot(world.engine)
    with pytest.raises(Conflict) as err:
        migrations.run(plan, SYSTEM)
    assert "verifying" in err.value.message and "--map" in err.value.message
    assert snapshot(world.engine) == before
    # Mapped, it goes through.
    mapped = migrations.plan("objection", "default", 1, 3, {"verifying": "checking"})
    assert mapped.ok
    assert migrations.run(mapped, SYSTEM).migrated == 4
    assert world.engine.case_view(cases["verifying"], SYSTEM)["state"] == "checking"


def test_a_crash_halfway_and_a_rerun_migrate_each_case_once(
    world: World, cases: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = Migrations(world.engine)
    real = Migrations._one
    calls = {"n": 0}

    def crashing(self: Migrations, *args: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return real(self, *args)

    monkeypatch.setattr(Migrations, "_one", crashing)
    plan = migrations.plan("objection", "default", 1, 2)
    with pytest.raises(RuntimeError):
        migrations.run(plan, SYSTEM)
    monkeypatch.setattr(Migrations, "_one", real)

    done = [c for c in cases.values() if migrated_events(world, c)]
    assert len(done) == 2  # the third case's transaction rolled back whole
    rerun = migrations.plan("objection", "default", 1, 2)
    assert len(rerun.case_ids) == 2  # only what is left
    assert migrations.run(rerun, SYSTEM).migrated == 2
    # The old plan again: nothing is migrated twice.
    again = migrations.run(plan, SYSTEM)
    assert (again.migrated, again.skipped) == (0, 4)
    for cid in cases.values():
        assert len(migrated_events(world, cid)) == 1
        assert world.engine.case_view(cid, SYSTEM)["definition_version"] == 2
    assert world.engine.verify_audit() == []
