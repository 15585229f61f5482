"""Procedures 1 and 2 against the rules they cite (issue 16), on SQLite and PostgreSQL.

Every date is worked out by hand on the real 2026 calendar (Qingming 04-04–04-06, Labour Day
05-01–05-05 with 05-09 a makeup working Saturday); each test names its rule. The clock starts
on Tuesday 2026-04-07 09:00, Asia/Shanghai. Working days after 04-07: 04-08, 04-09, 04-10,
04-13, 04-14, 04-15, 04-16, 04-17, 04-20, 04-21 (the tenth).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import World, at
from helpers import PAYLOADS, drive, open_objection, open_repair
from mail_support import Smtp

from engine.channels import EmailChannel, InAppChannel, LogChannel
from engine.deadlines import Deadlines
from engine.definitions import builtin
from engine.outbox import Delivery, Policy, router
from engine.service import SYSTEM
from states.errors import Forbidden, Ineligible, TransitionNotAllowed

UPHELD = {"outcome": "upheld", "reasons": "核查属实", "legal_basis": "《条例》"}


def timers(w: World, case_id: int) -> dict[str, dict[str, Any]]:
    """The case's timers by name (the latest row of each)."""
    return {d["timer"]: d for d in w.engine.case_view(case_id, SYSTEM)["deadlines"]}


def due(w: World, case_id: int, name: str) -> date | None:
    return timers(w, case_id)[name]["due_day"]


def on(w: World, when: str) -> None:
    w.clock.set(at(when))


def verifying(w: World) -> int:
    case = open_objection(w)
    drive(w, case.case_id, "objection", ["accept", "mark_disputed"])
    return case.case_id


# -- objection ----------------------------------------------------------------------------------


def test_supplement_during_verification_pauses_its_clock(world: World) -> None:
    """DOMAIN.md procedure 1 step 2 and Counting days: material may be asked for during
    verification, and verification's clock pauses while the applicant answers."""
    cid = verifying(world)
    assert due(world, cid, "verify") == date(2026, 4, 14)
    on(world, "2026-04-08 10:00")  # paused on 04-08: that day counts; 04-09…04-14 are left (4)
    drive(world, cid, "objection", ["request_supplement"])
    t = timers(world, cid)
    assert (t["verify"]["status"], t["verify"]["remaining"]) == ("paused", 4)
    assert t["evidence_due"]["due_day"] == date(2026, 4, 22)  # 10 working days
    on(world, "2026-04-13 15:00")  # supplied on Monday 04-13, not counted: 04-14…04-17
    drive(world, cid, "objection", ["supplement"])
    assert world.engine.case_view(cid, SYSTEM)["state"] == "verifying"
    assert due(world, cid, "verify") == date(2026, 4, 17)


def test_material_not_supplied_during_verification_means_deciding_on_what_is_at_hand(
    world: World,
) -> None:
    """An accepted objection is not withdrawn for want of further evidence: when the period
    lapses the verification resumes on the material at hand (our rule, documented)."""
    cid = verifying(world)
    drive(world, cid, "objection", ["request_supplement"])
    on(world, "2026-04-23 00:00")  # evidence_due 04-22 has ended
    assert Deadlines(world.engine).sweep().actions == {"transition": 1}
    view = world.engine.case_view(cid, SYSTEM)
    assert view["state"] == "verifying" and view["record"]["disputed"] is True
    # Paused 04-07 with 5 left, resumed 04-23: 04-24, 04-27, 04-28, 04-29, 04-30.
    assert due(world, cid, "verify") == date(2026, 4, 30)


def test_testing_or_expert_review_is_not_counted(world: World) -> None:
    """Henan 2019 Art. 41: time for testing or expert review is not counted."""
    cid = verifying(world)
    on(world, "2026-04-09 10:00")  # 04-08, 04-09 used; 04-10, 04-13, 04-14 left
    drive(world, cid, "objection", ["suspend_for_testing"])
    assert world.engine.case_view(cid, SYSTEM)["state"] == "testing"
    assert timers(world, cid)["verify"]["remaining"] == 3
    # 20 working days (ours), the makeup Saturday 05-09 among them: 05-11.
    assert due(world, cid, "testing_due") == date(2026, 5, 11)
    on(world, "2026-04-30 16:00")  # back before Labour Day: 05-06, 05-07, 05-08
    drive(world, cid, "objection", ["resume_verification"])
    assert due(world, cid, "verify") == date(2026, 5, 8)


