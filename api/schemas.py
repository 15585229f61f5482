"""Request and response bodies of the HTTP API, with the examples its OpenAPI shows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from states.machine import is_clean_text


def _clean(value: str) -> str:
    if not is_clean_text(value):
        raise ValueError("contains a NUL or an invalid character")
    return value


Text = Annotated[str, AfterValidator(_clean)]
Id = Annotated[int, Field(ge=1, le=2**53)]
SubjectKind = Literal["enterprise", "government", "civil_servant", "person"]
# A procedure's name; which ones exist is the deployed definitions' business (404 otherwise).
Procedure = Annotated[str, Field(pattern="^[a-z][a-z0-9_]{0,39}$", examples=["objection"])]

EXAMPLE_USCC = "91310000MA1FL8XX1E"


def _examples(*items: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(items)})


def _input(*items: dict[str, Any]) -> ConfigDict:
    """Request bodies: a misspelled field is an error, never silently dropped."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(items)})


class ApplicantIn(BaseModel):
    model_config = _input(
        {
            "kind": "enterprise",
            "name": "上海示例贸易有限公司",
            "identifier": EXAMPLE_USCC,
            "email": "legal@example.com",
            "phone": "13800000000",
        }
    )
    kind: SubjectKind | None = Field(None, description="Required unless anonymous")
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Required unless anonymous"
    )
    identifier: (
        Annotated[
            Text,
            Field(min_length=1, max_length=40, description="统一社会信用代码 or 居民身份证号"),
        ]
        | None
    ) = Field(None, description="Required unless the procedure makes it optional (complaints)")
    email: Annotated[Text, Field(max_length=200)] | None = None
    phone: Annotated[Text, Field(max_length=40)] | None = None
    anonymous: bool | None = Field(
        None, description="An anonymous filing (complaints): no name or contact details kept"
    )


class RecordIn(BaseModel):
    model_config = _input(
        {
            "subject_kind": "enterprise",
            "subject_name": "上海示例贸易有限公司",
            "subject_identifier": EXAMPLE_USCC,
            "source_category": "administrative_penalty",
            "severity": "general",
            "determining_unit": "amr",
            "decision_date": "2026-01-05",
            "published_from": "2026-01-06",
            "content": {"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
        }
    )
    subject_kind: SubjectKind
    subject_name: Annotated[Text, Field(min_length=1, max_length=200)]
    subject_identifier: Annotated[Text, Field(min_length=1, max_length=40)]
    source_category: Literal[
        "judicial_judgment",
        "administrative_penalty",
        "disciplinary_sanction",
        "government_sanction",
        "accountability",
    ]
    severity: Literal["minor", "general", "serious"]
    determining_unit: Annotated[Text, Field(min_length=1, max_length=64)]
    decision_date: date
    published_from: date
    content: dict[str, Any] = Field(default_factory=dict)


class RecordVersionOut(BaseModel):
    version: int
    status: str
    disputed: bool
    reason: str
    actor: str
    case_id: int | None
    at: datetime
    content: dict[str, Any]


class RecordOut(BaseModel):
    model_config = _examples(
        {
            "id": 1,
            "subject_kind": "enterprise",
            "subject_name": "上海示例贸易有限公司",
            "subject_identifier": "9131**********XX1E",
            "source_category": "administrative_penalty",
            "severity": "general",
            "determining_unit": "amr",
            "decision_date": "2026-01-05",
            "published_from": "2026-01-06",
            "status": "published",
            "disputed": True,
            "version": 2,
            "content": {"summary": "未按规定公示年度报告"},
            "repair_barred_until": None,
        }
    )
    id: int
    subject_kind: str
    subject_name: str
    subject_identifier: str
    source_category: str
    severity: str
    determining_unit: str
    decision_date: date | None
    published_from: date | None
    status: str
    disputed: bool
    version: int
    content: dict[str, Any]
    repair_barred_until: date | None
    versions: list[RecordVersionOut] | None = None


class CaseIn(BaseModel):
    model_config = _input(
        {
            "procedure": "objection",
            "record_id": 1,
            "applicant": {
                "kind": "enterprise",
                "name": "上海示例贸易有限公司",
                "identifier": EXAMPLE_USCC,
            },
            "payload": {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True},
        }
    )
    procedure: Procedure
    record_id: Id | None = Field(
        None, description="The published record; none for complaints and identifications"
    )
    applicant: ApplicantIn
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="The application's own fields: objection — grounds, commitment_signed; "
        "repair — grounds, obligations_met, commitment_signed; complaint — channel, "
        "subject_name, grounds (subject_kind, subject_identifier); identification — facts.",
    )
    filed_on: date | None = Field(None, description="Defaults to today (Asia/Shanghai)")
    department_id: Annotated[Text, Field(max_length=64)] | None = None
    access_code: bool = Field(
        True, description="False: the applicant keeps no access code (an anonymous complainant)"
    )


