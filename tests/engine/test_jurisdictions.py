"""Jurisdictions: a case takes the rule set of its department's jurisdiction in force on its
filing day (falling back to the default), keeps it for life, and counts its deadlines on its
jurisdiction's calendar. Real dates on the 2026 calendar; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml
from conftest import World, at
from helpers import builtin_document, drive, open_objection

from engine.deadlines import Deadlines
from engine.service import SYSTEM
from states.errors import InvalidPayload


def timers(w: World, case_id: int) -> dict[str, dict[str, Any]]:
    return {d["timer"]: d for d in w.engine.case_view(case_id, SYSTEM)["deadlines"]}


def definition(w: World, case_id: int) -> tuple[str, int]:
    view = w.engine.case_view(case_id, SYSTEM)
    proc = w.engine.procedures.by_id(view["definition_id"])
    return proc.spec.jurisdiction, proc.version


def test_a_department_s_jurisdiction_picks_its_rule_set(world: World) -> None:
    default = open_objection(world)
    assert definition(world, default.case_id) == ("default", 1)

    world.engine.set_jurisdiction("office", "shandong")
    shandong = open_objection(world)
    assert definition(world, shandong.case_id) == ("shandong", 1)
    drive(world, shandong.case_id, "objection", ["accept", "mark_disputed"])
    # 山东省社会信用条例（2020）第39条: 3 working days (the default has 5). Filed Tue 7 April,
    # accepted and marked the same day: verification due Fri 10 April.
    assert timers(world, shandong.case_id)["verify"]["due_day"] == date(2026, 4, 10)

    # No rule set of its own: the default applies.
    world.engine.set_jurisdiction("office", "guangdong")
    other = open_objection(world)
    assert definition(world, other.case_id) == ("default", 1)
    # Cases opened before keep what they were opened under.
    assert definition(world, shandong.case_id) == ("shandong", 1)


def test_the_version_in_force_on_the_filing_day(world: World) -> None:
    world.engine.set_jurisdiction("office", "shanghai")
    v2 = builtin_document("objection", 1, "shanghai")
    v2.update(version=2, effective_from="2026-05-01")
    next(t for t in v2["timers"] if t["name"] == "verify")["period"] = "4 working days"
    done = world.engine.deploy_procedure(yaml.safe_dump(v2, allow_unicode=True), SYSTEM)
    assert done.created and done.stored.jurisdiction == "shanghai"

    before = open_objection(world)  # filed Tue 7 April 2026
    assert definition(world, before.case_id) == ("shanghai", 1)
    # Keyed in on 6 May, filed on 30 April: the filing day decides.
    world.clock.set(at("2026-05-06 09:00"))
    late_keyed = open_objection(world, filed_on=date(2026, 4, 30))
    assert definition(world, late_keyed.case_id) == ("shanghai", 1)
    after = open_objection(world)
    assert definition(world, after.case_id) == ("shanghai", 2)
    drive(world, after.case_id, "objection", ["accept", "mark_disputed"])
    # Wed 6 May + 4 working days = Mon 11 May: Sat 9 May is a working day in 2026 (the State
    # Council's make-up day for the Labour Day holiday).
    assert timers(world, after.case_id)["verify"]["due_day"] == date(2026, 5, 11)


def test_a_local_holiday_moves_deadlines_in_its_jurisdiction_only(world: World) -> None:
    world.engine.set_jurisdiction("hrss", "shanghai")
    national = open_objection(world)  # handled by the office, default jurisdiction
    local = world.engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant=national_applicant(),
        actor=world.actor("hrss_handler"),
        payload={"grounds": "记录有误", "commitment_signed": True},
    )
    # Formal check: 2 working days from Tue 7 April: Thu 9 April in both.
    assert timers(world, national.case_id)["formal_check"]["due_day"] == date(2026, 4, 9)
    assert timers(world, local.case_id)["formal_check"]["due_day"] == date(2026, 4, 9)

    load = Deadlines(world.engine).load_calendar(
        {
            "kind": "local",
            "jurisdiction": "shanghai",
            "days": [{"date": "2026-04-08", "kind": "holiday", "name": "本地停工日"}],
        },
        "沪府办通知",
    )
    assert load.recomputed == 1  # the Shanghai case's deadline only
    assert timers(world, local.case_id)["formal_check"]["due_day"] == date(2026, 4, 10)
    assert timers(world, national.case_id)["formal_check"]["due_day"] == date(2026, 4, 9)
    # And a case opened afterwards counts on it from the start.
    later = world.engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant=national_applicant(),
        actor=world.actor("hrss_handler"),
        payload={"grounds": "记录有误", "commitment_signed": True},
    )
    assert timers(world, later.case_id)["formal_check"]["due_day"] == date(2026, 4, 10)
    # The department moves back; its running cases keep the jurisdiction they were filed in.
    world.engine.set_jurisdiction("hrss", "default")
    hrss = world.actor("hrss_handler")
    world.engine.advance(local.case_id, "accept", hrss, {}, 1)
    drive(world, national.case_id, "objection", ["accept"])
    # Marking disputed: 1 working day from Tue 7 April, and 8 April is Shanghai's day off.
    assert timers(world, local.case_id)["mark_due"]["due_day"] == date(2026, 4, 9)
    assert timers(world, national.case_id)["mark_due"]["due_day"] == date(2026, 4, 8)


def test_jurisdiction_names_are_checked(world: World) -> None:
    with pytest.raises(InvalidPayload):
        world.engine.set_jurisdiction("office", "Shang Hai")
    with pytest.raises(InvalidPayload):
        Deadlines(world.engine).load_calendar(
            {
                "kind": "official",
                "year": 2027,
                "jurisdiction": "shanghai",
                "days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}],
            },
            "x",
        )


def national_applicant() -> dict[str, Any]:
    from conftest import APPLICANT

    return dict(APPLICANT)
