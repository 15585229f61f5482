"""One rule decides who sees a case: the check on a single case (`states.disclosure.sees_case`)
and the condition on lists and the dashboard (`engine.queries.visible_cases`) agree for every
kind of caller."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import World
from helpers import open_objection

from engine.queries import CaseFilter, dashboard_rows, list_cases
from engine.service import SYSTEM, Actor
from states.errors import NotFound


def test_single_case_lists_and_dashboard_agree(world: World) -> None:
    # Handled by the office about records of amr (one) and hrss (the other).
    a = open_objection(world, world.record(unit="amr"))
    b = open_objection(world, world.record(unit="hrss"))
    callers: dict[str, Actor] = {
        name: world.actor(name)
        for name in (
            "office_handler",
            "amr_handler",
            "hrss_reviewer",
            "amr_admin",
            "office_credit_office",
        )
    }
    callers["system"] = SYSTEM
    callers["applicant_a"] = Actor(name="applicant", role="applicant", case_id=a.case_id)
    seen_expected = {
        "office_handler": {a.case_id, b.case_id},  # the handling department
        "amr_handler": {a.case_id},  # the unit that made the finding of a's record
        "hrss_reviewer": {b.case_id},
        "amr_admin": {a.case_id, b.case_id},  # administrators see everything
        "office_credit_office": {a.case_id, b.case_id},
        "system": {a.case_id, b.case_id},
        "applicant_a": {a.case_id},
    }
    for name, actor in callers.items():
        one_by_one = set()
        for cid in (a.case_id, b.case_id):
            try:
                world.engine.case_view(cid, actor)
                one_by_one.add(cid)
            except NotFound:
                pass
        listed = {row["id"] for row in list_cases(world.engine, actor, CaseFilter())[0]}
        assert one_by_one == listed == seen_expected[name], name
        if actor.role != "applicant":
            open_rows = dashboard_rows(world.engine, actor, datetime.now(UTC))[0]
            assert sum(int(r[-1]) for r in open_rows) == len(seen_expected[name]), name
