"""Published credit records: the credit office publishes; staff read them with their versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ActorDep, ClientDep, EngineDep
from api.problems import responses
from api.schemas import RecordIn, RecordOut, Text
from api.schemas_admin import RecordChangeIn
from engine import access
from engine.queries import find_records, get_record
from states.errors import NotFound

router = APIRouter(tags=["records"])


@router.post(
    "/records",
    status_code=201,
    response_model=RecordOut,
    responses=responses(401, 403, 422),
    summary="Publish a record (credit office)",
)
def create(body: RecordIn, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    rid = engine.create_record(actor=actor, **body.model_dump())
    out = get_record(engine, rid, actor)
    assert out is not None
    return out


@router.get(
    "/records/{record_id}",
    response_model=RecordOut,
    responses=responses(401, 404, 422),
    summary="A record with all its versions",
)
def read(
    record_id: Annotated[int, Path(ge=1, le=2**53)],
    engine: EngineDep,
    actor: ActorDep,
    client: ClientDep,
) -> dict[str, Any]:
    out = get_record(engine, record_id, actor)
    if out is None:
        raise NotFound(f"no record {record_id}", f"没有编号为{record_id}的记录")
    access.seen(engine, actor, "record", "", channel="api", client=client, record_id=record_id)
    return out


@router.get(
    "/records",
    response_model=list[RecordOut],
    responses=responses(401, 422),
    summary="Records, optionally of one subject",
)
def search(
    engine: EngineDep,
    actor: ActorDep,
    client: ClientDep,
    subject_id: Annotated[
        Text | None, Query(max_length=40, description="The subject's identifier")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    found = find_records(engine, actor, subject_id, limit)
    if subject_id:  # a search by identifier: whose records were looked up is the point
        access.seen(engine, actor, "search", subject_id, channel="api", client=client)
    return found


@router.post(
    "/records/{record_id}/changes",
    response_model=RecordOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Change a record: dispute mark, correction, revocation, publication (credit office)",
)
def change(
    record_id: Annotated[int, Path(ge=1, le=2**53)],
    body: RecordChangeIn,
    engine: EngineDep,
    actor: ActorDep,
) -> dict[str, Any]:
    engine.change_record(
        record_id, actor=actor, action=body.action, reason=body.reason, content=body.content
    )
    out = get_record(engine, record_id, actor)
    assert out is not None
    return out