class OpenedOut(BaseModel):
    model_config = _examples(
        {
            "case_id": 12,
            "case_no": "YY20260407K3M9QX",
            "state": "submitted",
            "version": 1,
            "procedure": "objection",
            "definition_version": 1,
            "access_code": "7KQ2M9XR4T",
            "replayed": False,
        }
    )
    case_id: int
    case_no: str
    state: str
    version: int
    procedure: str
    definition_version: int
    access_code: str | None = Field(None, description="Shown once; only its hash is kept")
    replayed: bool = False


class ActionOut(BaseModel):
    model_config = _examples(
        {
            "case_id": 12,
            "state": "accepted",
            "version": 2,
            "seq": 2,
            "replayed": False,
            "notices": ["acceptance"],
            "record_version": None,
        }
    )
    case_id: int
    state: str
    version: int
    seq: int
    replayed: bool
    notices: list[str]
    record_version: int | None


class DeadlineOut(BaseModel):
    timer: str
    label: str
    status: str
    due_day: date | None
    due_at: datetime | None
    provisional: bool
    overdue: bool
    remaining: int | None
    extended_days: int
    period: str


class ActionInfo(BaseModel):
    trigger: str
    label: dict[str, str]
    required: list[str]
    optional: list[str]
    fields: list[dict[str, Any]]


class AttachmentOut(BaseModel):
    model_config = _examples(
        {
            "id": 3,
            "filename": "撤销决定书.pdf",
            "content_type": "application/pdf",
            "size": 48213,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "uploaded_by": "office_handler",
            "uploaded_at": "2026-04-07T01:00:00Z",
        }
    )
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class CaseLink(BaseModel):
    relation: Literal["opened", "opened_from"]
    case_id: int
    case_no: str
    procedure: str
    procedure_title: str
    state: str
    state_label: str
    visible: bool  # whether the caller may open it


class CaseOut(BaseModel):
    model_config = _examples(
        {
            "id": 12,
            "case_no": "YY20260407K3M9QX",
            "procedure": "objection",
            "definition_version": 1,
            "state": "verifying",
            "state_label": "核查中",
            "summary": "记录已标注异议，正在核查。",
            "applicant_todo": None,
            "terminal": False,
            "closed": False,
            "version": 3,
            "department_id": "office",
            "determining_unit": "amr",
            "assignee_id": 4,
            "applicant": {
                "kind": "enterprise",
                "name": "上海示例贸易有限公司",
                "identifier": EXAMPLE_USCC,
            },
            "data": {"grounds": "该处罚决定已被依法撤销"},
            "filed_on": "2026-04-07",
            "opened_at": "2026-04-07T01:00:00Z",
            "closed_at": None,
            "record": {"id": 1, "version": 2, "status": "published", "disputed": True},
            "deadlines": [
                {
                    "timer": "verify",
                    "label": "核查期限",
                    "status": "active",
                    "due_day": "2026-04-14",
                    "due_at": "2026-04-14T16:00:00Z",
                    "provisional": False,
                    "overdue": False,
                    "remaining": None,
                    "extended_days": 0,
                    "period": "5 working days",
                }
            ],
            "allowed_actions": [
                {
                    "trigger": "forward",
                    "label": {"zh": "转认定单位核查", "en": "forward"},
                    "required": [],
                    "optional": ["comment"],
                    "fields": [],
                }
            ],
            "attachments": [],
        }
    )
    id: int
    case_no: str
    procedure: str
    definition_version: int
    state: str
    state_label: str
    summary: str
    applicant_todo: str | None
    terminal: bool
    closed: bool
    version: int
    department_id: str
    determining_unit: str | None  # None until a case without a record has one
    assignee_id: int | None
    applicant: dict[str, Any]
    data: dict[str, Any]
    filed_on: date | None
    opened_at: datetime | None
    closed_at: datetime | None
    record: dict[str, Any] | None  # None: a case about a subject without a published record
    deadlines: list[DeadlineOut]
    allowed_actions: list[ActionInfo]
    attachments: list[AttachmentOut] = Field(default_factory=list)
    # Cases this one opened or was opened from (a complaint and its identification).
    links: list[CaseLink] = Field(default_factory=list)


