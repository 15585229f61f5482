"""Whole cases driven only through HTTP, from the application to the end, with the applicant
following along on GET /status at every step."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from api_support import PDF, Api, make_api
from conftest import APPLICANT, World, at

from engine.channels import LogChannel
from engine.outbox import Delivery, Policy, router


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


class Applicant:
    """The applicant's side: what GET /status shows, step by step."""

    def __init__(self, api: Api, procedure: str, record_id: int) -> None:
        r = api.apply(procedure, record_id=record_id)
        assert r.status_code == 201, r.text
        self.api = api
        self.case_no: str = r.json()["case_no"]
        self.code: str = r.json()["access_code"]
        [item] = api.get("/cases", "office_handler", params={"case_no": self.case_no}).json()[
            "items"
        ]
        self.case_id: int = item["id"]
        self.version = 1
        self.events = ["submit"]

    def status(self) -> dict[str, Any]:
        r = self.api.status(self.case_no, self.code)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def staff(self, trigger: str, user: str, payload: dict[str, Any] | None = None) -> None:
        r = self.api.act(self.case_id, trigger, user, self.version, payload)
        assert r.status_code == 200, (trigger, r.text)
        assert r.headers["etag"] == f'"{r.json()["version"]}"'
        self.version = r.json()["version"]
        self.events.append(trigger)

    def sees(
        self,
        state: str,
        label: str,
        *,
        todo: bool = False,
        next_what: str | None = None,
        next_due: str | None = None,
        actions: list[str] | None = None,
        closed: bool = False,
    ) -> dict[str, Any]:
        s = self.status()
        assert (s["state"], s["state_label"]) == (state, label)
        assert (s["applicant_todo"] is not None) == todo, s["applicant_todo"]
        assert s["closed"] is closed and s["version"] == self.version
        assert [t["event"] for t in s["timeline"]] == self.events
        assert s["timeline"][-1]["state"] == state and s["timeline"][-1]["state_label"] == label
        if closed:
            assert s["next_step"] is None and s["deadlines"] == []
        else:
            assert s["next_step"] is not None
            # A period counted from a notice's delivery has no day before the delivery.
            assert s["next_step"]["due_day"] or s["next_step"]["on_delivery"]
            assert s["next_step"]["due_day"] in [d["due_day"] for d in s["deadlines"]]
        if next_what is not None:
            assert s["next_step"]["what"] == next_what, s["next_step"]
        if next_due is not None:
            assert s["next_step"]["due_day"] == next_due, s["next_step"]
            assert s["next_step"]["provisional"] is False and s["next_step"]["paused"] is False
        if actions is not None:
            assert s["actions"] == actions
        return s