def test_forwarding_has_its_own_deadline_and_the_stages_nest(world: World) -> None:
    """上海市社会信用条例 (2017) Art. 36: forward within 2 working days and the providing unit
    answers within 5; verification's own clock stops while the unit verifies and resumes on
    its answer, so it can never expire before the unit's answer is due."""
    cid = verifying(world)
    assert due(world, cid, "forward_due") == date(2026, 4, 9)
    on(world, "2026-04-09 11:00")
    drive(world, cid, "objection", ["forward"])
    t = timers(world, cid)
    assert t["forward_due"]["status"] == "stopped"
    assert (t["verify"]["status"], t["verify"]["remaining"]) == ("paused", 3)
    assert t["unit_answer"]["due_day"] == date(2026, 4, 16)
    on(world, "2026-04-16 17:00")  # the unit answers on its last day
    drive(world, cid, "objection", ["unit_answer"])
    # 3 left, counted from 04-16: 04-17, 04-20, 04-21 — after the unit's answer was due.
    assert due(world, cid, "verify") == date(2026, 4, 21)


def test_forwarding_deadline_escalates_when_missed(world: World) -> None:
    """上海市社会信用条例 (2017) Art. 36: the 2 working days to forward are a deadline of
    their own: missed, the assignee is told, then the reviewer."""
    cid = verifying(world)
    on(world, "2026-04-10 00:00")
    actions = Deadlines(world.engine).sweep().actions
    assert actions.get("escalate") == 1
    events = [e["trigger"] for e in world.engine.events(cid, SYSTEM)]
    assert events[-1] == "deadline_expired"


def test_one_extension_bounded_in_total(world: World) -> None:
    """Default rule set (Zhejiang 2017 Arts. 30–31): verification 5 working days, one
    extension approved by a reviewer, 20 in all."""
    cid = verifying(world)
    eng = world.engine
    reviewer = world.actor("office_reviewer")
    drive(
        world,
        cid,
        "objection",
        ["request_extension"],
        {"request_extension": {"days": 16, "reason": "需调取外单位材料"}},
    )
    version = eng.case_view(cid, SYSTEM)["version"]
    with pytest.raises(TransitionNotAllowed, match="at most 15 more"):
        eng.advance(cid, "approve_extension", reviewer, {}, version)
    drive(world, cid, "objection", ["reject_extension", "request_extension", "approve_extension"])
    assert due(world, cid, "verify") == date(2026, 4, 21)  # 5 + 5 working days
    with pytest.raises(TransitionNotAllowed, match="1 time"):
        drive(world, cid, "objection", ["request_extension"])
    offered = [a["trigger"] for a in eng.allowed_actions(cid, world.actor("office_handler"))]
    assert "request_extension" not in offered


def test_missing_items_are_listed_at_once(world: World) -> None:
    """一次性告知 (行政许可法 Art. 32; DOMAIN.md step 2): every missing item in one request.
    A second request at the formal check is refused; the office accepts or refuses on what
    it has."""
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["request_supplement", "supplement"])
    with pytest.raises(TransitionNotAllowed) as err:
        drive(world, case.case_id, "objection", ["request_supplement"])
    assert "一次性告知" in err.value.message_zh
    drive(world, case.case_id, "objection", ["accept", "mark_disputed", "request_supplement"])
    drive(world, case.case_id, "objection", ["supplement"])
    with pytest.raises(TransitionNotAllowed, match="already asked for once"):
        drive(world, case.case_id, "objection", ["request_supplement"])


