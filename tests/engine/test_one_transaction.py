"""Commands that carry documents store the step and its files together, or neither."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import APPLICANT, World, count
from helpers import OBJECTION_INTAKE, drive, open_objection

from engine.service import Actor
from states.errors import InvalidPayload, StaleVersion

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def applicant_of(w: World, case_id: int) -> Actor:
    return Actor(name="applicant", role="applicant", case_id=case_id)


def test_a_supplement_refused_stores_none_of_its_files(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["request_supplement"])
    me = applicant_of(world, case.case_id)
    before = count(world.engine, "attachments")
    with pytest.raises(StaleVersion):  # the step fails after the files were checked
        world.engine.advance(
            case.case_id, "supplement", me, {}, expected_version=1, files=[("a.pdf", PDF)]
        )
    assert count(world.engine, "attachments") == before
    with pytest.raises(InvalidPayload):  # one bad file: nothing at all
        world.engine.advance(
            case.case_id, "supplement", me, {}, files=[("a.pdf", PDF), ("b.exe", b"MZ\x90")]
        )
    assert count(world.engine, "attachments") == before
    done = world.engine.advance(case.case_id, "supplement", me, {}, files=[("a.pdf", PDF)])
    assert done.state == "submitted"
    assert count(world.engine, "attachments") == before + 1
    events = [e["trigger"] for e in world.engine.events(case.case_id, me)]
    assert events[-2:] == ["attach", "supplement"]
    # The file is the applicant's in the timeline, not the clock's (it was "clock (系统)").
    attach = [e for e in world.engine.events(case.case_id, me) if e["trigger"] == "attach"][-1]
    assert (attach["actor"], attach["role"]) == (me.name, "applicant")


def test_an_application_refused_stores_none_of_its_evidence(world: World) -> None:
    public = Actor(name="applicant", role="applicant")
    kw: dict[str, Any] = dict(procedure="objection", applicant=APPLICANT, actor=public)
    with pytest.raises(InvalidPayload):
        world.engine.open_case(
            record_id=world.record(), payload={"grounds": "x"}, files=[("a.pdf", PDF)], **kw
        )
    assert count(world.engine, "attachments") == 0 and count(world.engine, "cases") == 0
    opened = world.engine.open_case(
        record_id=world.record(), payload=OBJECTION_INTAKE, files=[("a.pdf", PDF)], **kw
    )
    rows = world.engine._attachments().list(opened.case_id)
    assert [r["uploaded_by"] for r in rows] == [f"applicant:{opened.case_no}"]