class CaseSummary(BaseModel):
    id: int
    case_no: str
    procedure: str
    definition_version: int
    state: str
    state_label: dict[str, str]
    version: int
    department_id: str
    assignee_id: int | None
    applicant: dict[str, Any]
    # Whom the case is about: the record's subject, or (no record) the complaint's subject or
    # the party; an anonymous case about no one named has none.
    subject_name: str | None
    subject_identifier: str | None  # the record's; None without a record
    filed_on: date | None
    opened_at: datetime | None
    closed_at: datetime | None
    next_due_at: datetime | None
    overdue: bool


class CaseList(BaseModel):
    model_config = _examples({"items": [], "next_cursor": None})
    items: list[CaseSummary]
    next_cursor: str | None


class EventOut(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "seq": 2,
                    "trigger": "accept",
                    "from": "submitted",
                    "to": "accepted",
                    "version": 2,
                    "actor": "office_handler",
                    "role": "handler",
                    "at": "2026-04-07T01:00:00Z",
                    "payload": {},
                    "detail": {"notices": ["acceptance"]},
                    "hash": "5c1a8f0e4b2d9c7a6e3f1b0d8c5a2e4f7b9d1c3e5a7f9b2d4c6e8a0f1b3d5c7e",
                }
            ]
        },
    )
    seq: int
    trigger: str
    from_state: str | None = Field(alias="from")
    to: str
    version: int
    actor: str
    role: str
    at: datetime | None
    payload: dict[str, Any]
    detail: dict[str, Any]
    hash: str


class AssignIn(BaseModel):
    model_config = _input({"assignee_id": 4})
    assignee_id: Id | None


class AssignOut(BaseModel):
    model_config = _examples({"case_id": 12, "assignee_id": 4, "assignee": "office_handler"})
    case_id: int
    assignee_id: int | None
    assignee: str | None


class BulkAssignIn(BaseModel):
    model_config = _input({"case_ids": [12, 13, 14], "assignee_id": 4})
    case_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]
    assignee_id: Id | None


class BulkItem(BaseModel):
    case_id: int
    ok: bool
    assignee_id: int | None = None
    status: int | None = None
    detail: str | None = None


class BulkAssignOut(BaseModel):
    model_config = _examples(
        {
            "results": [
                {"case_id": 12, "ok": True, "assignee_id": 4},
                {"case_id": 99, "ok": False, "status": 404, "detail": "no case 99"},
            ]
        }
    )
    results: list[BulkItem]


class ProcedureVersion(BaseModel):
    version: int
    title: dict[str, str]
    effective_from: date
    effective_until: date | None
    jurisdiction: str
    sha256: str
    deployed_by: str
    deployed_at: datetime


class ProcedureSummary(BaseModel):
    model_config = _examples(
        {
            "name": "repair",
            "versions": [
                {
                    "version": 1,
                    "title": {"zh": "信用修复", "en": "Credit repair"},
                    "effective_from": "2023-05-01",
                    "effective_until": "2026-03-31",
                    "jurisdiction": "default",
                    "sha256": "4f0c…",
                    "deployed_by": "system",
                    "deployed_at": "2026-12-03T08:00:00Z",
                }
            ],
        }
    )
    name: str
    versions: list[ProcedureVersion]