def test_review_goes_to_the_next_level_never_the_decider(world: World) -> None:
    """DOMAIN.md procedure 1 step 8: a reviewer at the next level decides the review (复核);
    the engine refuses the person who approved the decision and any role not above theirs."""
    eng = world.engine
    case = open_objection(world)
    steps = ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"]
    drive(world, case.case_id, "objection", [*steps, "request_review"])
    version = eng.case_view(case.case_id, SYSTEM)["version"]
    with pytest.raises(Forbidden):
        eng.advance(
            case.case_id,
            "review_confirm",
            world.actor("office_reviewer"),
            {"reasons": "x"},
            version,
        )
    # An administrator may act in any role, but not review a decision they approved.
    other = open_objection(world)
    drive(world, other.case_id, "objection", ["accept", "mark_disputed", "propose_decision"])
    admin = world.actor("office_admin")
    v = eng.case_view(other.case_id, SYSTEM)["version"]
    eng.advance(other.case_id, "approve_decision", admin, {}, v)
    drive(world, other.case_id, "objection", ["notify", "request_review"])
    v = eng.case_view(other.case_id, SYSTEM)["version"]
    with pytest.raises(TransitionNotAllowed) as err:
        eng.advance(other.case_id, "review_overturn", admin, {"reasons": "x"}, v)
    assert "作出原决定的人员不得办理复核" in (err.value.message_zh or "")
    head = world.actor("office_head")
    eng.advance(other.case_id, "review_overturn", head, {"reasons": "事实不清"}, v)
    assert eng.case_view(other.case_id, SYSTEM)["data"]["decided_by"] == {
        "name": "office_admin",
        "role": "admin",
    }


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


def _mail(w: World, port: int) -> Delivery:
    channels = {
        "log": LogChannel(),
        "inapp": InAppChannel(),
        "email": EmailChannel("127.0.0.1", port, "credit-office@example.gov.cn", timeout=3),
    }
    return Delivery(w.engine, router(channels, {}), Policy(max_attempts=3))


def test_review_window_counts_from_the_notices_delivery(world: World, smtp: Smtp) -> None:
    """民法典 Art. 201 and the letter's own words (自收到本告知书之日起15日内): the review window
    counts from the day the result notice reaches the applicant, as the outbox records it."""
    case = open_objection(world)
    steps = ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"]
    drive(world, case.case_id, "objection", steps, {"propose_decision": UPHELD})
    window = timers(world, case.case_id)["review_window"]
    assert (window["status"], window["due_day"]) == ("waiting", None)
    smtp.stop()
    on(world, "2026-04-08 10:00")
    _mail(world, smtp.port).deliver()  # the mail server is down: not delivered, no window
    assert timers(world, case.case_id)["review_window"]["status"] == "waiting"
    smtp.start()
    on(world, "2026-04-09 10:00")
    delivery = _mail(world, smtp.port)
    delivery.policy = Policy(max_attempts=3, base_delay=timedelta(0))
    while delivery.deliver().sent:
        pass
    assert any("异议核查结果告知书" in str(m["Subject"]) for m in smtp.inbox.messages)
    # Delivered 04-09: 15 calendar days → 04-24 (not 04-22, counted from 04-07's notify).
    assert due(world, case.case_id, "review_window") == date(2026, 4, 24)
    events = world.engine.events(case.case_id, SYSTEM)
    assert events[-1]["trigger"] == "notice_delivered"
    on(world, "2026-04-24 23:00")
    Deadlines(world.engine).sweep()
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "notified"
    on(world, "2026-04-25 00:00")
    Deadlines(world.engine).sweep()
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "closed"


def test_undelivered_notice_is_reported_and_a_postal_delivery_recorded(world: World) -> None:
    """A letter that is not served electronically is served by post or in person; until its
    day of delivery is recorded the window does not run, and the assignee is told."""
    case = open_objection(world)
    steps = ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"]
    drive(world, case.case_id, "objection", steps, {"propose_decision": UPHELD})
    on(world, "2026-04-10 09:30")  # 3 working days on
    assert Deadlines(world.engine).sweep().actions == {"undelivered": 1}
    assert world.engine.events(case.case_id, SYSTEM)[-1]["trigger"] == "notice_undelivered"
    with pytest.raises(TransitionNotAllowed, match="future"):
        drive(
            world,
            case.case_id,
            "objection",
            ["record_delivery"],
            {"record_delivery": {"delivered_on": "2026-04-11"}},
        )
    drive(
        world,
        case.case_id,
        "objection",
        ["record_delivery"],
        {"record_delivery": {"delivered_on": "2026-04-09"}},
    )
    assert due(world, case.case_id, "review_window") == date(2026, 4, 24)


