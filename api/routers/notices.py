"""Notices as sent (and their PDFs), and the outbox's dead letters with a manual retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import ActorDep, ApplicantDep, ClientDep, EngineDep
from api.problems import responses
from api.routers.applicants import CaseNo
from api.routers.cases import CaseId
from api.schemas import NoticeOut, OutboxItem
from engine import access
from engine.factory import build_delivery
from engine.pdf import notice_pdf
from engine.queries import case_notices, list_outbox, notice
from states.errors import Conflict, Forbidden, NotFound

router = APIRouter(tags=["notices"])
NoticeId = Annotated[int, Path(ge=1, le=2**53)]
PDF: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/pdf": {"example": "%PDF-1.4 …"}},
        "description": "The notice as a PDF",
    }
}


def pdf_response(row: dict[str, Any]) -> Response:
    """A stored notice as a PDF download (the API, the console and the portal all use this)."""
    footer = f"案件编号 {row['case_no']} · {row['template']} v{row['template_version']} · redress"
    body = notice_pdf(row["subject"], row["body"], footer)
    name = f"{row['case_no']}-{row['event_seq']:02d}-{row['name']}-{row['lang']}.pdf"
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/cases/{case_id}/notices",
    response_model=list[NoticeOut],
    responses=responses(401, 404, 422),
    summary="Notices sent for a case",
)
def notices_of_case(
    case_id: CaseId,
    engine: EngineDep,
    actor: ActorDep,
    client: ClientDep,
    lang: Annotated[str | None, Query(pattern="^(zh|en)$")] = None,
) -> list[dict[str, Any]]:
    rows = case_notices(engine, case_id, actor, lang)
    access.seen(engine, actor, "notice", "", channel="api", client=client, case_id=case_id)
    return rows


@router.get(
    "/notices/{notice_id}/pdf",
    response_class=Response,
    responses={**responses(401, 404, 422), **PDF},
    summary="A notice as PDF",
)
def notice_as_pdf(
    notice_id: NoticeId, engine: EngineDep, actor: ActorDep, client: ClientDep
) -> Response:
    row = notice(engine, notice_id, actor)
    access.seen(
        engine,
        actor,
        "notice",
        row["subject"],
        channel="api",
        client=client,
        case_id=int(row["case_id"]),
    )
    return pdf_response(row)


@router.get(
    "/status/{case_no}/notices/{notice_id}/pdf",
    response_class=Response,
    responses={**responses(404, 422, 429), **PDF},
    summary="One of my notices as PDF (header X-Access-Code)",
    tags=["applicants"],
)
def my_notice_as_pdf(
    case_no: CaseNo, notice_id: NoticeId, actor: ApplicantDep, engine: EngineDep
) -> Response:
    return pdf_response(notice(engine, notice_id, actor))


@router.get(
    "/outbox",
    response_model=list[OutboxItem],
    responses=responses(401, 403, 422),
    summary="Messages by status: dead letters that need a hand",
)
def outbox(
    engine: EngineDep,
    actor: ActorDep,
    status: Annotated[str, Query(pattern="^(dead|pending|sent)$")] = "dead",
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[dict[str, Any]]:
    if actor.role not in ("handler", "reviewer", "head", "credit_office", "admin"):
        raise Forbidden("staff only", "仅限工作人员")
    return list_outbox(engine, actor, status, limit)


@router.post(
    "/outbox/{message_id}/retry",
    response_model=OutboxItem,
    responses=responses(401, 403, 404, 409, 422),
    summary="Send a dead letter again (its attempts stay recorded)",
)
def retry(
    message_id: Annotated[int, Path(ge=1, le=2**53)], engine: EngineDep, actor: ActorDep
) -> dict[str, Any]:
    if actor.role not in ("reviewer", "head", "credit_office", "admin"):
        raise Forbidden(
            "a reviewer, head or the credit office retries messages",
            "仅审核人、负责人或信用管理部门可重发",
        )
    visible = {m["id"]: m for m in list_outbox(engine, actor, "dead", 200)}
    if message_id not in visible:
        for status in ("pending", "sent"):
            if any(m["id"] == message_id for m in list_outbox(engine, actor, status, 200)):
                zh = "待发送" if status == "pending" else "已发送"
                raise Conflict(
                    f"message {message_id} is not a dead letter (it is {status})",
                    f"消息{message_id}不是死信（当前状态：{zh}）",
                )
        raise NotFound(f"no dead letter {message_id}", f"没有编号为{message_id}的死信")
    build_delivery(engine).retry(message_id)
    return {**visible[message_id], "status": "pending", "attempts": 0}
