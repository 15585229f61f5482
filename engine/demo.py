"""Demo data: an office, two determining units, staff, records, and cases in every state.

`redress demo` loads it into an empty database so a new user has something to look at; the
tests use the same sample payloads and paths into each state.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.service import SYSTEM, Actor, Engine, Opened
from states.calendar import add_months
from states.errors import Conflict
from states.identifiers import make_resident_id, make_uscc

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
    "request_review": {"review_grounds": "不服核查结果"},
    "review_confirm": {"reasons": "原决定正确"},
    "review_overturn": {"reasons": "原决定认定事实不清"},
    "finalize": {},
    "close_after_waiver": {"waived_on": "2026-04-07"},
    "restore_reputation": {"measures": "在信用网站发布更正声明"},
    "withdraw": {},
    "evidence_lapsed": {},
    "suspend_for_testing": {"reason": "需委托检测机构检验"},
    "resume_verification": {"comment": "检验报告已出具"},
    "record_delivery": {"delivered_on": "2026-04-07"},
    "request_extension": {"days": 5, "reason": "需向外单位调取材料"},
    "approve_extension": {},
    "reject_extension": {"reason": "无正当理由"},
    "approve": {"reasons": "已履行义务并完成整改", "legal_basis": "《信用修复管理办法》"},
    "deny": {"reasons": "未履行行政处罚决定", "legal_basis": "《信用修复管理办法》第十条"},
    "revoke_repair": {"reasons": "提供虚假材料", "legal_basis": "《信用修复管理办法》第二十条"},
}

# Where a trigger of the same name needs other fields in another procedure.
PROCEDURE_PAYLOADS: dict[str, dict[str, dict[str, Any]]] = {
    "identification": {
        "propose": {
            "legal_basis": "《政务诚信建设实施方案》第二条；国办发〔2020〕49号",
            "proposed_measures": ["取消当年荣誉评选资格", "通报批评", "处分期内不得晋升"],
            "source_category": "government_sanction",
            "publicity_months": 12,
        },
        "send_prior_notice": {},
        "file_statement": {"statement": "合同款项已于2026年3月支付完毕，不应认定为严重失信"},
        "uphold_statement": {
            "statement_answer": "经核查，款项已于认定前全部支付，陈述申辩成立",
            "reasons": "失信事实不成立",
        },
        "reject_statement": {"statement_answer": "经核查，款项逾期两年未付，陈述申辩不成立"},
        "waive_statement": {"waived_on": "2026-04-07"},
        "form_opinion": {"opinion": "拖欠中小企业账款，情节严重，建议认定为严重失信"},
        "not_identify": {"reasons": "情节轻微，不构成严重失信"},
        "tolerate": {
            "tolerance_conditions": "因政策调整导致履约延迟，已主动纠正",
            "reasons": "符合容错纠错情形",
        },
        "approve": {"rectification_requirements": "三十个工作日内付清拖欠账款并公开致歉"},
        "return_opinion": {"reasons": "认定事实需补充证据"},
        "refuse_approval": {"reasons": "证据不足"},
        "report_rectification": {"rectification_report": "拖欠账款已全部付清，已在门户网站致歉"},
        "rectification_overdue": {},
        "urge": {"comment": "请尽快完成整改"},
        "accept_rectification": {"check_opinion": "经核查，整改到位"},
        "reject_rectification": {"check_opinion": "尚有部分款项未支付"},
        "withdraw_case": {"reason": "线索不实"},
    },
    "complaint": {
        "register": {"route_note": "转市信用办办理"},
        "refer_identification": {
            "lead_department": "amr",
            "referral_reasons": "经核实，该局拖欠企业账款两年未付",
        },
        "conclude": {"finding": "substantiated", "reply": "经调查核实，反映情况属实，已责令整改"},
        "request_reexamination": {"reexam_grounds": "不认可办理结果"},
        "answer_reexamination": {"reexam_result": "upheld", "reexam_opinion": "原答复意见正确"},
        "close": {},
        "request_extension": {"days": 30, "reason": "情况复杂，需进一步调查"},
    },
}

# Payload fields that are a date of something the applicant did, filled in with today.
DATED = {
    "close_after_waiver": "waived_on",
    "record_delivery": "delivered_on",
    "waive_statement": "waived_on",
}

OBJECTION_PATHS: dict[str, list[str]] = {
    "submitted": [],
    "awaiting_supplement": ["request_supplement"],
    "accepted": ["accept"],
    "verifying": ["accept", "mark_disputed"],
    "verification_supplement": ["accept", "mark_disputed", "request_supplement"],
    "testing": ["accept", "mark_disputed", "suspend_for_testing"],
    "forwarded": ["accept", "mark_disputed", "forward"],
    "answered": ["accept", "mark_disputed", "forward", "unit_answer"],
    "decision_proposed": ["accept", "mark_disputed", "propose_decision"],
    "decided": ["accept", "mark_disputed", "propose_decision", "approve_decision"],
    "notified": ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"],
    "under_review": [
        "accept",
        "mark_disputed",
        "propose_decision",
        "approve_decision",
        "notify",
        "request_review",
    ],
    "restoring": [
        "accept",
        "mark_disputed",
        "propose_decision",
        "approve_decision",
        "notify",
        "close_after_waiver",
    ],
    "closed": [
        "accept",
        "mark_disputed",
        "propose_decision",
        "approve_decision",
        "notify",
        "close_after_waiver",
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
    "review_supplement": ["forward", "accept", "request_supplement"],
    "repaired": ["forward", "accept", "approve"],
    "denied": ["forward", "accept", "deny"],
    "not_accepted": ["forward", "reject"],
    "withdrawn": ["withdraw"],
    "deemed_withdrawn": ["forward", "request_supplement", "deem_withdrawn"],
    "repair_revoked": ["forward", "accept", "approve", "revoke_repair"],
}

OBJECTION_INTAKE: dict[str, Any] = {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True}
REPAIR_INTAKE: dict[str, Any] = {
    "grounds": "已缴清罚款并完成整改",
    "obligations_met": True,
    "commitment_signed": True,
}
IDENTIFICATION_INTAKE: dict[str, Any] = {"facts": "拖欠中小企业账款逾期两年未支付"}
COMPLAINT_INTAKE: dict[str, Any] = {
    "channel": "hotline_12345",
    "subject_kind": "government",
    "subject_name": "某区城市管理局",
    "grounds": "该局拖欠我公司工程款两年未付",
}
_HEARD = ["propose", "send_prior_notice", "file_statement", "reject_statement"]
IDENTIFICATION_PATHS: dict[str, list[str]] = {
    "opened": [],
    "proposed": ["propose"],
    "notified": ["propose", "send_prior_notice"],
    "statement_review": ["propose", "send_prior_notice", "file_statement"],
    "task_group_review": _HEARD,
    "awaiting_approval": [*_HEARD, "form_opinion"],
    "rectifying": [*_HEARD, "form_opinion", "approve"],
    "overdue": [*_HEARD, "form_opinion", "approve", "rectification_overdue"],
    "rectification_check": [*_HEARD, "form_opinion", "approve", "report_rectification"],
    "rectified": [
        *_HEARD,
        "form_opinion",
        "approve",
        "report_rectification",
        "accept_rectification",
    ],
    "not_identified": ["propose", "send_prior_notice", "file_statement", "uphold_statement"],
    "tolerated": ["propose", "send_prior_notice", "waive_statement", "tolerate"],
    "withdrawn": ["withdraw_case"],
}
COMPLAINT_PATHS: dict[str, list[str]] = {
    "received": [],
    "registered": ["register"],
    "handling": ["register", "accept"],
    "replied": ["register", "accept", "conclude"],
    "reexamining": ["register", "accept", "conclude", "request_reexamination"],
    "reexamined": [
        "register",
        "accept",
        "conclude",
        "request_reexamination",
        "answer_reexamination",
    ],
    "closed": ["register", "accept", "conclude", "close"],
    "not_accepted": ["register", "reject"],
    "withdrawn": ["withdraw"],
}
# Who fires each trigger of the two procedures the bodies of seed 000 item 2 work.
BODY_ACTORS: dict[str, dict[str, str]] = {
    "identification": {
        "form_opinion": "office_task_group",
        "not_identify": "office_task_group",
        "tolerate": "office_task_group",
        "approve": "office_leading_group",
        "return_opinion": "office_leading_group",
        "refuse_approval": "office_leading_group",
    },
    "complaint": {
        "approve_extension": "office_reviewer",
        "reject_extension": "office_reviewer",
        "answer_reexamination": "office_head",
    },
}
SYSTEM_TRIGGERS = {
    "deem_withdrawn",
    "evidence_lapsed",
    "finalize",
    "statement_lapsed",
    "rectification_overdue",
    "close",
}
UNIT_TRIGGERS = {
    "objection": {"unit_answer"},
    "repair": {
        "accept",
        "reject",
        "request_supplement",
        "approve",
        "deny",
        "request_extension",
        "approve_extension",
        "reject_extension",
    },
}
# A review (复核) is decided at the next level: the head, not the reviewer who approved.
REVIEW_TRIGGERS = {"review_confirm", "review_overturn"}
APPROVER_TRIGGERS = {
    "approve_decision",
    "return_decision",
    "approve_extension",
    "reject_extension",
    "approve",
    "deny",
}
DEPARTMENTS = (
    ("office", "市信用办", "City Credit Office", "credit_office"),
    ("amr", "市市场监管局", "Market Regulation Bureau", "unit"),
    ("hrss", "市人社局", "Human Resources Bureau", "unit"),
)
ROLES = ("handler", "reviewer", "head", "credit_office", "admin")
# The installation's declared roles (settings.extra_roles): the lead departments' staff, and
# the special task group and leading group, whose offices sit in the credit office.
BODY_STAFF = (
    ("amr", "lead_department"),
    ("hrss", "lead_department"),
    ("office", "task_group"),
    ("office", "leading_group"),
)


def actor_key(procedure: str, trigger: str) -> str:
    """The natural user for a trigger: the determining unit's or the office's staff."""
    if trigger in BODY_ACTORS.get(procedure, {}):
        return BODY_ACTORS[procedure][trigger]
    if procedure == "identification":
        return "amr_lead_department"  # the lead department, for the party too
    if procedure == "complaint":
        return "office_handler"
    if trigger == "revoke_repair":
        return "office_credit_office"
    dept = "amr" if trigger in UNIT_TRIGGERS[procedure] else "office"
    if trigger in REVIEW_TRIGGERS:
        return f"{dept}_head"
    return f"{dept}_{'reviewer' if trigger in APPROVER_TRIGGERS else 'handler'}"


@dataclass
class Staff:
    actors: dict[str, Actor] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def for_trigger(self, procedure: str, trigger: str) -> Actor:
        if trigger in SYSTEM_TRIGGERS:
            return SYSTEM  # the clock's
        return self.actors[actor_key(procedure, trigger)]


def add_staff(engine: Engine) -> Staff:
    staff = Staff()
    for dept, zh, en, kind in DEPARTMENTS:
        engine.add_department(dept, zh, en, kind=kind)
    for dept, *_ in DEPARTMENTS:
        for role in ROLES:
            name = f"{dept}_{role}"
            _, token = engine.add_user(name, role, dept)
            staff.tokens[name] = token
            staff.actors[name] = engine.authenticate(token)
    for dept, role in BODY_STAFF:
        name = f"{dept}_{role}"
        _, token = engine.add_user(name, role, dept)
        staff.tokens[name] = token
        staff.actors[name] = engine.authenticate(token)
    return staff


def drive(
    engine: Engine,
    staff: Staff,
    case_id: int,
    procedure: str,
    steps: list[str],
    payloads: dict[str, dict[str, Any]] | None = None,
) -> None:
    for trig in steps:
        version = engine.case_view(case_id, SYSTEM)["version"]
        payload = (payloads or {}).get(trig) or PROCEDURE_PAYLOADS.get(procedure, {}).get(
            trig, PAYLOADS.get(trig, {})
        )
        if trig in DATED and trig not in (payloads or {}):
            # A date the applicant gave: today's, whatever day the demo runs on.
            payload = {**payload, DATED[trig]: engine.today().isoformat()}
        engine.advance(case_id, trig, staff.for_trigger(procedure, trig), payload, version)


def sample_identifier(kind: str) -> str:
    if kind in ("enterprise", "government"):
        return make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    return make_resident_id("31010419900307" + str(uuid.uuid4().int)[:3])


SUBJECTS = (
    ("enterprise", "上海示例贸易有限公司"),
    ("enterprise", "浦江建设工程有限公司"),
    ("government", "某区城市管理局"),
    ("civil_servant", "王某某"),
    ("person", "李某"),
)


@dataclass(frozen=True)
class DemoCase:
    case_no: str
    access_code: str
    procedure: str
    version: int
    state: str


def load_demo(engine: Engine) -> tuple[Staff, list[DemoCase]]:
    """Load the demo into an empty database. Raises Conflict if it is already there."""
    staff = add_staff(engine)
    office = staff.actors["office_credit_office"]
    made: list[DemoCase] = []
    plans: list[tuple[str, date | None, str, list[str]]]
    plans = [("objection", None, s, p) for s, p in OBJECTION_PATHS.items()]
    plans += [("repair", None, s, p) for s, p in REPAIR_PATHS.items()]
    # A few cases filed before 2026-04-01 follow the Order 58 rules (version 1).
    plans += [("repair", date(2026, 3, 2), s, REPAIR_PATHS[s]) for s in ("reviewing", "repaired")]
    today = engine.today()
    for i, (procedure, filed, state, path) in enumerate(plans):
        kind, name = SUBJECTS[i % len(SUBJECTS)]
        ident = sample_identifier(kind)
        # General records published five months ago: past the 3-month minimum (repairable),
        # well inside the 12-month maximum. Order 58 cases (filed 2026-03) need older records:
        # serious ones, published 14 months before filing (1-year minimum, 3-year maximum).
        severity, published = (
            ("general", add_months(today, -5))
            if filed is None
            else ("serious", add_months(filed, -14))
        )
        record = engine.create_record(
            actor=office,
            subject_kind=kind,
            subject_name=name,
            subject_identifier=ident,
            source_category="administrative_penalty",
            severity=severity,
            determining_unit="amr",
            decision_date=published,
            published_from=published,
            content={"summary": "未按规定报送年度报告", "measures": ["限制评优评先"]},
        )
        opened = engine.open_case(
            procedure=procedure,
            record_id=record,
            applicant={
                "kind": kind,
                "name": name,
                "identifier": ident,
                "email": f"applicant{i}@example.com",
            },
            actor=staff.actors["office_handler"],
            payload=OBJECTION_INTAKE if procedure == "objection" else REPAIR_INTAKE,
            filed_on=filed,
        )
        drive(engine, staff, opened.case_id, procedure, path)
        assert opened.access_code is not None
        made.append(
            DemoCase(
                opened.case_no, opened.access_code, procedure, opened.definition_version, state
            )
        )
    made += load_bodies_demo(engine, staff)
    return staff, made


def load_bodies_demo(engine: Engine, staff: Staff) -> list[DemoCase]:
    """Identification and complaint cases in every state: a government body and a civil
    servant as parties, complaints from a named and an anonymous complainant."""
    made: list[DemoCase] = []
    for i, (state, path) in enumerate(IDENTIFICATION_PATHS.items()):
        kind, name = SUBJECTS[2 + i % 2]
        opened = open_identification(engine, staff, kind, name, f"party{i}@example.com")
        drive(engine, staff, opened.case_id, "identification", path)
        code = party_code(engine, opened.case_id) or ""
        made.append(DemoCase(opened.case_no, code, "identification", 1, state))
    for i, (state, path) in enumerate(COMPLAINT_PATHS.items()):
        opened = open_complaint(engine, staff, anonymous=i % 3 == 2, index=i)
        drive(engine, staff, opened.case_id, "complaint", path)
        made.append(DemoCase(opened.case_no, opened.access_code or "", "complaint", 1, state))
    return made


def party_code(engine: Engine, case_id: int) -> str | None:
    """The access code the last prior notice gave the party (None before one was sent)."""
    with engine.db.read() as conn:
        payload = conn.execute(
            sa.text(
                "SELECT payload FROM outbox WHERE case_id = :id AND name = 'prior_notice' "
                "ORDER BY id DESC"
            ),
            {"id": case_id},
        ).scalar()
    return None if payload is None else json.loads(payload)["context"]["access_code"]


def open_identification(
    engine: Engine, staff: Staff, kind: str, name: str, email: str | None = None
) -> Opened:
    """A lead department (AMR) opens an identification about a party."""
    person: dict[str, Any] = {"kind": kind, "name": name, "identifier": sample_identifier(kind)}
    if email:
        person["email"] = email
    return engine.open_case(
        procedure="identification",
        record_id=None,
        applicant=person,
        actor=staff.actors["amr_lead_department"],
        payload=IDENTIFICATION_INTAKE,
    )


def open_complaint(
    engine: Engine, staff: Staff, *, anonymous: bool = False, index: int = 0
) -> Opened:
    """A complaint taken by the office on the 12345 hotline."""
    person: dict[str, Any] = (
        {"anonymous": True}
        if anonymous
        else {"kind": "person", "name": "张某", "phone": f"1380000{index:04d}"}
    )
    return engine.open_case(
        procedure="complaint",
        record_id=None,
        applicant=person,
        actor=staff.actors["office_handler"],
        payload=COMPLAINT_INTAKE,
    )


__all__ = ["Conflict", "DemoCase", "Staff", "load_demo"]