def test_wrong_published_information_is_withdrawn_within_three_working_days(
    world: World,
) -> None:
    """行政处罚法 Art. 48 (三日内撤回) with Art. 85 (working days): the push that withdraws
    wrong information has a deadline of its own, escalated when late and met when the
    platform receives it; a decision that upholds the record starts none."""
    case = open_objection(world)
    steps = ["accept", "mark_disputed", "propose_decision", "approve_decision"]
    drive(world, case.case_id, "objection", steps)  # revoked
    assert due(world, case.case_id, "withdraw_due") == date(2026, 4, 10)
    drive(world, case.case_id, "objection", ["notify", "finalize"])
    on(world, "2026-04-11 00:00")  # not pushed in time: escalated, though the case moved on
    assert Deadlines(world.engine).sweep().actions.get("escalate", 0) >= 1
    assert timers(world, case.case_id)["withdraw_due"]["status"] == "active"
    delivery = Delivery(world.engine, router({"log": LogChannel()}, {}), Policy())
    while delivery.deliver().sent:
        pass
    assert timers(world, case.case_id)["withdraw_due"]["status"] == "stopped"
    assert world.engine.events(case.case_id, SYSTEM)[-1]["trigger"] == "deadline_met"

    upheld = open_objection(world)
    drive(world, upheld.case_id, "objection", steps, {"propose_decision": UPHELD})
    assert "withdraw_due" not in timers(world, upheld.case_id)


def test_resuming_leaves_at_least_one_working_day(world: World) -> None:
    """Counting days (DOMAIN.md): a clock resumes with what was left, at least one working
    day: the unit answers after verification's last day, the decision still has a day."""
    cid = verifying(world)
    on(world, "2026-04-14 16:00")  # verification's last day: paused with 0 left
    drive(world, cid, "objection", ["forward"])
    assert timers(world, cid)["verify"]["remaining"] == 0
    on(world, "2026-04-30 10:00")  # answered before Labour Day
    drive(world, cid, "objection", ["unit_answer"])
    assert due(world, cid, "verify") == date(2026, 5, 6)


# -- repair -------------------------------------------------------------------------------------


def test_repair_deadlines_count_from_the_filing_day(world: World) -> None:
    """国办发〔2025〕22号 (10 working days from the application) and 民法典 Art. 201: a case
    keyed in on 04-07 for an application filed on Thursday 04-02 counts from 04-02."""
    case = open_repair(world, filed_on=date(2026, 4, 2))
    t = timers(world, case.case_id)
    # After 04-02: 04-03, 04-07, 04-08 (Qingming 04-04–04-06).
    assert t["acceptance_due"]["due_day"] == date(2026, 4, 8)
    assert t["result_due"]["due_day"] == date(2026, 4, 17)  # …04-09, 10, 13–17


def test_repair_acceptance_counts_from_the_application(world: World) -> None:
    """国办发〔2025〕22号: acceptance within 3 working days of the application; forwarding
    lies within that period, it does not start it."""
    case = open_repair(world)
    on(world, "2026-04-08 16:00")
    drive(world, case.case_id, "repair", ["forward"])
    assert due(world, case.case_id, "acceptance_due") == date(2026, 4, 10)  # not 04-13


def test_repair_extension_stays_within_the_overall_deadline(world: World) -> None:
    """国办发〔2025〕22号: the result within 10 working days of the application binds the
    whole case; a review extension may not carry the review past it."""
    case = open_repair(world)  # result due 04-21
    on(world, "2026-04-08 10:00")
    drive(world, case.case_id, "repair", ["forward", "accept"])  # review due 04-15
    drive(
        world,
        case.case_id,
        "repair",
        ["request_extension"],
        {"request_extension": {"days": 5, "reason": "需现场核查"}},
    )
    eng = world.engine
    version = eng.case_view(case.case_id, SYSTEM)["version"]
    with pytest.raises(TransitionNotAllowed) as err:
        eng.advance(case.case_id, "approve_extension", world.actor("amr_reviewer"), {}, version)
    assert "2026-04-21" in err.value.message_zh and "最多可延期4个工作日" in err.value.message_zh
    drive(
        world,
        case.case_id,
        "repair",
        ["reject_extension", "request_extension", "approve_extension"],
        {"request_extension": {"days": 4, "reason": "需现场核查"}},
    )
    assert due(world, case.case_id, "review_due") == date(2026, 4, 21)
    assert due(world, case.case_id, "result_due") == date(2026, 4, 21)