def test_objection_from_application_to_closure(api: Api) -> None:
    rid = api.world.record()
    me = Applicant(api, "objection", rid)
    me.sees(
        "submitted", "已提交", next_what="形式审查期限", next_due="2026-04-09", actions=["withdraw"]
    )

    # Documents are missing: the office asks, the applicant supplies them two days later.
    me.staff("request_supplement", "office_handler", {"items": ["营业执照副本", "撤销决定书"]})
    s = me.sees("awaiting_supplement", "待补正", todo=True, actions=["supplement", "withdraw"])
    assert {
        "what": "补正期限",
        "status": "active",
        "due_day": "2026-04-22",
        "provisional": False,
    } in s["deadlines"]
    api.world.clock.set(at("2026-04-09 10:00"))
    r = api.status(
        me.case_no,
        me.code,
        "/supplement",
        method="POST",
        files=[("files", ("撤销决定书.pdf", PDF, "application/pdf"))],
        data={"comment": "已补正"},
    )
    assert r.status_code == 200, r.text
    me.version += 1
    me.events.append("supplement")
    # The formal check resumes: the pause day counted, two working days remain from 9 April.
    me.sees("submitted", "已提交", next_what="形式审查期限", next_due="2026-04-13")
    [att] = api.case(me.case_id)["attachments"]
    assert att["sha256"] == hashlib.sha256(PDF).hexdigest()

    me.staff("accept", "office_handler")
    me.sees(
        "accepted", "已受理", next_what="异议标注期限", next_due="2026-04-10", actions=["withdraw"]
    )
    me.staff("mark_disputed", "office_handler")
    s = me.sees("verifying", "核查中", next_what="核查期限", next_due="2026-04-16")
    assert s["record"] == {"status": "published", "disputed": True}
    me.staff("forward", "office_handler")
    me.sees("forwarded", "认定单位核查中", next_due="2026-04-16")

    # The determining unit answers; it sees the applicant masked.
    unit_view = api.case(me.case_id, "amr_handler")
    assert "*" in unit_view["applicant"]["identifier"]
    assert [a["trigger"] for a in unit_view["allowed_actions"]] == ["unit_answer"]
    me.staff("unit_answer", "amr_handler", {"finding": "record_wrong", "reasons": "处罚决定已撤销"})
    me.sees("answered", "认定单位已答复", next_what="核查期限")

    me.staff(
        "propose_decision",
        "office_handler",
        {"outcome": "revoked", "reasons": "原处罚决定已被撤销", "legal_basis": "《行政处罚法》"},
    )
    me.sees("decision_proposed", "待审核")
    problem_r = api.act(me.case_id, "approve_decision", "office_handler", me.version)
    assert problem_r.status_code == 403  # the handler may not approve their own proposal
    me.staff("approve_decision", "office_reviewer")
    s = me.sees("decided", "已作出决定", next_what="告知期限", next_due="2026-04-10")
    assert s["record"] == {"status": "revoked", "disputed": False}
    me.staff("notify", "office_handler")
    # The review window counts from the letter's delivery: until then it waits, and the
    # wrong published information must be withdrawn within 3 working days of the decision.
    s = me.sees(
        "notified", "已告知结果", todo=True, next_what="撤回错误公示信息期限", next_due="2026-04-14"
    )
    waiting = {"what": "申请复核期限", "status": "waiting", "due_day": None, "provisional": False}
    assert waiting in s["deadlines"]
    me.staff("record_delivery", "office_handler", {"delivered_on": "2026-04-09"})
    s = me.sees("notified", "已告知结果", todo=True)
    window = {"what": "申请复核期限", "status": "active", "due_day": "2026-04-24"}
    assert {**window, "provisional": False} in s["deadlines"]

    # The platform receives the revocation: the 3-working-day withdrawal deadline is met.
    # (Pushes for one record go in order: the dispute mark's, then the revocation's.)
    delivery = Delivery(api.world.engine, router({"log": LogChannel()}, {}), Policy())
    while delivery.deliver().sent:
        pass
    view = api.case(me.case_id)
    assert [d["status"] for d in view["deadlines"] if d["timer"] == "withdraw_due"] == ["stopped"]
    # The applicant waives the review in writing; the listing was wrongful, so reputation is
    # restored.
    me.staff("close_after_waiver", "office_handler", {"waived_on": "2026-04-09"})
    me.sees("restoring", "恢复信誉中", next_what="恢复信誉期限", next_due="2026-04-23")
    me.staff("restore_reputation", "office_handler", {"measures": "在信用网站发布更正声明"})
    s = me.sees("closed", "已办结", closed=True, actions=[])
    assert s["record"] == {"status": "revoked", "disputed": False}

    view = api.case(me.case_id)
    assert view["closed"] is True and view["terminal"] is True and view["closed_at"]
    assert view["allowed_actions"] == []
    events = api.get(f"/cases/{me.case_id}/events", "office_handler").json()
    clock = {"attach", "deadline_met"}  # the file and the clock, not the applicant's steps
    assert [e["trigger"] for e in events if e["trigger"] not in clock] == me.events
    assert [e["version"] for e in events][-1] == me.version

    # The record's history: published, disputed, revoked, reputation restored.
    rec = api.get(f"/records/{rid}", "office_credit_office").json()
    assert rec["status"] == "revoked" and rec["version"] == 4 and rec["disputed"] is False
    versions = rec["versions"]
    assert [(v["version"], v["status"], v["disputed"]) for v in versions] == [
        (1, "published", False),
        (2, "published", True),
        (3, "revoked", False),
        (4, "revoked", False),
    ]
    assert [v["case_id"] for v in versions] == [None, me.case_id, me.case_id, me.case_id]
    assert [v["actor"] for v in versions] == [
        "office_credit_office",
        "office_handler",
        "office_reviewer",
        "office_handler",
    ]
    assert versions[2]["content"]["last_decision"]["outcome"] == "revoked"
    assert versions[3]["content"]["reputation_restored"]["measures"] == "在信用网站发布更正声明"
    assert rec["content"] == versions[3]["content"]
    # The record can no longer be objected to.
    r = api.apply("objection", record_id=rid)
    assert r.status_code == 422 and r.json()["code"] == "ineligible"


