"""Cases: file, list, read, act on, assign, attach. Each handler is one engine call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from api.deps import ActorDep, ClientDep, EngineDep, LangDep, model_response
from api.problems import PreconditionRequired, from_error, responses
from api.schemas import (
    ActionOut,
    AssignIn,
    AssignOut,
    AttachmentOut,
    BulkAssignIn,
    BulkAssignOut,
    BulkItem,
    CaseIn,
    CaseList,
    CaseOut,
    EventOut,
    OpenedOut,
    Text,
)
from api.security import attachment_response
from engine import access
from engine.attachments import Attachments
from engine.lane import WriteLane
from engine.queries import CaseFilter, list_cases
from engine.service import Advanced, Engine
from states.errors import FieldError, Forbidden, InvalidPayload, NotFound, RedressError

router = APIRouter(tags=["cases"])
CaseId = Annotated[int, Path(ge=1, le=2**53, description="Case id")]
TriggerName = Annotated[str, Path(pattern="^[a-z_]{1,60}$", description="e.g. accept")]
IdemKey = Annotated[
    Text | None,
    Header(max_length=200, description="Repeat a request safely: same key, same result"),
]

ACTION_EXAMPLES = {
    "accept": {"summary": "accept (no fields)", "value": {}},
    "request_supplement": {
        "summary": "request missing documents",
        "value": {"items": ["营业执照副本", "行政处罚撤销决定书"]},
    },
    "propose_decision": {
        "summary": "propose a decision",
        "value": {
            "outcome": "revoked",
            "reasons": "原处罚决定已被撤销",
            "legal_basis": "《行政处罚法》第四十八条",
        },
    },
}


@router.post(
    "/cases",
    status_code=201,
    response_model=OpenedOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="File a case for an applicant (handler)",
)
def file_case(
    body: CaseIn, engine: EngineDep, actor: ActorDep, idempotency_key: IdemKey = None
) -> OpenedOut:
    if not actor.is_staff:
        raise Forbidden(
            "only staff file cases here; applicants use /applications",
            "仅限工作人员；申请人请使用 /applications",
        )
    opened = engine.open_case(
        procedure=body.procedure,
        record_id=body.record_id,
        applicant=body.applicant.model_dump(exclude_none=True),
        actor=actor,
        payload=body.payload,
        filed_on=body.filed_on,
        department_id=body.department_id,
        idempotency_key=idempotency_key,
        access_code=body.access_code,
    )
    return OpenedOut(**opened.__dict__)


@router.get(
    "/cases",
    response_model=CaseList,
    responses=responses(401, 422),
    summary="The work queue, filtered, newest first, in pages",
)
def cases(
    engine: EngineDep,
    actor: ActorDep,
    procedure: Annotated[str | None, Query(pattern="^[a-z][a-z0-9_]{0,39}$")] = None,
    state: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
    department: Annotated[Text | None, Query(max_length=64)] = None,
    assignee: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    overdue: bool | None = None,
    due_before: datetime | None = None,
    subject_identifier: Annotated[Text | None, Query(max_length=40)] = None,
    case_no: Annotated[Text | None, Query(max_length=32)] = None,
    q: Annotated[Text | None, Query(max_length=100, description="Free text")] = None,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CaseList:
    if due_before is not None and due_before.tzinfo is None:
        raise InvalidPayload(
            [
                FieldError(
                    "due_before",
                    "timezone",
                    "needs a time zone, e.g. 2026-04-20T00:00:00+08:00",
                    "须带时区",
                )
            ]
        )
    items, nxt = list_cases(
        engine,
        actor,
        CaseFilter(
            procedure,
            state,
            department,
            assignee,
            overdue,
            due_before,
            subject_identifier,
            case_no,
            q,
        ),
        cursor,
        limit,
    )
    return CaseList.model_validate({"items": items, "next_cursor": nxt})


@router.post(
    "/cases/bulk/assign",
    response_model=BulkAssignOut,
    responses=responses(401, 422),
    summary="Assign many cases; each answered alone",
)
def bulk_assign(body: BulkAssignIn, engine: EngineDep, actor: ActorDep) -> BulkAssignOut:
    results = []
    for cid in dict.fromkeys(body.case_ids):
        try:
            out = engine.assign(cid, body.assignee_id, actor)
            results.append(BulkItem(case_id=cid, ok=True, assignee_id=out["assignee_id"]))
        except RedressError as exc:
            answer = from_error(exc)
            results.append(
                BulkItem(case_id=cid, ok=False, status=answer.status_code, detail=exc.message)
            )
    return BulkAssignOut(results=results)


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    responses=responses(401, 404, 422),
    summary="A case: state, version, record, deadlines, what you may do now",
)
def case(
    case_id: CaseId,
    engine: EngineDep,
    actor: ActorDep,
    lang: LangDep,
    response: Response,
    client: ClientDep,
) -> dict[str, Any]:
    view = engine.case_view(case_id, actor, lang)
    view["attachments"] = Attachments(engine).list(case_id)
    access.seen(
        engine,
        actor,
        "case",
        "",
        channel="api",
        client=client,
        case_id=case_id,
        record_id=(view.get("record") or {}).get("id"),
    )
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


def parse_if_match(if_match: str | None) -> int:
    if if_match is None:
        raise PreconditionRequired(
            "If-Match: <version> is required; read the case first",
            "须提供 If-Match 版本号（先读取案件）",
        )
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise InvalidPayload(
            [
                FieldError(
                    "If-Match",
                    "format",
                    'must be the case\'s version, e.g. "3"',
                    '须为案件版本号，如 "3"',
                )
            ]
        )
    return int(text)


@router.post(
    "/cases/{case_id}/actions/{trigger}",
    response_model=ActionOut,
    responses=responses(401, 403, 404, 409, 412, 422, 428),
    summary="Fire a trigger (If-Match: the version you saw)",
)
async def act(
    case_id: CaseId,
    trigger: TriggerName,
    request: Request,
    actor: ActorDep,
    payload: Annotated[dict[str, Any], Body(openapi_examples=ACTION_EXAMPLES)] = {},  # noqa: B006
    if_match: Annotated[str | None, Header(max_length=40)] = None,
    idempotency_key: IdemKey = None,
) -> Response:
    engine: Engine = request.app.state.engine
    lane: WriteLane = request.app.state.lane
    version = parse_if_match(if_match)
    result = await lane.run(
        engine.advance, case_id, trigger, actor, payload, version, idempotency_key
    )
    return action_response(result)


def action_response(result: Advanced) -> Response:
    """An advance's answer (here and in api/hot.py): ActionOut, the new version as ETag."""
    return model_response(
        ActionOut,
        result.__dict__ | {"notices": list(result.notices)},
        headers={"ETag": f'"{result.version}"'},
    )


