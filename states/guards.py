"""Guards: pure predicates that decide whether a transition may happen now.

A guard sees a `Context` (the case's data, the payload of the command, the record, today's date
and the procedure's rules) and returns a `Verdict` that says why when it refuses, so the refusal
reaches the user as a reason, not as a bare "not allowed".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from states.calendar import add_months
from states.records import PUBLICITY_MONTHS, RecordState


@dataclass(frozen=True)
class Context:
    case_data: Mapping[str, Any]
    payload: Mapping[str, Any]
    record: RecordState | None
    today: date
    rules: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason_zh: str = ""
    reason_en: str = ""
    # For refusals that pass with time (repair eligibility): the earliest day it could succeed.
    earliest: date | None = None

    def __bool__(self) -> bool:
        return self.ok


OK = Verdict(True)
Guard = Callable[[Context], Verdict]

# Outcomes that mean the listing itself was wrong, so reputation must be restored.
WRONGFUL_OUTCOMES = frozenset({"revoked", "removed"})
# Outcomes that change the record's content and so need the corrected text.
CONTENT_OUTCOMES = frozenset({"corrected", "supplemented"})


def listing_wrongful(ctx: Context) -> Verdict:
    if ctx.case_data.get("outcome") in WRONGFUL_OUTCOMES:
        return OK
    return Verdict(
        False, "决定结果不涉及错误列入", "the decision does not find the listing wrongful"
    )


def extension_requested(ctx: Context) -> Verdict:
    if ctx.case_data.get("extension_requested"):
        return OK
    return Verdict(False, "尚无待批准的延期申请", "no extension request is pending")


def corrections_given(ctx: Context) -> Verdict:
    outcome = ctx.payload.get("outcome")
    if outcome in CONTENT_OUTCOMES and not str(ctx.payload.get("corrections") or "").strip():
        return Verdict(
            False,
            f"结果为“{outcome}”时须填写更正或补充的内容（corrections）",
            f"outcome {outcome!r} needs the corrected or added content in 'corrections'",
        )
    return OK


def commitment_given(ctx: Context) -> Verdict:
    """An objection comes with a signed commitment that it is truthful (异议申诉信用承诺书)."""
    if ctx.payload.get("commitment_signed") is True:
        return OK
    return Verdict(
        False,
        "须签署异议申诉信用承诺书（commitment_signed）",
        "the signed commitment that the objection is truthful is required (commitment_signed)",
    )


def record_disputable(ctx: Context) -> Verdict:
    """An objection is only meaningful against a record that is still published."""
    rec = ctx.record
    if rec is not None and rec.status != "published":
        return Verdict(
            False,
            f"该记录当前状态为“{rec.status}”，不在公示中",
            f"the record is {rec.status}, not published",
        )
    return OK


def repair_eligible(ctx: Context) -> Verdict:
    """Credit repair eligibility: minimum publicity period passed, obligations met, committed."""
    rec = ctx.record
    if rec is None:
        return Verdict(False, "缺少失信记录", "no credit record given")
    if rec.status != "published":
        return Verdict(
            False,
            f"该记录当前状态为“{rec.status}”，无需修复",
            f"the record is {rec.status}; there is nothing to repair",
        )
    months = _min_publicity_months(ctx, rec.severity)
    earliest = add_months(rec.published_from, months)
    if rec.repair_barred_until is not None and rec.repair_barred_until > earliest:
        earliest = rec.repair_barred_until
    if ctx.today < earliest:
        return Verdict(
            False,
            f"尚未满足最短公示期或处于禁止申请期，最早可于{earliest.isoformat()}申请",
            f"the minimum publicity period has not passed or a bar applies; "
            f"the earliest date to apply is {earliest.isoformat()}",
            earliest,
        )
    if not ctx.payload.get("obligations_met"):
        return Verdict(
            False,
            "须已纠正失信行为并履行法定义务（obligations_met）",
            "the conduct must be corrected and legal obligations performed (obligations_met)",
        )
    if not ctx.payload.get("commitment_signed"):
        return Verdict(
            False,
            "须签署信用承诺书（commitment_signed）",
            "a signed credit commitment is required (commitment_signed)",
        )
    return OK


def _min_publicity_months(ctx: Context, severity: str) -> int:
    table = ctx.rules.get("min_publicity_months") or {}
    if severity in table:
        return int(table[severity])
    return PUBLICITY_MONTHS.get(severity, (0, 0))[0]


GUARDS: Mapping[str, Guard] = {
    "listing_wrongful": listing_wrongful,
    "extension_requested": extension_requested,
    "corrections_given": corrections_given,
    "record_disputable": record_disputable,
    "commitment_given": commitment_given,
    "repair_eligible": repair_eligible,
}