def test_objection_upheld_after_review(api: Api) -> None:
    rid = api.world.record()
    me = Applicant(api, "objection", rid)
    me.staff("accept", "office_reviewer")
    me.staff("mark_disputed", "office_credit_office")
    me.staff(
        "propose_decision",
        "office_credit_office",
        {"outcome": "upheld", "reasons": "处罚决定合法有效", "legal_basis": "《条例》"},
    )
    me.staff("approve_decision", "office_reviewer")
    me.staff("notify", "office_credit_office")
    me.sees("notified", "已告知结果", todo=True)
    # The applicant disagrees (by letter); the handler records the request for review.
    me.staff("request_review", "office_handler", {"review_grounds": "不服核查结果"})
    me.sees("under_review", "复核中", next_what="复核期限", next_due="2026-04-14")
    # The review goes to the next level: the head, not the reviewer who approved.
    r = api.act(me.case_id, "review_confirm", "office_reviewer", me.version)
    assert r.status_code == 403
    me.staff("review_confirm", "office_head", {"reasons": "原决定正确"})
    s = me.sees("closed", "已办结", closed=True)
    assert s["record"] == {"status": "published", "disputed": False}
    rec = api.get(f"/records/{rid}", "amr_handler").json()
    assert [(v["status"], v["disputed"]) for v in rec["versions"]] == [
        ("published", False),
        ("published", True),
        ("published", False),
    ]
    assert rec["content"]["last_decision"]["outcome"] == "upheld"


def test_credit_repair_granted(api: Api) -> None:
    rid = api.world.record()
    me = Applicant(api, "repair", rid)
    s = me.sees(
        "submitted", "已提交", next_what="转送期限", next_due="2026-04-08", actions=["withdraw"]
    )
    assert s["procedure_title"] == "信用修复"
    # Acceptance counts from the application (22号), forwarding within it.
    assert {d["what"] for d in s["deadlines"]} == {"转送期限", "受理期限", "修复结果办结期限"}

    me.staff("forward", "office_handler")
    me.sees("forwarded", "待受理", next_what="受理期限", next_due="2026-04-10")
    # From here the determining unit decides; the office may no longer act on it.
    offered = api.case(me.case_id, "office_handler")["allowed_actions"]
    assert [a["trigger"] for a in offered] == ["withdraw"]
    me.staff("accept", "amr_handler")
    me.sees("reviewing", "核查中", next_what="核查期限", next_due="2026-04-14")
    me.staff(
        "approve",
        "amr_reviewer",
        {"reasons": "已履行义务并完成整改", "legal_basis": "《信用修复管理办法》"},
    )
    s = me.sees("repaired", "准予修复", closed=True, actions=[])
    assert s["record"] == {"status": "repaired", "disputed": False}

    rec = api.get(f"/records/{rid}", "office_credit_office").json()
    assert [(v["status"], v["actor"]) for v in rec["versions"]] == [
        ("published", "office_credit_office"),
        ("repaired", "amr_reviewer"),
    ]
    assert (
        rec["content"]["measures_lifted"] is True and rec["content"]["repaired_on"] == "2026-04-07"
    )
    view = api.case(me.case_id, "amr_reviewer")
    assert view["closed"] is True and view["terminal"] is False  # settled, may still be revoked
    assert [
        a["trigger"] for a in api.case(me.case_id, "office_credit_office")["allowed_actions"]
    ] == ["revoke_repair"]


def test_credit_repair_denied(api: Api) -> None:
    rid = api.world.record(kind="person")
    r = api.apply(
        "repair",
        record_id=rid,
        applicant={"kind": "person", "name": "张三", "identifier": "11010519491231002X"},
    )
    assert r.status_code == 201, r.text
    no, code = r.json()["case_no"], r.json()["access_code"]
    [item] = api.get("/cases", "amr_handler", params={"case_no": no}).json()["items"]
    assert item["applicant"]["identifier"] == "11***************X"  # masked for the unit
    cid, version = item["id"], 1
    for trigger, user, payload in (
        ("forward", "office_handler", None),
        ("accept", "amr_head", None),
        ("deny", "amr_head", {"reasons": "未履行行政处罚决定", "legal_basis": "《办法》第十条"}),
    ):
        out = api.act(cid, trigger, user, version, payload)
        assert out.status_code == 200, out.text
        version = out.json()["version"]
    s = api.status(no, code).json()
    assert (s["state"], s["state_label"], s["closed"]) == ("denied", "不予修复", True)
    assert s["summary"] == "不予修复，理由见不予修复决定书。"
    assert [t["event"] for t in s["timeline"]] == ["submit", "forward", "accept", "deny"]
    assert s["record"] == {"status": "published", "disputed": False}
    rec = api.get(f"/records/{rid}", "amr_handler").json()
    assert rec["version"] == 1 and rec["status"] == "published"
    # Denied is final; a new application for the same record may be filed.
    assert api.apply("repair", record_id=rid, applicant=APPLICANT).status_code == 201