@router.get(
    "/cases/{case_id}/events",
    response_model=list[EventOut],
    responses=responses(401, 404, 422),
    summary="The case's events, oldest first",
)
def events(case_id: CaseId, engine: EngineDep, actor: ActorDep) -> list[dict[str, Any]]:
    return engine.events(case_id, actor)


@router.post(
    "/cases/{case_id}/assign",
    response_model=AssignOut,
    responses=responses(401, 403, 404, 422),
    summary="Assign to a handler",
)
def assign(case_id: CaseId, body: AssignIn, engine: EngineDep, actor: ActorDep) -> AssignOut:
    return AssignOut(**engine.assign(case_id, body.assignee_id, actor))


@router.post(
    "/cases/{case_id}/attachments",
    status_code=201,
    response_model=AttachmentOut,
    responses=responses(401, 403, 404, 413, 422),
    summary="Upload evidence (PDF, JPEG, PNG, OFD, DOCX; 10 MB)",
)
async def upload(
    case_id: CaseId, file: UploadFile, request: Request, engine: EngineDep, actor: ActorDep
) -> AttachmentOut:
    # FastAPI binds the last `file` part and drops the others: refuse them instead. The form
    # is the one FastAPI parsed (cached on the request), not read a second time.
    if len((await request.form()).getlist("file")) > 1:
        raise InvalidPayload(
            [FieldError("file", "too_many", "one file per request", "每次只能上传一个文件")]
        )
    data = await read_limited(file, engine.settings.max_upload_bytes)
    stored = Attachments(engine).add(case_id, actor, file.filename or "", data)
    meta = {a["id"]: a for a in Attachments(engine).list(case_id)}[stored.id]
    return AttachmentOut(**meta)


async def read_limited(file: UploadFile, limit: int) -> bytes:
    """Read at most limit+1 bytes, so an oversized upload is refused without reading it all."""
    data = await file.read(limit + 1)
    return data


attachments_router = APIRouter(tags=["cases"])


@attachments_router.get(
    "/attachments/{attachment_id}",
    responses={
        **responses(401, 404, 422),
        200: {
            "content": {"application/octet-stream": {"example": "%PDF-1.7 …"}},
            "description": "The file, as uploaded",
        },
    },
    summary="Download an attachment",
    response_class=FileResponse,
)
def attachment(
    attachment_id: Annotated[int, Path(ge=1, le=2**53)],
    engine: EngineDep,
    actor: ActorDep,
    client: ClientDep,
) -> FileResponse:
    meta, path = Attachments(engine).get(attachment_id, actor)
    if not path.is_file():  # the row without its file: a 404, not the 500 FileResponse gives
        raise NotFound(f"no attachment {attachment_id}", f"没有编号为{attachment_id}的附件")
    access.seen(
        engine,
        actor,
        "attachment",
        meta["filename"],
        channel="api",
        client=client,
        case_id=int(meta["case_id"]),
    )
    return attachment_response(meta, path)
