"""Bodies of the administrators' API: departments, users, tokens and the access log.

Requests reuse the set-up file's entries (`engine.setup.DepartmentIn`, `UserIn`), so that a
department or a user is checked alike whether it comes from `redress init`, the CLI or here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Text, _examples, _input
from engine.setup import DEPT_ID

DeptId = Annotated[str, Field(pattern=DEPT_ID)]
TokenState = Literal["live", "expired", "revoked", "rotated", "user_disabled"]


class DepartmentOut(BaseModel):
    model_config = _examples(
        {
            "id": "amr",
            "name_zh": "市市场监管局",
            "name_en": "City Market Regulation",
            "kind": "unit",
            "jurisdiction": "default",
            "email": "xinyong@amr.example.gov.cn",
            "parent": None,
            "users": 3,
        }
    )
    id: str
    name_zh: str
    name_en: str
    kind: str
    jurisdiction: str
    email: str | None
    parent: str | None = Field(description="The department above it (escalation)")
    users: int = Field(description="Active users in it")


class DepartmentPatch(BaseModel):
    model_config = _input({"email": "xinyong@amr.example.gov.cn", "parent": "office"})
    name_zh: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    name_en: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    email: Annotated[Text, Field(max_length=200)] | None = None
    parent: DeptId | None = None
    jurisdiction: Annotated[str, Field(pattern="^[a-z][a-z0-9_-]{0,39}$")] | None = Field(
        None, description="Its new cases follow this jurisdiction's procedures and calendar"
    )


class UserOut(BaseModel):
    model_config = _examples(
        {
            "id": 7,
            "name": "li.na",
            "role": "handler",
            "department": "amr",
            "email": "li.na@amr.example.gov.cn",
            "active": True,
        }
    )
    id: int
    name: str
    role: str
    department: str
    email: str | None
    active: bool


class UserPatch(BaseModel):
    model_config = _input({"role": "reviewer"}, {"active": False})
    role: Annotated[str, Field(max_length=40)] | None = None
    department: DeptId | None = None
    email: Annotated[Text, Field(max_length=200)] | None = None
    active: bool | None = Field(
        None, description="false: their tokens and console sessions stop working at once"
    )


class TokenIn(BaseModel):
    model_config = _input({"label": "laptop", "days": 30})
    label: Annotated[Text, Field(min_length=1, max_length=100)] = Field(
        description="What the token is for (shown in the list; the token never is)"
    )
    days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        None, description="Days until it expires; default: the installation's token_days"
    )


class RotateIn(BaseModel):
    model_config = _input({"days": 90})
    days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenIssuedOut(BaseModel):
    model_config = _examples(
        {
            "id": 12,
            "user": "li.na",
            "label": "laptop",
            "token": "rd_3q0sQ2b0v8c…",
            "expires_at": "2027-03-03T09:00:00+08:00",
        }
    )
    id: int
    user: str
    label: str
    token: str = Field(description="Shown this once: only its hash is kept")
    expires_at: datetime


class UserCreatedOut(BaseModel):
    model_config = _examples(
        {
            "user": {
                "id": 7,
                "name": "li.na",
                "role": "handler",
                "department": "amr",
                "email": None,
                "active": True,
            },
            "token": {
                "id": 12,
                "user": "li.na",
                "label": "initial",
                "token": "rd_3q0sQ2b0v8c…",
                "expires_at": "2027-03-03T09:00:00+08:00",
            },
        }
    )
    user: UserOut
    token: TokenIssuedOut


class TokenOut(BaseModel):
    model_config = _examples(
        {
            "id": 12,
            "user": "li.na",
            "label": "laptop",
            "created_at": "2026-12-03T09:00:00+08:00",
            "created_by": "admin",
            "expires_at": "2027-03-03T09:00:00+08:00",
            "revoked_at": None,
            "revoked_reason": None,
            "revoked_by": None,
            "state": "live",
        }
    )
    id: int
    user: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    revoked_by: str | None
    state: TokenState


class AccessOut(BaseModel):
    model_config = _examples(
        {
            "id": 41,
            "at": "2026-12-03T10:12:00+08:00",
            "actor": "li.na",
            "role": "handler",
            "what": "case",
            "case_id": 3,
            "case_no": "YY-2026-0003",
            "record_id": 5,
            "detail": "case page",
            "channel": "console",
            "client": "10.0.0.8",
        }
    )
    id: int
    at: datetime
    actor: str
    role: str
    what: Literal["case", "attachment", "notice", "record", "search"]
    case_id: int | None
    case_no: str | None
    record_id: int | None
    detail: str
    channel: str
    client: str


class AccessPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_before": None}]})
    items: list[AccessOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page")


class RecordChangeIn(BaseModel):
    """The credit office's direct act on a record, outside any case (a new version each)."""

    model_config = _input(
        {"action": "mark_disputed", "reason": "收到异议申请"},
        {
            "action": "correct",
            "reason": "认定单位更正决定书",
            "content": {"summary": "未按规定公示2025年度报告"},
        },
    )
    action: Literal[
        "mark_disputed", "unmark_disputed", "correct", "revoke", "stop_publication", "republish"
    ]
    reason: Annotated[Text, Field(min_length=1, max_length=500)]
    content: dict[str, Any] | None = Field(
        None, description="correct only: the keys of the content that change"
    )
