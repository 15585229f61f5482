"""Complaints and reports (投诉举报) end to end through the service layer, on SQLite and
PostgreSQL: intake on every channel, anonymity, the 信访工作条例 (2022) deadlines, one extension,
re-examination, and a substantiated complaint opening a linked identification case."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from conftest import World, at, snapshot

from engine.applicants import authenticate, status_view
from engine.deadlines import Deadlines
from engine.demo import COMPLAINT_INTAKE, COMPLAINT_PATHS, open_complaint
from engine.demo import drive as demo_drive
from engine.service import SYSTEM
from states.errors import InvalidPayload, TransitionNotAllowed
from states.identifiers import make_uscc

PARTY_ID = make_uscc("11310000MB2C3D4E5")


def drive(w: World, cid: int, steps: list[str], payloads: dict[str, Any] | None = None) -> None:
    demo_drive(w.engine, w.staff, cid, "complaint", steps, payloads)


def timers(w: World, cid: int) -> dict[str, dict[str, Any]]:
    return {d["timer"]: d for d in w.engine.case_view(cid, SYSTEM)["deadlines"]}


def state(w: World, cid: int) -> str:
    return str(w.engine.case_view(cid, SYSTEM)["state"])


def test_the_deadlines_of_the_regulation(world: World) -> None:
    """Registered and routed within 15 days of receipt; accepted or refused within 7 working
    days of receipt (registration does not restart it); concluded within 60 days of
    acceptance."""
    cid = open_complaint(world.engine, world.staff).case_id
    assert timers(world, cid)["register_due"]["due_day"] == date(2026, 4, 22)
    # Tuesday 04-07 + 7 working days: 04-08…04-10, 04-13…04-16.
    assert timers(world, cid)["acceptance_due"]["due_day"] == date(2026, 4, 16)
    world.clock.set(at("2026-04-10 10:00"))
    drive(world, cid, ["register"])
    assert timers(world, cid)["acceptance_due"]["due_day"] == date(2026, 4, 16)
    world.clock.set(at("2026-04-20 10:00"))
    drive(world, cid, ["accept"])
    assert timers(world, cid)["acceptance_due"]["status"] == "stopped"
    # 60 days end on Friday 06-19, the Dragon Boat Festival: the next working day (Art. 203).
    assert timers(world, cid)["conclusion_due"]["due_day"] == date(2026, 6, 22)


def test_concluded_without_extension_then_closed_when_the_window_passes(world: World) -> None:
    cid = open_complaint(world.engine, world.staff).case_id
    drive(world, cid, ["register", "accept", "conclude"])
    assert state(world, cid) == "replied"
    assert timers(world, cid)["reexam_window"]["status"] == "waiting"  # from the reply's receipt
    drive(world, cid, ["record_delivery"], {"record_delivery": {"delivered_on": "2026-04-07"}})
    assert timers(world, cid)["reexam_window"]["due_day"] == date(2026, 5, 7)
    world.clock.set(at("2026-05-08 00:00"))
    Deadlines(world.engine).sweep()
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "closed" and view["closed"]


def test_concluded_with_one_extension_of_thirty_days(world: World) -> None:
    cid = open_complaint(world.engine, world.staff).case_id
    drive(world, cid, ["register", "accept"])
    # 60 days end on Saturday 06-06: the next working day (民法典 Art. 203).
    assert timers(world, cid)["conclusion_due"]["due_day"] == date(2026, 6, 8)
    drive(world, cid, ["request_extension"])
    # Not concluded while the extension waits for approval.
    with pytest.raises(TransitionNotAllowed):
        drive(world, cid, ["conclude"])
    drive(world, cid, ["approve_extension"])
    # 60 + 30 days from 04-07: 07-06 (90 in all, the regulation's bound).
    assert timers(world, cid)["conclusion_due"]["due_day"] == date(2026, 7, 6)
    with pytest.raises(TransitionNotAllowed) as again:
        drive(world, cid, ["request_extension"])
    assert "1" in again.value.reason_zh
    drive(world, cid, ["conclude"])
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "replied" and view["data"]["extensions"] == {"conclusion_due": 1}


def test_reexamination_requested_by_the_complainant_and_answered(world: World) -> None:
    o = open_complaint(world.engine, world.staff)
    assert o.access_code is not None
    drive(world, o.case_id, ["register", "accept", "conclude"])
    me = authenticate(world.engine, o.case_no, o.access_code)
    page = status_view(world.engine, me, "zh")
    assert page["state_label"] == "已答复"
    offered = {a["trigger"]: a for a in page["other_actions"]}
    assert set(offered) == {"request_reexamination"}
    world.engine.advance(o.case_id, "request_reexamination", me, {"reexam_grounds": "不认可"})
    assert timers(world, o.case_id)["reexam_due"]["due_day"] == date(2026, 5, 7)
    drive(world, o.case_id, ["answer_reexamination"])
    view = world.engine.case_view(o.case_id, SYSTEM)
    assert view["state"] == "reexamined" and view["data"]["reexam_result"] == "upheld"


def test_refused(world: World) -> None:
    cid = open_complaint(world.engine, world.staff).case_id
    drive(world, cid, COMPLAINT_PATHS["not_accepted"])
    assert state(world, cid) == "not_accepted"


def test_a_substantiated_complaint_opens_a_linked_identification(world: World) -> None:
    cid = open_complaint(world.engine, world.staff).case_id
    drive(world, cid, ["register", "accept"])
    handler = world.actor("office_handler")
    view = world.engine.case_view(cid, handler)
    done = world.engine.advance(
        cid,
        "refer_identification",
        handler,
        {
            "lead_department": "amr",
            "referral_reasons": "经核实，该局拖欠企业账款两年未付",
            "subject_identifier": PARTY_ID,
        },
        view["version"],
    )
    assert done.state == "handling"  # the complaint goes on to its reply
    (link,) = world.engine.case_view(cid, handler)["links"]
    assert link["relation"] == "opened" and link["procedure"] == "identification"
    assert link["case_no"].startswith("RD") and link["state"] == "opened"
    # The lead department sees the new case, about the complaint's subject, and the way back.
    lead = world.actor("amr_lead_department")
    new = world.engine.case_view(link["case_id"], lead)
    assert new["department_id"] == "amr" and new["record"] is None
    assert new["applicant"]["name"] == COMPLAINT_INTAKE["subject_name"]
    assert new["data"]["facts"] == "经核实，该局拖欠企业账款两年未付"
    (back,) = new["links"]
    assert (back["relation"], back["case_id"]) == ("opened_from", cid)
    # A complaint refers once.
    with pytest.raises(TransitionNotAllowed):
        drive(world, cid, ["refer_identification"])
    drive(world, cid, ["conclude"])
    assert state(world, cid) == "replied"


def test_a_referral_without_what_the_new_case_needs_changes_nothing(world: World) -> None:
    cid = open_complaint(world.engine, world.staff).case_id
    drive(world, cid, ["register", "accept"])
    before = snapshot(world.engine)
    handler = world.actor("office_handler")
    with pytest.raises(InvalidPayload) as missing:  # no identifier for the government body
        world.engine.advance(
            cid,
            "refer_identification",
            handler,
            {"lead_department": "amr", "referral_reasons": "属实"},
        )
    assert missing.value.errors[0].field == "subject_identifier"
    with pytest.raises(InvalidPayload) as unknown:
        world.engine.advance(
            cid,
            "refer_identification",
            handler,
            {
                "lead_department": "nowhere",
                "referral_reasons": "属实",
                "subject_identifier": PARTY_ID,
            },
        )
    assert unknown.value.errors[0].field == "lead_department"
    assert snapshot(world.engine) == before


def test_anonymous_with_or_without_an_access_code(world: World) -> None:
    kept = open_complaint(world.engine, world.staff, anonymous=True)
    assert kept.access_code is not None
    me = authenticate(world.engine, kept.case_no, kept.access_code)
    view = world.engine.case_view(kept.case_id, SYSTEM)
    assert view["applicant"] == {"kind": "person", "name": "", "identifier": "", "anonymous": True}
    assert status_view(world.engine, me, "zh")["state_label"] == "已收到"
    none = world.engine.open_case(
        procedure="complaint",
        record_id=None,
        applicant={"anonymous": True},
        actor=world.actor("office_handler"),
        payload={**COMPLAINT_INTAKE, "channel": "mailbox"},
        access_code=False,
    )
    assert none.access_code is None
    assert world.engine.case_view(none.case_id, SYSTEM)["data"]["channel"] == "mailbox"


def test_bad_intake_says_what_and_where(world: World) -> None:
    before = snapshot(world.engine)
    office = world.actor("office_handler")
    with pytest.raises(InvalidPayload) as named_anon:
        world.engine.open_case(
            procedure="complaint",
            record_id=None,
            applicant={"anonymous": True, "name": "张某"},
            actor=office,
            payload=COMPLAINT_INTAKE,
        )
    assert named_anon.value.errors[0].field == "applicant.name"
    with pytest.raises(InvalidPayload) as channel:
        world.engine.open_case(
            procedure="complaint",
            record_id=None,
            applicant={"kind": "person", "name": "张某"},
            actor=office,
            payload={**COMPLAINT_INTAKE, "channel": "fax"},
        )
    assert channel.value.errors[0].field == "channel"
    with pytest.raises(InvalidPayload) as objection:
        world.engine.open_case(
            procedure="objection",
            record_id=world.record(),
            applicant={"anonymous": True},
            actor=office,
            payload={"grounds": "有误", "commitment_signed": True},
        )
    assert objection.value.errors[0].field == "applicant.anonymous"
    assert snapshot(world.engine)["cases"] == before["cases"]


def test_every_channel_is_recorded(world: World) -> None:
    for channel in (
        "web",
        "hotline_12345",
        "hotline_12388",
        "hotline_12350",
        "mailbox",
        "in_person",
    ):
        o = world.engine.open_case(
            procedure="complaint",
            record_id=None,
            applicant={"kind": "person", "name": "张某", "phone": "13800000000"},
            actor=world.actor("office_handler"),
            payload={**COMPLAINT_INTAKE, "channel": channel},
        )
        assert world.engine.case_view(o.case_id, SYSTEM)["data"]["channel"] == channel
