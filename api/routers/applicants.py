"""Applicants without an account: file, follow the case, supply documents, withdraw."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile

from api.deps import (
    AccessCode,
    ApplicantDep,
    EngineDep,
    LangDep,
    client_key,
    guarded,
    model_response,
)
from api.problems import responses
from api.routers.cases import IdemKey, read_limited
from api.schemas import (
    AccessCodeRequestIn,
    AccessCodeRequestOut,
    ActionIn,
    ApplicationIn,
    ApplicationOut,
    ComplaintIn,
    ReviewIn,
    StatusOut,
    Text,
    WithdrawIn,
)
from engine.applicants import CODE_REQUESTED, request_new_code, status_lookup, status_view
from engine.core import Opened
from engine.service import Actor, Engine
from states.errors import TransitionNotAllowed

router = APIRouter(tags=["applicants"])
CaseNo = Annotated[str, Path(pattern="^[A-Za-z0-9]{4,32}$", description="e.g. YY20260407K3M9QX")]
PUBLIC = Actor(name="applicant", role="applicant")


@router.post(
    "/applications",
    status_code=201,
    response_model=ApplicationOut,
    responses=responses(404, 409, 422),
    summary="File an objection or a repair application (no account needed)",
)
def apply(
    body: ApplicationIn, engine: EngineDep, lang: LangDep, idempotency_key: IdemKey = None
) -> ApplicationOut:
    payload: dict[str, Any] = {"grounds": body.grounds, "commitment_signed": body.commitment_signed}
    if body.obligations_met is not None:
        payload["obligations_met"] = body.obligations_met
    if body.comment:
        payload["comment"] = body.comment
    opened = engine.open_case(
        procedure=body.procedure,
        record_id=body.record_id,
        applicant=body.applicant.model_dump(exclude_none=True),
        actor=PUBLIC,
        payload=payload,
        idempotency_key=idempotency_key,
    )
    return _filed(engine, opened, lang)


def _filed(engine: Engine, opened: Opened, lang: str) -> ApplicationOut:
    """What a filing answers: the case number, the code (once) and where to follow it."""
    proc = engine.procedures.by_id(opened.definition_id)
    return ApplicationOut(
        case_no=opened.case_no,
        access_code=opened.access_code,
        state=opened.state,
        state_label=proc.states[opened.state].label.get(lang),
        status_url=f"/api/v1/status/{opened.case_no}",
        replayed=opened.replayed,
    )


@router.post(
    "/complaints",
    status_code=201,
    response_model=ApplicationOut,
    responses=responses(404, 409, 422),
    summary="File a complaint or report (投诉举报), anonymously if you wish (no account needed)",
)
def complain(
    body: ComplaintIn, engine: EngineDep, lang: LangDep, idempotency_key: IdemKey = None
) -> ApplicationOut:
    payload: dict[str, Any] = {
        "channel": "web",  # what the public files here comes through the web portal
        "subject_name": body.subject_name,
        "grounds": body.grounds,
    }
    if body.subject_kind:
        payload["subject_kind"] = body.subject_kind
    if body.subject_identifier:
        payload["subject_identifier"] = body.subject_identifier
    opened = engine.open_case(
        procedure="complaint",
        record_id=None,
        applicant=body.complainant.model_dump(exclude_none=True),
        actor=PUBLIC,
        payload=payload,
        idempotency_key=idempotency_key,
        access_code=body.keep_access_code or not body.complainant.anonymous,
    )
    return _filed(engine, opened, lang)


@router.get(
    "/status/{case_no}",
    response_model=StatusOut,
    responses=responses(404, 422, 429),
    summary="Where my case stands (header X-Access-Code)",
)
async def status(
    case_no: CaseNo,
    request: Request,
    engine: EngineDep,
    lang: LangDep,
    x_access_code: AccessCode = None,
) -> Response:
    # One thread hop and one read transaction for the code check and the whole view.
    code = x_access_code or ""
    view = await guarded(
        request,
        case_no,
        lambda guard, client: status_lookup(engine, case_no, code, lang, guard, client),
    )
    return model_response(StatusOut, view)


@router.post(
    "/status/{case_no}/supplement",
    response_model=StatusOut,
    responses=responses(404, 409, 413, 422, 429),
    summary="Supply the documents a supplement request (补正) asked for",
)
async def supplement(
    case_no: CaseNo,
    actor: ApplicantDep,
    engine: EngineDep,
    lang: LangDep,
    files: Annotated[list[UploadFile], File(description="PDF, JPEG, PNG, OFD or DOCX")] = [],  # noqa: B006
    comment: Annotated[Text | None, Form(max_length=4000)] = None,
) -> dict[str, Any]:
    assert actor.case_id is not None
    view = engine.case_view(actor.case_id, actor)
    if "supplement" not in [a["trigger"] for a in view["allowed_actions"]]:
        raise TransitionNotAllowed(
            "supplement",
            view["state"],
            [a["trigger"] for a in view["allowed_actions"]],
            "no documents are being requested now",
            "当前没有需要补正的材料",
        )
    uploads = [
        (f.filename or "", await read_limited(f, engine.settings.max_upload_bytes)) for f in files
    ]
    engine.advance(  # the step and its files together, or neither
        actor.case_id,
        "supplement",
        actor,
        {"comment": comment} if comment else {},
        view["version"],
        files=uploads,
    )
    return status_view(engine, actor, lang)


@router.post(
    "/status/{case_no}/review",
    response_model=StatusOut,
    responses=responses(404, 409, 422, 429),
    summary="Ask for a review (复核) of the decision, within the review period",
)
def review(
    case_no: CaseNo, body: ReviewIn, actor: ApplicantDep, engine: EngineDep, lang: LangDep
) -> dict[str, Any]:
    assert actor.case_id is not None
    engine.advance(actor.case_id, "request_review", actor, {"review_grounds": body.grounds}, None)
    return status_view(engine, actor, lang)


@router.post(
    "/status/{case_no}/withdraw",
    response_model=StatusOut,
    responses=responses(404, 409, 422, 429),
    summary="Withdraw the application",
)
def withdraw(
    case_no: CaseNo,
    actor: ApplicantDep,
    engine: EngineDep,
    lang: LangDep,
    body: WithdrawIn | None = None,
) -> dict[str, Any]:
    assert actor.case_id is not None
    payload = {"reason": body.reason} if body and body.reason else {}
    engine.advance(actor.case_id, "withdraw", actor, payload, None)
    return status_view(engine, actor, lang)


@router.post(
    "/status/{case_no}/actions",
    response_model=StatusOut,
    responses=responses(404, 409, 422, 429),
    summary="Take a step the case offers its applicant now (a party's statement, a "
    "rectification report, a request for re-examination)",
)
def act(
    case_no: CaseNo, body: ActionIn, actor: ApplicantDep, engine: EngineDep, lang: LangDep
) -> dict[str, Any]:
    assert actor.case_id is not None
    # The engine decides: the trigger must be open to the applicant in the case's state.
    engine.advance(actor.case_id, body.trigger, actor, body.payload, None)
    return status_view(engine, actor, lang)


@router.post(
    "/status/{case_no}/access-code",
    status_code=202,
    response_model=AccessCodeRequestOut,
    responses=responses(422, 429),
    summary="Lost the access code: a new one is sent to the email or phone on file",
    description="If `contact` is the email address or phone number on file for the case, a "
    "new access code is sent there through the notice outbox (mail or SMS), the old code "
    "stops working at once and the case's applicant sessions end; the case's timeline records "
    "it. The code is never in the answer, which is the same (202) whether or not anything "
    "matched. Each request counts against the wrong-access-code limit of the case number and "
    "client (429 over it), and a case's code is sent again at most 3 times a day.",
)
async def new_access_code(
    case_no: CaseNo, body: AccessCodeRequestIn, request: Request, engine: EngineDep
) -> AccessCodeRequestOut:
    guard = request.app.state.access_guard
    # A write that may wait for the guard's lock: a worker thread, as a wrong code's is.
    delay = await to_thread.run_sync(
        request_new_code, engine, case_no, body.contact, guard, client_key(request)
    )
    if delay:
        await asyncio.sleep(delay)
    return AccessCodeRequestOut(message=CODE_REQUESTED.en, message_zh=CODE_REQUESTED.zh)
