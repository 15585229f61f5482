"""Credit repair (信用修复), in two effective-dated versions.

Version 1 follows NDRC Order No. 58 (in force 2023-05-01 to 2026-03-31); version 2 follows NDRC
Order No. 36 (from 2026-04-01) together with 国办发〔2025〕22号: acceptance within 3 working days
and the result to the applicant within 10 working days of the application, an overall deadline that
spans the whole case and pauses while documents are awaited. The filing date picks the version.
Periods marked (default) are ours to choose.
"""

from __future__ import annotations

from typing import Any

from states.procedures.common import (
    APPROVERS,
    DEFAULT_ESCALATION,
    FIELDS,
    STAFF,
    L,
    notice,
    trigger,
)

OPEN_STATES = ["submitted", "forwarded", "awaiting_supplement", "reviewing", "review_supplement"]


def _repair(
    *,
    version: int,
    effective_from: str,
    effective_until: str | None,
    legal_basis: str,
    forward_period: tuple[str, str],
    acceptance_period: tuple[str, str],
    review_period: tuple[str, str],
    review_max: str,
    overall_period: tuple[str, str],
) -> dict[str, Any]:
    """Each period is (period, basis): the rule it follows, or "(default) ..." where ours."""
    overall = ["result_due"]
    timers: list[dict[str, Any]] = [
        {
            "name": "forward_due",
            "label": L("转送期限", "forwarding"),
            "period": forward_period[0],
            "basis": forward_period[1],
            "reminder_before": None,
            "escalation": DEFAULT_ESCALATION,
        },
        {
            # Counted from the application, not from forwarding: forwarding lies within it.
            "name": "acceptance_due",
            "label": L("受理期限", "acceptance decision"),
            "period": acceptance_period[0],
            "basis": acceptance_period[1],
            "scope": "case",
            "escalation": DEFAULT_ESCALATION,
        },
        {
            "name": "supplement_due",
            "label": L("补正期限", "supplement deadline"),
            "period": "15 calendar days",
            "basis": "(default) 默认规则：补正期限15日，逾期视为撤回",
            "reminder_before": "2 working days",
            "expiry_trigger": "deem_withdrawn",
        },
        {
            "name": "evidence_due",
            "label": L("补充材料期限", "deadline for more material"),
            "period": "5 working days",
            "basis": "(default) 默认规则：核查中补充材料5个工作日，逾期依现有材料决定",
            "reminder_before": "1 working day",
            "expiry_trigger": "evidence_lapsed",
        },
        {
            "name": "review_due",
            "label": L("核查期限", "review"),
            "period": review_period[0],
            "basis": review_period[1],
            "scope": "case",
            "escalation": DEFAULT_ESCALATION,
            "extension": {
                "request_trigger": "request_extension",
                "approve_trigger": "approve_extension",
                "max_total": review_max,
                "max_count": 1,
                # The overall deadline is the outer bound: an extended review still ends
                # within it.
                "within": "result_due",
            },
        },
        {
            "name": "result_due",
            "label": L("修复结果办结期限", "result to the applicant"),
            "period": overall_period[0],
            "basis": overall_period[1],
            "scope": "case",
            "escalation": DEFAULT_ESCALATION,
        },
    ]
    return {
        "name": "repair",
        "version": version,
        "title": L("信用修复", "Credit repair"),
        "effective_from": effective_from,
        "effective_until": effective_until,
        "jurisdiction": "default",
        "legal_basis": legal_basis,
        "fields": FIELDS,
        "intake_required": ["grounds", "obligations_met", "commitment_signed"],
        "intake_optional": ["comment"],
        "intake_guards": ["repair_eligible"],
        "intake_notices": ["receipt"],
        "rules": {
            "min_publicity_months": {"minor": 0, "general": 3, "serious": 12},
            "bar_months_after_revocation": 36,  # (default; Shenzhen Art. 83)
        },
        "states": [
            {
                "name": "submitted",
                "initial": True,
                "label": L("已提交", "Submitted"),
                "summary": L(
                    "您的修复申请已收到，将转送作出认定的单位。",
                    "Your application has been received and goes to the unit that made the "
                    "finding.",
                ),
                "starts": ["forward_due", "acceptance_due", *overall],
            },
            {
                "name": "forwarded",
                "label": L("待受理", "Awaiting acceptance"),
                "summary": L(
                    "认定单位正在审查是否受理。",
                    "The determining unit is deciding whether to accept it.",
                ),
            },
            {
                "name": "awaiting_supplement",
                "label": L("待补正", "Awaiting documents"),
                "summary": L(
                    "材料不齐全，办理已暂停，等待您补正。",
                    "Documents are missing; the case is paused until you supply them.",
                ),
                "applicant_todo": L(
                    "请在期限内按补正通知书提交全部材料，逾期视为撤回申请。",
                    "Supply every item listed in the request by the deadline, "
                    "or the application is deemed withdrawn.",
                ),
                "starts": ["supplement_due"],
                "pauses": ["acceptance_due", *overall],
            },
            {
                "name": "reviewing",
                "label": L("核查中", "Under review"),
                "summary": L("申请已受理，正在核查。", "Accepted and being reviewed."),
                "stops": ["acceptance_due"],
                "starts": ["review_due"],
            },
            {
                "name": "review_supplement",
                "label": L("待补充材料", "Awaiting material"),
                "summary": L(
                    "核查需要您补充材料，办理期限暂停计算。",
                    "The review needs more material from you; the clock is paused.",
                ),
                "applicant_todo": L(
                    "请在期限内按通知提交所列全部材料；逾期未提交的，将依据现有材料作出决定。",
                    "Supply every item listed by the deadline; otherwise the decision is made "
                    "on the material at hand.",
                ),
                "starts": ["evidence_due"],
                "pauses": ["review_due", *overall],
            },
            {
                "name": "repaired",
                "settled": True,
                "label": L("准予修复", "Repaired"),
                "summary": L(
                    "准予信用修复：相关记录已停止公示，惩戒措施已解除。",
                    "Repair granted: the record is no longer published and measures are lifted.",
                ),
                "stops": ["review_due", *overall],
            },
            {
                "name": "denied",
                "terminal": True,
                "label": L("不予修复", "Denied"),
                "summary": L(
                    "不予修复，理由见不予修复决定书。",
                    "Repair denied; the decision document gives the reasons.",
                ),
            },
            {
                "name": "not_accepted",
                "terminal": True,
                "label": L("不予受理", "Not accepted"),
                "summary": L(
                    "申请不予受理，理由见不予受理通知书。",
                    "The application was not accepted; the notice gives the reasons.",
                ),
            },
            {
                "name": "withdrawn",
                "terminal": True,
                "label": L("已撤回", "Withdrawn"),
                "summary": L("申请已撤回。", "The application was withdrawn."),
            },
            {
                "name": "deemed_withdrawn",
                "terminal": True,
                "label": L("视为撤回", "Deemed withdrawn"),
                "summary": L(
                    "未在期限内补正，申请视为撤回。",
                    "The missing documents did not arrive in time; the application is deemed "
                    "withdrawn.",
                ),
            },
            {
                "name": "repair_revoked",
                "terminal": True,
                "label": L("修复已撤销", "Repair revoked"),
                "summary": L(
                    "修复因以欺骗等不正当手段取得而被撤销，记录重新公示，一定期限内不得再次申请。",
                    "The repair was obtained by fraud and is revoked: the record is published "
                    "again and no new application is possible for a period.",
                ),
            },
        ],
        "timers": timers,
        "notices": [
            notice("receipt", "收件回执", "acknowledgement of receipt"),
            notice("acceptance", "受理通知书", "notice of acceptance"),
            notice("non_acceptance", "不予受理通知书", "notice of non-acceptance"),
            notice("supplement_request", "补正通知书", "request for missing documents"),
            notice("deemed_withdrawal", "视为撤回通知书", "notice of deemed withdrawal"),
            notice("withdrawal_confirmed", "撤回确认书", "confirmation of withdrawal"),
            notice(
                "forward_to_unit", "信用修复申请转办函", "forwarded application", "determining_unit"
            ),
            notice("repair_decision", "信用修复决定书", "decision granting repair"),
            notice("repair_denial", "不予修复决定书", "decision denying repair"),
            notice("repair_revocation", "撤销修复决定书", "decision revoking the repair"),
        ],
        "triggers": [
            trigger(
                "forward",
                L("转送认定单位", "forward to the determining unit"),
                "submitted",
                "forwarded",
                ("handler", "credit_office"),
                optional=["comment"],
                notices=["forward_to_unit"],
            ),
            trigger(
                "accept",
                L("受理", "accept"),
                "forwarded",
                "reviewing",
                STAFF,
                scope="determining_unit",
                optional=["comment"],
                notices=["acceptance"],
            ),
            trigger(
                "reject",
                L("不予受理", "refuse to accept"),
                "forwarded",
                "not_accepted",
                STAFF,
                scope="determining_unit",
                required=["reasons", "legal_basis"],
                notices=["non_acceptance"],
            ),
            # 一次性告知: one request at acceptance, every missing item listed.
            trigger(
                "request_supplement",
                L("要求补正", "request missing documents"),
                "forwarded",
                "awaiting_supplement",
                STAFF,
                scope="determining_unit",
                required=["items"],
                optional=["comment"],
                guards=["first_supplement"],
                sets={"supplement_requested": True},
                notices=["supplement_request"],
            ),
            trigger(
                "request_supplement",
                L("要求补正", "request missing documents"),
                "reviewing",
                "review_supplement",
                STAFF,
                scope="determining_unit",
                required=["items"],
                optional=["comment"],
                guards=["first_stage_supplement"],
                sets={"stage_supplement_requested": True},
                notices=["supplement_request"],
            ),
            trigger(
                "supplement",
                L("补正材料", "supply documents"),
                "awaiting_supplement",
                "forwarded",
                ("applicant", "handler"),
                scope="any",
                optional=["comment"],
            ),
            trigger(
                "supplement",
                L("补正材料", "supply documents"),
                "review_supplement",
                "reviewing",
                ("applicant", "handler"),
                scope="any",
                optional=["comment"],
            ),
            trigger(
                "evidence_lapsed",
                L("逾期未补充，依现有材料核查", "no material in time: review on what is at hand"),
                "review_supplement",
                "reviewing",
                ("system",),
            ),
            trigger(
                "deem_withdrawn",
                L("视为撤回", "deem withdrawn"),
                "awaiting_supplement",
                "deemed_withdrawn",
                ("system",),
                notices=["deemed_withdrawal"],
            ),
            trigger(
                "approve",
                L("准予修复", "grant repair"),
                "reviewing",
                "repaired",
                APPROVERS,
                scope="determining_unit",
                required=["reasons", "legal_basis"],
                effect="repair",
                notices=["repair_decision"],
            ),
            trigger(
                "deny",
                L("不予修复", "deny repair"),
                "reviewing",
                "denied",
                APPROVERS,
                scope="determining_unit",
                required=["reasons", "legal_basis"],
                notices=["repair_denial"],
            ),
            trigger(
                "revoke_repair",
                L("撤销修复", "revoke the repair (fraud)"),
                "repaired",
                "repair_revoked",
                ("head", "credit_office"),
                scope="any",
                required=["reasons", "legal_basis"],
                effect="revoke_repair",
                notices=["repair_revocation"],
            ),
            trigger(
                "withdraw",
                L("撤回申请", "withdraw"),
                OPEN_STATES,
                "withdrawn",
                ("applicant", "handler"),
                scope="any",
                optional=["reason"],
                notices=["withdrawal_confirmed"],
            ),
            trigger(
                "request_extension",
                L("申请延期", "request an extension"),
                "reviewing",
                "=",
                ("handler",),
                scope="determining_unit",
                required=["days", "reason"],
                unless=["extension_requested"],
                sets={"extension_requested": True},
            ),
            trigger(
                "approve_extension",
                L("批准延期", "approve the extension"),
                "reviewing",
                "=",
                APPROVERS,
                scope="determining_unit",
                optional=["comment"],
                guards=["extension_requested"],
                sets={"extension_requested": False},
            ),
            trigger(
                "reject_extension",
                L("不批准延期", "refuse the extension"),
                "reviewing",
                "=",
                APPROVERS,
                scope="determining_unit",
                required=["reason"],
                guards=["extension_requested"],
                sets={"extension_requested": False},
            ),
        ],
    }