class ProcedureOut(ProcedureSummary):
    version: int
    definition: dict[str, Any]
    mermaid: str


class DeployIn(BaseModel):
    model_config = _input(
        {
            "document": "name: objection\nversion: 2\njurisdiction: shanghai\n...",
            "effective_from": "2027-01-01",
        }
    )

    document: str = Field(
        max_length=1_000_000, description="The procedure version as YAML (or JSON) text"
    )
    effective_from: date | None = Field(None, description="Overrides the document's own date")
    jurisdiction: str | None = Field(
        None, pattern="^[a-z][a-z0-9_-]{0,39}$", description="Overrides the document's own"
    )


class DeployOut(BaseModel):
    model_config = _examples(
        {
            "created": True,
            "message": "deployed objection v2 (shanghai)",
            "message_zh": "已部署objection v2 (shanghai)",
            "name": "objection",
            "version": 2,
            "jurisdiction": "shanghai",
            "effective_from": "2027-01-01",
            "effective_until": None,
            "sha256": "9b1f…",
            "deployed_by": "office_admin",
        }
    )

    created: bool  # False: this very content was deployed before; nothing changed
    message: str
    message_zh: str
    name: str
    version: int
    jurisdiction: str
    effective_from: date
    effective_until: date | None
    sha256: str
    deployed_by: str


class MigrationIn(BaseModel):
    model_config = _input(
        {
            "jurisdiction": "default",
            "from_version": 1,
            "to_version": 2,
            "map": {"verifying": "checking"},
            "dry_run": True,
        }
    )

    jurisdiction: str = Field("default", pattern="^[a-z][a-z0-9_-]{0,39}$")
    from_version: int = Field(ge=1, le=10000)
    to_version: int = Field(ge=1, le=10000)
    # A state the target version renamed: OLD → NEW.
    map: dict[str, str] = Field(default_factory=dict, max_length=200)
    dry_run: bool = False


class MigrationOut(BaseModel):
    model_config = _examples(
        {
            "plan": {
                "procedure": "objection",
                "jurisdiction": "default",
                "from_version": 1,
                "to_version": 2,
                "mapping": {},
                "states": [{"from": "verifying", "to": "verifying", "cases": 2}],
                "timers": [
                    {
                        "timer": "verify",
                        "change": "recomputed",
                        "old_period": "5 working days",
                        "new_period": "3 working days",
                        "cases": 2,
                    }
                ],
                "refused": [],
                "cases": 2,
            },
            "migrated": 2,
            "skipped": 0,
        }
    )

    plan: dict[str, Any]
    migrated: int
    skipped: int


class StoredProcedureOut(ProcedureVersion):
    model_config = _examples(
        {
            "name": "objection",
            "version": 1,
            "title": {"zh": "信用信息异议处理", "en": "Objection to a credit record"},
            "effective_from": "2020-01-01",
            "effective_until": None,
            "jurisdiction": "default",
            "sha256": "4f0c…",
            "deployed_by": "system",
            "deployed_at": "2026-12-03T08:00:00Z",
            "document": {"name": "objection", "version": 1, "states": ["…"]},
            "source": "# Objection (异议) …\nname: objection\n…",
            "mermaid": "stateDiagram-v2\n    [*] --> submitted\n…",
        }
    )

    name: str
    document: dict[str, Any]  # the canonical document, as stored and hashed
    source: str  # the file as deployed, comments included
    mermaid: str


