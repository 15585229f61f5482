"""The credit record (失信记录) as the procedures see it: statuses, severities, publicity periods.

Pure values only. The engine loads a record into a `RecordState`, a procedure's effect returns a
`RecordChange`, and the engine writes that change as a new version of the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

Severity = Literal["minor", "general", "serious"]
SEVERITIES: tuple[Severity, ...] = ("minor", "general", "serious")
SubjectKind = Literal["enterprise", "government", "civil_servant", "person"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("enterprise", "government", "civil_servant", "person")
SourceCategory = Literal[
    "judicial_judgment",
    "administrative_penalty",
    "disciplinary_sanction",
    "government_sanction",
    "accountability",
]
SOURCE_CATEGORIES: tuple[str, ...] = (
    "judicial_judgment",
    "administrative_penalty",
    "disciplinary_sanction",
    "government_sanction",
    "accountability",
)
SOURCE_LABELS: Mapping[str, tuple[str, str]] = {
    "judicial_judgment": ("司法裁判", "court judgment"),
    "administrative_penalty": ("行政处罚", "administrative penalty"),
    "disciplinary_sanction": ("纪律处分", "disciplinary sanction"),
    "government_sanction": ("政务处分", "government sanction"),
    "accountability": ("问责", "accountability"),
}

# published: on the platform; the others end publication in different ways.
RecordStatus = Literal[
    "published", "publication_stopped", "removed", "revoked", "repaired", "expired"
]
RECORD_STATUSES: tuple[str, ...] = (
    "published",
    "publication_stopped",
    "removed",
    "revoked",
    "repaired",
    "expired",
)

STATUS_LABELS: Mapping[str, tuple[str, str]] = {
    "published": ("公示中", "published"),
    "publication_stopped": ("已停止公示", "publication stopped"),
    "removed": ("已移出名单", "removed from the list"),
    "revoked": ("已撤销", "revoked"),
    "repaired": ("已信用修复", "credit repaired"),
    "expired": ("公示期满", "publicity period ended"),
}

# 国办发〔2025〕22号: publicity periods by severity, in months (minimum, maximum).
# Minor conduct is normally not published; when it is, for at most 3 months.
PUBLICITY_MONTHS: Mapping[str, tuple[int, int]] = {
    "minor": (0, 3),
    "general": (3, 12),
    "serious": (12, 36),
}


@dataclass(frozen=True)
class RecordState:
    id: int
    version: int
    status: str
    disputed: bool
    severity: str
    published_from: date
    content: Mapping[str, Any] = field(default_factory=dict)
    repair_barred_until: date | None = None
    # What identifies the record to its subject in a letter, beside the subject's name.
    source_category: str = ""
    decision_date: date | None = None


@dataclass(frozen=True)
class RecordChange:
    """A new version of a record. `None` fields are left as they were."""

    reason: str
    status: str | None = None
    disputed: bool | None = None
    content: Mapping[str, Any] | None = None
    repair_barred_until: date | None = None


@dataclass(frozen=True)
class NewRecord:
    """A record a case's decision creates (an identification publishes a serious record); the
    engine adds the subject (the case's party) and the determining unit (its department)."""

    reason: str
    source_category: str
    severity: str
    decision_date: date
    published_from: date
    # How long it is published, within the severity's bounds (PUBLICITY_MONTHS).
    publicity_months: int
    content: Mapping[str, Any] = field(default_factory=dict)


# Where a record's rectification stands (content["rectification"]["status"]): a record that
# must be rectified cannot be repaired until the rectification is accepted.
RECTIFICATION_REQUIRED = "required"
RECTIFICATION_ACCEPTED = "accepted"
