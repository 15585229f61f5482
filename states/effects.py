"""Effects of a transition on the credit record, as pure functions.

Each effect reads the record and the command's context and returns the record's next version
(`RecordChange`) or None when nothing changes. The engine writes the change as a new version,
never in place, and queues its push to the public credit platform in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from states.calendar import add_months
from states.guards import Context
from states.records import (
    PUBLICITY_MONTHS,
    RECTIFICATION_ACCEPTED,
    RECTIFICATION_REQUIRED,
    NewRecord,
    RecordChange,
    RecordState,
)

Effect = Callable[[RecordState, Context], RecordChange | None]
Creation = Callable[[Context], NewRecord]

# Objection outcomes (DOMAIN.md, procedure 1, step 5) and the record status each leads to.
# The outcome in words for the record version's reason (the objection file's choice labels).
OUTCOME_WORDS: Mapping[str, tuple[str, str]] = {
    "corrected": ("更正", "corrected"),
    "supplemented": ("补充", "supplemented"),
    "publication_stopped": ("停止公开", "publication stopped"),
    "removed": ("移出名单", "removed from the list"),
    "revoked": ("撤销", "revoked"),
    "upheld": ("维持", "upheld"),
    "unresolved": ("无法确认", "could not be confirmed"),
}
OBJECTION_OUTCOMES: Mapping[str, str | None] = {
    "corrected": None,  # stays published, with corrected content
    "supplemented": None,  # stays published, with added content
    "publication_stopped": "publication_stopped",
    "removed": "removed",
    "revoked": "revoked",
    "upheld": None,
    "unresolved": None,  # stays, with the objection and verification noted beside it
}


def mark_disputed(rec: RecordState, ctx: Context) -> RecordChange | None:
    if rec.disputed:
        return None
    return RecordChange(reason="异议标注 / marked disputed", disputed=True)


def unmark_disputed(rec: RecordState, ctx: Context) -> RecordChange | None:
    if not rec.disputed:
        return None
    return RecordChange(reason="撤销异议标注 / dispute mark removed", disputed=False)


def apply_objection_outcome(rec: RecordState, ctx: Context) -> RecordChange | None:
    outcome = str(ctx.case_data.get("outcome"))
    content: dict[str, Any] = dict(rec.content)
    note = {
        "case_no": ctx.case_data.get("case_no"),
        "outcome": outcome,
        "reasons": ctx.case_data.get("reasons"),
        "legal_basis": ctx.case_data.get("legal_basis"),
        "on": ctx.today.isoformat(),
    }
    if outcome == "corrected":
        content["corrected_text"] = ctx.case_data.get("corrections")
    elif outcome == "supplemented":
        content["supplement_text"] = ctx.case_data.get("corrections")
    elif outcome == "unresolved":
        # 征信业管理条例 Art. 25: the record stays, the objection is recorded beside it.
        content["objection_annotations"] = [*content.get("objection_annotations", ()), note]
    content["last_decision"] = note
    return RecordChange(
        reason="异议处理结果：{} / objection outcome: {}".format(
            *OUTCOME_WORDS.get(outcome, (outcome, outcome))
        ),
        status=OBJECTION_OUTCOMES.get(outcome),
        disputed=False,
        content=content,
    )


def restore_reputation(rec: RecordState, ctx: Context) -> RecordChange | None:
    content = dict(rec.content)
    content["reputation_restored"] = {
        "measures": ctx.case_data.get("measures"),
        "on": ctx.today.isoformat(),
    }
    return RecordChange(reason="恢复名誉、消除影响 / reputation restored", content=content)


def repair(rec: RecordState, ctx: Context) -> RecordChange | None:
    content = dict(rec.content)
    # Publication and sharing stop and punishment measures are lifted (DOMAIN.md, repair 6).
    content["measures_lifted"] = True
    content["repaired_on"] = ctx.today.isoformat()
    return RecordChange(reason="准予信用修复 / credit repaired", status="repaired", content=content)


def revoke_repair(rec: RecordState, ctx: Context) -> RecordChange | None:
    content = dict(rec.content)
    content["measures_lifted"] = False
    content["repair_revoked_on"] = ctx.today.isoformat()
    bar_months = int(ctx.rules.get("bar_months_after_revocation", 36))
    return RecordChange(
        reason="撤销信用修复，重新公示 / repair revoked, record republished",
        status="published",
        content=content,
        repair_barred_until=add_months(ctx.today, bar_months),
    )


def publish_serious_record(ctx: Context) -> NewRecord:
    """An identification's approval publishes the record as serious, with its measures and
    publicity period, and the rectification it orders (seed 000 items 2 and 13)."""
    data = ctx.case_data
    low, high = PUBLICITY_MONTHS["serious"]
    months = min(max(int(data.get("publicity_months") or low), low), high)
    return NewRecord(
        reason="严重失信认定，公示 / serious dishonesty identified, published",
        source_category=str(data.get("source_category")),
        severity="serious",
        decision_date=ctx.today,
        published_from=ctx.today,
        publicity_months=months,
        content={
            "identification_case": data.get("case_no"),
            "facts": data.get("facts"),
            "legal_basis": data.get("legal_basis"),
            "measures": list(data.get("proposed_measures") or ()),
            "publicity_months": months,
            "rectification": {
                "status": RECTIFICATION_REQUIRED,
                "requirements": data.get("rectification_requirements"),
            },
        },
    )


def accept_rectification(rec: RecordState, ctx: Context) -> RecordChange | None:
    content = dict(rec.content)
    content["rectification"] = {
        **dict(content.get("rectification") or {}),
        "status": RECTIFICATION_ACCEPTED,
        "accepted_on": ctx.today.isoformat(),
        "case_no": ctx.case_data.get("case_no"),
    }
    return RecordChange(reason="整改验收通过 / rectification accepted", content=content)


CREATIONS: Mapping[str, Creation] = {"publish_serious_record": publish_serious_record}

EFFECTS: Mapping[str, Effect] = {
    "accept_rectification": accept_rectification,
    "mark_disputed": mark_disputed,
    "unmark_disputed": unmark_disputed,
    "apply_objection_outcome": apply_objection_outcome,
    "restore_reputation": restore_reputation,
    "repair": repair,
    "revoke_repair": revoke_repair,
}