# NDRC Order No. 58 (2023). Its article text was not at hand here: every figure is our
# default, and marked so.
REPAIR_V1 = _repair(
    version=1,
    effective_from="2023-05-01",
    effective_until="2026-03-31",
    legal_basis="失信行为纠正后的信用信息修复管理办法（试行）（国家发展改革委令第58号）",
    forward_period=("2 working days", "(default) 默认规则：2个工作日内转送认定单位"),
    acceptance_period=("3 working days", "(default) 自收到申请之日起3个工作日"),
    review_period=("15 working days", "(default) 自受理之日起15个工作日"),
    review_max="30 working days",
    overall_period=("33 working days", "(default) 受理3个工作日加核查最长30个工作日"),
)

# NDRC Order No. 36 (2026) with 国办发〔2025〕22号: accept in 3, result within 10 of applying.
REPAIR_V2 = _repair(
    version=2,
    effective_from="2026-04-01",
    effective_until=None,
    legal_basis="信用修复管理办法（国家发展改革委令第36号）；国办发〔2025〕22号",
    forward_period=("1 working day", "(default) 默认规则：1个工作日内转送认定单位"),
    acceptance_period=(
        "3 working days",
        "国办发〔2025〕22号：自收到申请之日起3个工作日内决定是否受理",
    ),
    review_period=("5 working days", "(default) 默认规则：受理后5个工作日，可延期"),
    review_max="10 working days",
    overall_period=("10 working days", "国办发〔2025〕22号：自申请之日起10个工作日内办结"),
)