class ApplicationIn(BaseModel):
    model_config = _input(
        {
            "procedure": "objection",
            "record_id": 1,
            "applicant": {
                "kind": "enterprise",
                "name": "上海示例贸易有限公司",
                "identifier": EXAMPLE_USCC,
                "phone": "13800000000",
            },
            "grounds": "该处罚决定已于2026年3月被依法撤销",
            "commitment_signed": True,
        },
        {
            "procedure": "repair",
            "record_id": 2,
            "applicant": {"kind": "person", "name": "张三", "identifier": "11010519491231002X"},
            "grounds": "已缴清罚款并完成整改",
            "obligations_met": True,
            "commitment_signed": True,
        },
    )
    procedure: Procedure
    record_id: Id
    applicant: ApplicantIn
    grounds: Annotated[Text, Field(min_length=1, max_length=4000)]
    commitment_signed: bool
    obligations_met: bool | None = Field(None, description="Credit repair only")
    comment: Annotated[Text, Field(max_length=4000)] | None = None


class ApplicationOut(BaseModel):
    model_config = _examples(
        {
            "case_no": "YY20260407K3M9QX",
            "access_code": "7KQ2M9XR4T",
            "state": "submitted",
            "state_label": "已提交",
            "status_url": "/api/v1/status/YY20260407K3M9QX",
            "replayed": False,
        }
    )
    case_no: str
    access_code: str | None
    state: str
    state_label: str
    status_url: str
    replayed: bool


class NextStep(BaseModel):
    what: str
    due_day: date | None
    due_at: datetime | None
    provisional: bool
    paused: bool
    # Counted from the day a notice reaches the applicant, which has not happened yet.
    on_delivery: bool = False


class TimelineEntry(BaseModel):
    at: datetime | None
    event: str
    label: str
    state: str
    state_label: str


class StatusDeadline(BaseModel):
    what: str
    status: str
    due_day: date | None
    provisional: bool


class StatusOut(BaseModel):
    model_config = _examples(
        {
            "case_no": "YY20260407K3M9QX",
            "procedure": "objection",
            "procedure_title": "信用信息异议处理",
            "state": "awaiting_supplement",
            "state_label": "待补正",
            "summary": "材料不齐全，审查已暂停，等待您补正。",
            "applicant_todo": "请在期限内按补正通知书提交全部材料，逾期视为撤回申请。",
            "closed": False,
            "filed_on": "2026-04-07",
            "next_step": {
                "what": "补正期限",
                "due_day": "2026-04-22",
                "due_at": "2026-04-22T16:00:00Z",
                "provisional": False,
                "paused": False,
            },
            "deadlines": [],
            "timeline": [],
            "actions": ["supplement", "withdraw"],
            "version": 2,
            "record": {"status": "published", "disputed": False},
        }
    )
    case_no: str
    procedure: str
    procedure_title: str
    state: str
    state_label: str
    summary: str
    applicant_todo: str | None
    closed: bool
    filed_on: date | None
    next_step: NextStep | None
    deadlines: list[StatusDeadline]
    timeline: list[TimelineEntry]
    actions: list[str]
    # Steps open to the applicant beyond supplement, review and withdrawal, with their fields
    # (take them with POST /status/{case_no}/actions).
    other_actions: list[dict[str, Any]] = Field(default_factory=list)
    # Letters on their way (queued, not yet delivered): "being sent", not "no notices".
    notices_sending: int = 0
    # The files the applicant supplied, as stored.
    uploads: list[dict[str, Any]] = Field(default_factory=list)
    version: int
    record: dict[str, Any] | None
    notices: list[MyNotice] = Field(default_factory=list)


class ComplaintIn(BaseModel):
    model_config = _input(
        {
            "complainant": {"kind": "person", "name": "张某", "phone": "13800000000"},
            "subject_kind": "government",
            "subject_name": "某区城市管理局",
            "grounds": "该局拖欠我公司工程款两年未付",
        },
        {
            "complainant": {"anonymous": True},
            "keep_access_code": True,
            "subject_name": "某区城市管理局",
            "grounds": "该局工作人员推诿塞责",
        },
    )
    complainant: ApplicantIn
    # Without an access code an anonymous complainant cannot follow the case at all.
    keep_access_code: bool = True
    subject_kind: Literal["government", "civil_servant", "enterprise", "person"] | None = None
    subject_name: Annotated[Text, Field(min_length=1, max_length=200)]
    subject_identifier: Annotated[Text, Field(max_length=18)] | None = None
    grounds: Annotated[Text, Field(min_length=1, max_length=4000)]