def test_repair_supplement_during_review_pauses_both_clocks(world: World) -> None:
    """DOMAIN.md procedure 2 step 3 (补正, clock paused), during the review as at acceptance."""
    case = open_repair(world)
    drive(world, case.case_id, "repair", ["forward", "accept", "request_supplement"])
    t = timers(world, case.case_id)
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "review_supplement"
    assert (t["review_due"]["status"], t["result_due"]["status"]) == ("paused", "paused")
    assert (t["review_due"]["remaining"], t["result_due"]["remaining"]) == (5, 10)
    on(world, "2026-04-10 10:00")
    drive(world, case.case_id, "repair", ["supplement"])
    assert due(world, case.case_id, "review_due") == date(2026, 4, 17)
    assert due(world, case.case_id, "result_due") == date(2026, 4, 24)


def test_order_58_cases_have_an_overall_deadline_marked_as_ours(world: World) -> None:
    """NDRC Order No. 58 (v1): a case filed before 2026-04-01 still has an overall deadline;
    the figure is ours (its text was not at hand), and the definition says so."""
    case = open_repair(world, filed_on=date(2026, 3, 31))
    assert case.definition_version == 1
    assert "result_due" in timers(world, case.case_id)
    spec = builtin().get("repair", 1).timers["result_due"]
    assert spec.basis.startswith("(default)")


def test_repair_eligibility_begins_the_day_after_the_minimum_period(world: World) -> None:
    """民法典 Arts. 201–202: three months of publicity from 01-31 end on 04-30; one may apply
    from 05-01. That day is not a deadline, so it is not moved off Labour Day (Art. 203
    extends the last day of a period for acting, not the first day one may act)."""
    rec = world.record(severity="general", published_from=date(2026, 1, 31))
    on(world, "2026-04-30 10:00")
    with pytest.raises(Ineligible) as err:
        open_repair(world, rec)
    assert err.value.earliest == date(2026, 5, 1)
    on(world, "2026-05-01 10:00")
    assert open_repair(world, rec).state == "submitted"
    assert PAYLOADS["request_supplement"]["items"]


def test_the_review_window_is_not_cut_short(world: World) -> None:
    """The applicant has 15 days from the result notice's delivery to ask for a review
    (复核): only the clock closes the case when they pass, or staff on a written waiver."""
    case = open_objection(world)
    steps = ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"]
    drive(world, case.case_id, "objection", steps, {"propose_decision": UPHELD})
    handler = world.actor("office_handler")
    version = world.engine.case_view(case.case_id, SYSTEM)["version"]
    with pytest.raises(Forbidden):  # the window runs (waiting for the delivery, here)
        world.engine.advance(case.case_id, "finalize", handler, {}, version)
    with pytest.raises(TransitionNotAllowed, match="future"):
        world.engine.advance(
            case.case_id, "close_after_waiver", handler, {"waived_on": "2026-04-08"}, version
        )
    drive(
        world,
        case.case_id,
        "objection",
        ["record_delivery"],
        {"record_delivery": {"delivered_on": "2026-04-07"}},
    )
    assert due(world, case.case_id, "review_window") == date(2026, 4, 22)
    on(world, "2026-04-22 12:00")  # the last day: still open
    Deadlines(world.engine).sweep()
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "notified"
    on(world, "2026-04-23 00:00")  # the day after: the clock closes it
    Deadlines(world.engine).sweep()
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "closed"

    waived = open_objection(world)
    drive(world, waived.case_id, "objection", steps, {"propose_decision": UPHELD})
    version = world.engine.case_view(waived.case_id, SYSTEM)["version"]
    done = world.engine.advance(
        waived.case_id, "close_after_waiver", handler, {"waived_on": "2026-04-23"}, version
    )
    assert done.state == "closed"
