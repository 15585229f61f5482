"""Guards: pure predicates that decide whether a transition may happen now.

A guard sees a `Context` (the case's data, the payload of the command, the record, today's date
and the procedure's rules) and returns a `Verdict` that says why when it refuses, so the refusal
reaches the user as a reason, not as a bare "not allowed".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from states.calendar import add_months
from states.records import PUBLICITY_MONTHS, RECTIFICATION_REQUIRED, RecordState


@dataclass(frozen=True)
class Context:
    case_data: Mapping[str, Any]
    payload: Mapping[str, Any]
    record: RecordState | None
    today: date
    rules: Mapping[str, Any] = field(default_factory=dict)
    # Who fires the trigger (None where no one does yet: listing what a case allows).
    actor_name: str | None = None
    actor_role: str | None = None


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
# Outcomes that find published information wrong, so it must be withdrawn or corrected on
# the platform (行政处罚法 Art. 48: within three working days).
WRONG_INFORMATION_OUTCOMES = frozenset(
    {"corrected", "supplemented", "publication_stopped", "removed", "revoked"}
)
# Outcomes that change the record's content and so need the corrected text.
CONTENT_OUTCOMES = frozenset({"corrected", "supplemented"})


def listing_wrongful(ctx: Context) -> Verdict:
    if ctx.case_data.get("outcome") in WRONGFUL_OUTCOMES:
        return OK
    return Verdict(
        False, "决定结果不涉及错误列入", "the decision does not find the listing wrongful"
    )


def information_wrong(ctx: Context) -> Verdict:
    if ctx.case_data.get("outcome") in WRONG_INFORMATION_OUTCOMES:
        return OK
    return Verdict(
        False, "决定未认定公示信息有误", "the decision does not find the information wrong"
    )


def extension_requested(ctx: Context) -> Verdict:
    if ctx.case_data.get("extension_requested"):
        return OK
    return Verdict(False, "尚无待批准的延期申请", "no extension request is pending")


def first_supplement(ctx: Context) -> Verdict:
    """一次性告知: every missing item is listed in one request at the formal check. A second
    request is refused; the office decides on what it has (accept, or refuse with reasons)."""
    if not ctx.case_data.get("supplement_requested"):
        return OK
    return Verdict(
        False,
        "已一次性告知需补正的全部材料，不得再次要求补正；请依据现有材料作出受理或不予受理的决定",
        "every missing item was listed at once in the first request (一次性告知); a second "
        "request is not allowed: accept or refuse on the documents at hand",
    )


def first_stage_supplement(ctx: Context) -> Verdict:
    """During verification (or a repair's review) material may be asked for once, listed at
    once, as at the formal check."""
    if not ctx.case_data.get("stage_supplement_requested"):
        return OK
    return Verdict(
        False,
        "核查阶段已一次性要求补充材料，不得再次要求；请依据现有材料作出决定",
        "material was already asked for once during verification, every item at once; "
        "decide on what is at hand",
    )


# The order of staff roles for a review (复核) by the next level.
REVIEW_RANK: Mapping[str, int] = {"handler": 1, "reviewer": 2, "head": 3}


def review_by_next_level(ctx: Context) -> Verdict:
    """A review is decided at the next level: not by the person who approved the decision,
    and by a role above theirs (DOMAIN.md, procedure 1, step 8)."""
    decided = ctx.case_data.get("decided_by") or {}
    if ctx.actor_name is None:
        return OK  # listing what the case allows: judged when someone fires it
    if decided.get("name") == ctx.actor_name:
        return Verdict(
            False,
            "作出原决定的人员不得办理复核，复核须由上一级人员办理",
            "the person who approved the decision may not decide its review; "
            "it goes to the next level",
        )
    mine, theirs = REVIEW_RANK.get(ctx.actor_role or ""), REVIEW_RANK.get(decided.get("role", ""))
    if mine is not None and theirs is not None and mine <= theirs:
        return Verdict(
            False,
            "复核须由高于原决定审核人的上一级人员办理",
            "a review is decided by a role above the one that approved the decision",
        )
    return OK


def _dated_between_filing_and_today(
    ctx: Context, field: str, what_zh: str, what_en: str
) -> Verdict:
    """A date the applicant's or a letter's act happened on: not after today, not before the
    filing (a required field: when missing, the payload check reports it)."""
    raw = ctx.payload.get(field)
    if raw is None:
        return OK
    day = date.fromisoformat(str(raw))
    filed = ctx.case_data.get("filed_on")
    if day > ctx.today:
        return Verdict(False, f"{what_zh}不能晚于今天", f"{what_en} cannot be in the future")
    if filed and day < date.fromisoformat(str(filed)):
        return Verdict(
            False, f"{what_zh}不能早于申请日期", f"{what_en} cannot be before the filing"
        )
    return OK


def delivery_date_valid(ctx: Context) -> Verdict:
    """A delivery recorded by hand happened between the filing and today."""
    return _dated_between_filing_and_today(ctx, "delivered_on", "送达日期", "the delivery date")


def waiver_date_valid(ctx: Context) -> Verdict:
    """A written waiver of the review (复核) dated between the filing and today."""
    return _dated_between_filing_and_today(ctx, "waived_on", "放弃复核的日期", "the waiver date")


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
    rectification = rec.content.get("rectification") or {}
    if rectification.get("status") == RECTIFICATION_REQUIRED:
        # Seed 000 item 13: a body identified as seriously dishonest rectifies first; repair
        # follows the accepted rectification (and the minimum publicity period).
        return Verdict(
            False,
            "该记录的整改尚未验收通过，整改验收通过且公示满最短期限后方可申请信用修复",
            "the rectification this record orders has not been accepted; repair can be applied "
            "for once it is and the minimum publicity period has passed",
        )
    earliest = earliest_application(rec, _min_publicity_months(ctx, rec.severity))
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


def earliest_application(rec: RecordState, months: int) -> date:
    """The first day a repair may be applied for.

    A minimum publicity period of N months counts as a period does (民法典 Art. 201, 202): the
    day of publication is not counted, and the period's last day is the same day N months on
    (the month's last day if it is shorter). It has *passed* the day after that, which is the
    earliest day to apply. That day is not a deadline, so it is not moved off a weekend or a
    holiday (Art. 203 extends the last day of a period for acting, it does not delay the first
    day one may act): an application can be filed online on any day. A bar after a revoked
    repair ends at the end of its last day (`repair_barred_until`), so the day after it.
    """
    earliest = rec.published_from if months == 0 else add_months(rec.published_from, months)
    if months:
        earliest += timedelta(days=1)
    if rec.repair_barred_until is not None:
        earliest = max(earliest, rec.repair_barred_until + timedelta(days=1))
    return earliest


def _min_publicity_months(ctx: Context, severity: str) -> int:
    table = ctx.rules.get("min_publicity_months") or {}
    if severity in table:
        return int(table[severity])
    return PUBLICITY_MONTHS.get(severity, (0, 0))[0]


def referred(ctx: Context) -> Verdict:
    """The case has already opened its linked case (a complaint referred for identification):
    used with `unless`, so a case refers once."""
    if ctx.case_data.get("referred"):
        return OK
    return Verdict(False, "尚未移送", "not referred yet")


GUARDS: Mapping[str, Guard] = {
    "referred": referred,
    "listing_wrongful": listing_wrongful,
    "extension_requested": extension_requested,
    "corrections_given": corrections_given,
    "record_disputable": record_disputable,
    "commitment_given": commitment_given,
    "repair_eligible": repair_eligible,
    "information_wrong": information_wrong,
    "first_supplement": first_supplement,
    "first_stage_supplement": first_stage_supplement,
    "review_by_next_level": review_by_next_level,
    "delivery_date_valid": delivery_date_valid,
    "waiver_date_valid": waiver_date_valid,
}