class ActionIn(BaseModel):
    model_config = _input(
        {"trigger": "file_statement", "payload": {"statement": "款项已全部支付"}},
        {"trigger": "request_reexamination", "payload": {"reexam_grounds": "不认可办理结果"}},
    )
    trigger: Annotated[str, Field(pattern="^[a-z][a-z0-9_]{0,39}$")]
    payload: dict[str, Any] = Field(default_factory=dict)


class ReviewIn(BaseModel):
    model_config = _input({"grounds": "核查结果认定事实不清，请求复核"})
    grounds: Annotated[Text, Field(min_length=1, max_length=4000)]


class WithdrawIn(BaseModel):
    model_config = _input({"reason": "已与认定单位沟通解决"})
    reason: Annotated[Text, Field(max_length=4000)] | None = None


class Health(BaseModel):
    model_config = _examples({"status": "ok", "database": "sqlite"})
    status: str
    database: str


class Check(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    model_config = _examples(
        {
            "status": "ready",
            "checks": {
                "database": {"ok": True, "detail": "postgresql answers"},
                "migrations": {"ok": True, "detail": "at head 0012"},
                "engine_loop": {"ok": True, "detail": "last good round 12 s ago"},
                "timers": {"ok": True, "detail": "no due timer waiting"},
                "outbox": {"ok": True, "detail": "no message waiting"},
            },
        }
    )
    status: Literal["ready", "not_ready"]
    checks: dict[str, Check]


class Delivery(BaseModel):
    channel: str
    status: str
    attempts: int


class NoticeOut(BaseModel):
    model_config = _examples(
        {
            "id": 7,
            "name": "objection_result",
            "lang": "zh",
            "recipient": "applicant",
            "event_seq": 7,
            "subject": "异议核查结果告知书（YY20260407K3M9QX）",
            "template": "objection_result",
            "template_version": 1,
            "created_at": "2026-04-14T02:00:00Z",
            "deliveries": [{"channel": "email", "status": "sent", "attempts": 1}],
        }
    )
    id: int
    name: str
    lang: str
    recipient: str
    event_seq: int
    subject: str
    template: str
    template_version: int
    created_at: datetime | None
    deliveries: list[Delivery]


class OutboxItem(BaseModel):
    model_config = _examples(
        {
            "id": 31,
            "kind": "notice",
            "name": "objection_result",
            "recipient": "legal@example.com",
            "channel": "email",
            "status": "dead",
            "attempts": 8,
            "last_error": "ConnectionRefusedError: [Errno 111]",
            "created_at": "2026-04-14T02:00:00Z",
            "next_attempt_at": "2026-04-14T08:00:00Z",
            "case_id": 12,
            "case_no": "YY20260407K3M9QX",
            "record_id": 1,
        }
    )
    id: int
    kind: str
    name: str
    recipient: str
    channel: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime | None
    next_attempt_at: datetime | None
    case_id: int | None
    case_no: str | None
    record_id: int | None


class MyNotice(BaseModel):
    id: int
    name: str
    subject: str
    created_at: datetime | None
    pdf_url: str


class AccessCodeRequestIn(BaseModel):
    model_config = _input({"contact": "legal@example.com"}, {"contact": "13800000000"})
    contact: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=200,
            description="The email address or phone number given when the case was filed",
        ),
    ]


class AccessCodeRequestOut(BaseModel):
    """The same answer whether or not the number and contact matched a case."""

    model_config = _examples(
        {
            "message": "If the details match those on file for the case, a new access code has "
            "been sent to the email address or phone number on file, and the old code no longer "
            "works. Use it with the case number to follow your case.",
            "message_zh": "若信息与案件登记一致，新的查询码已发送至登记的电子邮箱或手机，"
            "原查询码即时失效。请查收后凭案件编号和新的查询码查询办理进度。",
        }
    )
    message: str
    message_zh: str
