"""Pieces shared by the built-in procedure definitions: labels, the field catalogue, notices."""

from __future__ import annotations

from typing import Any

STAFF = ("handler", "reviewer", "head", "credit_office")
APPROVERS = ("reviewer", "head")
# A decision is approved by a reviewer; its review (复核) goes to the next level, the head.
DECIDERS = ("reviewer",)
REVIEWERS = ("head",)


def L(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


def escalate(*steps: tuple[str, str]) -> list[dict[str, str]]:
    return [{"notify": who, "after": after} for who, after in steps]


# Assignee at the due moment, the reviewer a working day later, the head a day after that.
DEFAULT_ESCALATION = escalate(
    ("assignee", "0 working days"), ("reviewer", "1 working day"), ("head", "1 working day")
)

OUTCOMES = (
    "corrected",
    "supplemented",
    "publication_stopped",
    "removed",
    "revoked",
    "upheld",
    "unresolved",
)

FIELDS: list[dict[str, Any]] = [
    {"name": "reason", "label": L("理由", "reason")},
    {"name": "reasons", "label": L("理由", "reasons")},
    {"name": "legal_basis", "label": L("法律依据", "legal basis")},
    {"name": "grounds", "label": L("申请理由", "grounds")},
    {"name": "review_grounds", "label": L("复核理由", "grounds for review")},
    {"name": "comment", "label": L("备注", "comment")},
    {"name": "outcome", "type": "choice", "choices": OUTCOMES, "label": L("处理结果", "outcome")},
    {"name": "corrections", "label": L("更正或补充内容", "corrected or added content")},
    {"name": "items", "type": "list", "label": L("需补正的材料", "missing items")},
    {
        "name": "days",
        "type": "int",
        "minimum": 1,
        "maximum": 30,
        "label": L("延期工作日数", "days"),
    },
    {
        "name": "finding",
        "type": "choice",
        "choices": ("record_wrong", "record_right", "partly_wrong"),
        "label": L("核查意见", "finding"),
    },
    {"name": "measures", "label": L("恢复信誉措施", "measures taken")},
    {"name": "delivered_on", "type": "date", "label": L("送达日期", "delivered on")},
    {"name": "obligations_met", "type": "bool", "label": L("已履行法定义务", "obligations met")},
    {
        "name": "commitment_signed",
        "type": "bool",
        "label": L("已签署信用承诺书", "commitment signed"),
    },
]


def notice(name: str, zh: str, en: str, recipient: str = "applicant") -> dict[str, Any]:
    return {"name": name, "label": L(zh, en), "template": name, "recipient": recipient}


def trigger(
    name: str,
    label: dict[str, str],
    sources: list[str] | str,
    dest: str,
    roles: tuple[str, ...] | list[str],
    **kw: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "sources": [sources] if isinstance(sources, str) else sources,
        "dest": dest,
        "roles": list(roles),
        **kw,
    }
