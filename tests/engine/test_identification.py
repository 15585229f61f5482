"""Identification of serious dishonesty (严重失信认定) and rectification (限期整改), every path end
to end through the service layer (seed 000 item 2; 国办发〔2020〕49号; DOMAIN.md procedure 3), on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import World, at
from helpers import open_repair

from engine.applicants import authenticate
from engine.deadlines import Deadlines
from engine.demo import IDENTIFICATION_PATHS, open_identification
from engine.demo import drive as demo_drive
from engine.queries import CaseFilter, get_record, list_cases
from engine.service import SYSTEM
from states.errors import Forbidden, Ineligible, NotFound

PARTY = "某区城市管理局"


def opened(w: World, kind: str = "government") -> int:
    return open_identification(w.engine, w.staff, kind, PARTY, "party@example.com").case_id


def drive(w: World, cid: int, steps: list[str], payloads: dict[str, Any] | None = None) -> None:
    demo_drive(w.engine, w.staff, cid, "identification", steps, payloads)


def state(w: World, cid: int) -> str:
    return str(w.engine.case_view(cid, SYSTEM)["state"])


def timers(w: World, cid: int) -> dict[str, dict[str, Any]]:
    return {d["timer"]: d for d in w.engine.case_view(cid, SYSTEM)["deadlines"]}


def queued(w: World, cid: int) -> list[str]:
    """The notices queued for the case (once per notice, whatever the channels)."""
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT name, id FROM outbox WHERE case_id = :id AND kind = 'notice'"),
            {"id": cid},
        ).all()
    return sorted({r[0] for r in rows})


def access_code_of(w: World, cid: int) -> str:
    with w.engine.db.read() as conn:
        payload = conn.execute(
            sa.text(
                "SELECT payload FROM outbox WHERE case_id = :id AND name = 'prior_notice' "
                "ORDER BY id DESC"
            ),
            {"id": cid},
        ).scalar()
    return str(json.loads(payload)["context"]["access_code"])


HEARD = IDENTIFICATION_PATHS["task_group_review"]  # propose, notice, statement, rejected


def test_statement_rejected_then_identified_published_as_serious(world: World) -> None:
    cid = opened(world)
    drive(world, cid, [*HEARD, "form_opinion", "approve"])
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "rectifying"
    rec = view["record"]
    assert rec is not None and rec["severity"] == "serious" and rec["status"] == "published"
    content = rec["content"]
    assert content["measures"] == ["取消当年荣誉评选资格", "通报批评", "处分期内不得晋升"]
    assert content["publicity_months"] == 12
    assert content["rectification"]["status"] == "required"
    # The record is about the party, determined by the lead department that proposed it.
    record = get_record(world.engine, rec["id"], world.actor("office_credit_office"))
    assert record is not None
    assert record["subject_name"] == PARTY and record["determining_unit"] == "amr"
    assert record["subject_kind"] == "government"
    assert view["determining_unit"] == "amr"
    # Published for the period the decision set (12 months), not the severity's maximum.
    with world.engine.db.read() as conn:
        due = conn.execute(
            sa.text("SELECT due_day FROM timers WHERE record_id = :r AND name = 'publicity_max'"),
            {"r": rec["id"]},
        ).scalar()
    assert str(due)[:10] == "2027-04-07"
    assert {"identification_decision", "rectification_order"} <= set(queued(world, cid))
    assert timers(world, cid)["rectification_due"]["due_day"] == date(2026, 5, 21)


def test_repair_refused_until_rectification_accepted_and_the_minimum_period_passed(
    world: World,
) -> None:
    cid = opened(world)
    drive(world, cid, [*HEARD, "form_opinion", "approve"])
    rid = world.engine.case_view(cid, SYSTEM)["record"]["id"]
    with pytest.raises(Ineligible) as refused:
        open_repair(world, rid)
    assert "整改尚未验收通过" in refused.value.message_zh
    drive(world, cid, ["report_rectification", "accept_rectification"])
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "rectified" and view["closed"]
    assert view["record"]["content"]["rectification"]["status"] == "accepted"
    # Rectified, but a serious record is published for at least 12 months first.
    with pytest.raises(Ineligible) as early:
        open_repair(world, rid)
    assert early.value.earliest == date(2027, 4, 8)
    world.clock.set(at("2027-04-08 09:00"))
    repair = open_repair(world, rid)
    assert repair.state == "submitted"


def test_statement_upheld_means_not_identified_and_no_record(world: World) -> None:
    cid = opened(world)
    drive(world, cid, IDENTIFICATION_PATHS["not_identified"])
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "not_identified" and view["record"] is None
    assert view["data"]["conclusion"] == "statement_upheld"
    assert "non_identification" in queued(world, cid)


def test_task_group_does_not_identify(world: World) -> None:
    cid = opened(world)
    drive(world, cid, [*HEARD, "not_identify"])
    view = world.engine.case_view(cid, SYSTEM)
    assert (view["state"], view["record"]) == ("not_identified", None)
    assert view["data"]["conclusion"] == "not_identified"


def test_leading_group_refuses_or_returns(world: World) -> None:
    cid = opened(world)
    drive(world, cid, [*HEARD, "form_opinion", "return_opinion"])
    assert state(world, cid) == "task_group_review"
    drive(world, cid, ["form_opinion", "refuse_approval"])
    view = world.engine.case_view(cid, SYSTEM)
    assert (view["state"], view["record"]) == ("not_identified", None)


def test_fault_tolerance_records_nothing_and_cites_the_conditions(world: World) -> None:
    cid = opened(world, "civil_servant")
    drive(world, cid, IDENTIFICATION_PATHS["tolerated"])
    view = world.engine.case_view(cid, SYSTEM)
    assert (view["state"], view["record"]) == ("tolerated", None)
    assert view["data"]["conclusion"] == "fault_tolerance"
    assert view["data"]["tolerance_conditions"] == "因政策调整导致履约延迟，已主动纠正"
    with world.engine.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM credit_records")).scalar() == 0


def test_prior_notice_carries_the_partys_access_code(world: World) -> None:
    """The party did not file the case: the prior notice tells them of it, with the code they
    sign in with on the portal to file their statement."""
    cid = opened(world)
    drive(world, cid, ["propose", "send_prior_notice"])
    no = world.engine.case_view(cid, SYSTEM)["case_no"]
    code = access_code_of(world, cid)
    party = authenticate(world.engine, no, code)
    assert party.case_id == cid and party.role == "applicant"
    done = world.engine.advance(cid, "file_statement", party, {"statement": "款项已付清"})
    assert done.state == "statement_review"
    # The party may not decide on their own statement.
    with pytest.raises(Forbidden):
        world.engine.advance(cid, "reject_statement", party, {"statement_answer": "x"})


def test_no_statement_within_five_working_days_of_delivery(world: World) -> None:
    """The period to state one's case counts from the notice's delivery (送达), here recorded
    by hand on Wednesday 04-08: five working days end on Wednesday 04-15; on 04-16 the clock
    moves the case to the task group."""
    cid = opened(world)
    drive(world, cid, ["propose", "send_prior_notice"])
    assert timers(world, cid)["statement_due"]["status"] == "waiting"
    world.clock.set(at("2026-04-08 10:00"))
    drive(world, cid, ["record_delivery"], {"record_delivery": {"delivered_on": "2026-04-08"}})
    assert timers(world, cid)["statement_due"]["due_day"] == date(2026, 4, 15)
    world.clock.set(at("2026-04-15 23:00"))
    Deadlines(world.engine).sweep()
    assert state(world, cid) == "notified"
    world.clock.set(at("2026-04-16 00:00"))
    Deadlines(world.engine).sweep()
    assert state(world, cid) == "task_group_review"


def test_rectification_overdue_presses_then_escalates(world: World) -> None:
    """Supervision (督促落实): the rectification deadline passes → the case is overdue and the
    party is sent a letter pressing rectification; the pressed period passes → the assignee,
    then the reviewer, then the head are told."""
    cid = opened(world)
    drive(world, cid, [*HEARD, "form_opinion", "approve"])
    due = timers(world, cid)["rectification_due"]["due_day"]
    assert due == date(2026, 5, 21)  # 30 working days, Labour Day and 05-09 counted right
    world.clock.set(at("2026-05-14 09:00"))  # five working days before: a reminder
    assert Deadlines(world.engine).sweep().actions.get("reminder") == 1
    world.clock.set(at("2026-05-22 00:00"))
    Deadlines(world.engine).sweep()
    assert state(world, cid) == "overdue"
    assert "rectification_urge" in queued(world, cid)
    supervision = timers(world, cid)["supervision_due"]["due_day"]
    assert supervision == date(2026, 6, 5)
    world.clock.set(at("2026-06-06 00:00"))
    Deadlines(world.engine).sweep()
    world.clock.set(at("2026-06-10 00:00"))
    Deadlines(world.engine).sweep()
    world.clock.set(at("2026-06-12 00:00"))
    Deadlines(world.engine).sweep()
    escalated = [
        e["detail"].get("notify")
        for e in world.engine.events(cid, SYSTEM)
        if e["trigger"] in ("deadline_expired", "deadline_escalated")
    ]
    assert escalated[-3:] == ["assignee", "reviewer", "head"]
    # Rectified late: the report is still taken and checked.
    drive(world, cid, ["report_rectification", "accept_rectification"])
    assert state(world, cid) == "rectified"


def test_rectification_rejected_starts_a_new_deadline(world: World) -> None:
    cid = opened(world)
    drive(world, cid, [*HEARD, "form_opinion", "approve", "report_rectification"])
    world.clock.set(at("2026-04-20 09:00"))
    drive(world, cid, ["reject_rectification"])
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "rectifying"
    assert view["record"]["content"]["rectification"]["status"] == "required"
    # 30 working days from Monday 04-20: Labour Day off, Saturday 05-09 worked: 06-03.
    assert timers(world, cid)["rectification_due"]["due_day"] == date(2026, 6, 3)


def test_the_task_group_and_leading_group_see_every_identification_and_nothing_else(
    world: World,
) -> None:
    cid = opened(world)
    objection = world.engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant={"kind": "person", "name": "李某", "identifier": "11010519491231002X"},
        actor=world.actor("office_handler"),
        payload={"grounds": "有误", "commitment_signed": True},
    )
    for who in ("office_task_group", "office_leading_group"):
        actor = world.actor(who)
        ids = {r["id"] for r in list_cases(world.engine, actor, CaseFilter())[0]}
        assert cid in ids, who
        # Their remit is the identification procedure, not the office's own queue.
        assert world.engine.case_view(cid, actor)["case_no"].startswith("RD")
    # Another lead department sees nothing of AMR's case.
    other = world.actor("hrss_lead_department")
    assert cid not in {r["id"] for r in list_cases(world.engine, other, CaseFilter())[0]}
    with pytest.raises(NotFound):
        world.engine.case_view(cid, other)
    # A task group member in the office does see the office's cases as its department's.
    tg = world.actor("office_task_group")
    assert objection.case_id in {r["id"] for r in list_cases(world.engine, tg, CaseFilter())[0]}
    # And may not act out of turn: forming an opinion before the party has been heard.
    drive(world, cid, ["propose"])
    with pytest.raises(Exception) as refused:
        world.engine.advance(cid, "form_opinion", tg, {"opinion": "x"})
    assert refused.typename in ("TransitionNotAllowed", "Forbidden")


def test_the_party_must_be_a_government_body_or_a_civil_servant(world: World) -> None:
    from states.errors import InvalidPayload

    with pytest.raises(InvalidPayload) as bad:
        world.engine.open_case(
            procedure="identification",
            record_id=None,
            applicant={"kind": "person", "name": "李某", "identifier": "11010519491231002X"},
            actor=world.actor("amr_lead_department"),
            payload={"facts": "x"},
        )
    assert bad.value.errors[0].field == "applicant.kind"
    with pytest.raises(InvalidPayload) as bad_id:
        world.engine.open_case(
            procedure="identification",
            record_id=None,
            applicant={"kind": "government", "name": PARTY, "identifier": "123"},
            actor=world.actor("amr_lead_department"),
            payload={"facts": "x"},
        )
    assert bad_id.value.errors[0].field == "applicant.identifier"
    with pytest.raises(InvalidPayload) as with_record:
        world.engine.open_case(
            procedure="identification",
            record_id=world.record(),
            applicant={"kind": "government", "name": PARTY, "identifier": ""},
            actor=world.actor("amr_lead_department"),
            payload={"facts": "x"},
        )
    assert with_record.value.errors[0].field == "record_id"
