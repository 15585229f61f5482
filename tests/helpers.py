"""Test helpers: a valid payload for every trigger, and the way into every state."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import APPLICANT, World
from engine.service import SYSTEM, Actor, Advanced, Opened

PAYLOADS: dict[str, dict[str, Any]] = {
    "accept": {},
    "reject": {"reasons": "申请事项不属于异议范围", "legal_basis": "《条例》第三十六条"},
    "request_supplement": {"items": ["营业执照副本", "行政处罚撤销决定书"]},
    "supplement": {"comment": "已补正"},
    "deem_withdrawn": {},
    "mark_disputed": {},
    "forward": {},
    "unit_answer": {"finding": "record_wrong", "reasons": "处罚决定已于2026年3月撤销"},
    "propose_decision": {
        "outcome": "revoked",
        "reasons": "原处罚决定已被撤销",
        "legal_basis": "《行政处罚法》第四十八条",
    },
    "approve_decision": {},
    "return_decision": {"reason": "需补充核查"},
    "notify": {},
    "request_review": {"grounds": "不服核查结果"},
    "review_confirm": {"reasons": "原决定正确"},
    "review_overturn": {"reasons": "原决定认定事实不清"},
    "finalize": {},
    "restore_reputation": {"measures": "在信用网站发布更正声明"},
    "withdraw": {},
    "request_extension": {"days": 5, "reason": "需向外单位调取材料"},
    "approve_extension": {},
    "reject_extension": {"reason": "无正当理由"},
    "approve": {"reasons": "已履行义务并完成整改", "legal_basis": "《信用修复管理办法》"},
    "deny": {"reasons": "未履行行政处罚决定", "legal_basis": "《信用修复管理办法》第十条"},
    "revoke_repair": {"reasons": "提供虚假材料", "legal_basis": "《信用修复管理办法》第二十条"},
}

OBJECTION_PATHS: dict[str, list[str]] = {
    "submitted": [],
    "awaiting_supplement": ["request_supplement"],
    "accepted": ["accept"],
    "verifying": ["accept", "mark_disputed"],
    "forwarded": ["accept", "mark_disputed", "forward"],
    "answered": ["accept", "mark_disputed", "forward", "unit_answer"],
    "decision_proposed": ["accept", "mark_disputed", "propose_decision"],
    "decided": ["accept", "mark_disputed", "propose_decision", "approve_decision"],
    "notified": ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"],
    "under_review": [
        "accept", "mark_disputed", "propose_decision", "approve_decision", "notify",
        "request_review",
    ],
    "restoring": [
        "accept", "mark_disputed", "propose_decision", "approve_decision", "notify", "finalize",
    ],
    "closed": [
        "accept", "mark_disputed", "propose_decision", "approve_decision", "notify", "finalize",
        "restore_reputation",
    ],
    "not_accepted": ["reject"],
    "withdrawn": ["withdraw"],
    "deemed_withdrawn": ["request_supplement", "deem_withdrawn"],
}

REPAIR_PATHS: dict[str, list[str]] = {
    "submitted": [],
    "forwarded": ["forward"],
    "awaiting_supplement": ["forward", "request_supplement"],
    "reviewing": ["forward", "accept"],
    "repaired": ["forward", "accept", "approve"],
    "denied": ["forward", "accept", "deny"],
    "not_accepted": ["forward", "reject"],
    "withdrawn": ["withdraw"],
    "deemed_withdrawn": ["forward", "request_supplement", "deem_withdrawn"],
    "repair_revoked": ["forward", "accept", "approve", "revoke_repair"],
}

OBJECTION_INTAKE = {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True}
REPAIR_INTAKE = {"grounds": "已缴清罚款并完成整改", "obligations_met": True, "commitment_signed": True}


def open_objection(w: World, record_id: int | None = None, **kw: Any) -> Opened:
    return w.engine.open_case(
        procedure="objection",
        record_id=record_id or w.record(),
        applicant=APPLICANT,
        actor=w.actor("office_handler"),
        payload=OBJECTION_INTAKE,
        **kw,
    )


def open_repair(w: World, record_id: int | None = None, filed_on: date | None = None,
                **kw: Any) -> Opened:
    return w.engine.open_case(
        procedure="repair",
        record_id=record_id or w.record(),
        applicant=APPLICANT,
        actor=w.actor("office_handler"),
        payload=REPAIR_INTAKE,
        filed_on=filed_on,
        **kw,
    )


def actor_for(w: World, procedure: str, trigger: str) -> Actor:
    """The natural actor for a trigger: the clock, the determining unit, or the office."""
    if trigger in ("deem_withdrawn",):
        return SYSTEM
    unit_triggers = {
        "objection": {"unit_answer"},
        "repair": {"accept", "reject", "request_supplement", "approve", "deny",
                   "request_extension", "approve_extension", "reject_extension"},
    }[procedure]
    dept = "amr" if trigger in unit_triggers else "office"
    approver = trigger in {"approve_decision", "return_decision", "review_confirm",
                           "review_overturn", "approve_extension", "reject_extension",
                           "approve", "deny"}
    if trigger == "revoke_repair":
        return w.actor("office_credit_office")
    return w.actor(f"{dept}_{'reviewer' if approver else 'handler'}")


def drive(w: World, case_id: int, procedure: str, steps: list[str],
          payloads: dict[str, dict[str, Any]] | None = None) -> Advanced | None:
    last = None
    for trig in steps:
        version = w.engine.case_view(case_id, SYSTEM)["version"]
        payload = (payloads or {}).get(trig, PAYLOADS[trig])
        last = w.engine.advance(case_id, trig, actor_for(w, procedure, trig), payload, version)
    return last
