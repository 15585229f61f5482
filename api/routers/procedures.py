"""The procedure definitions, as data and as Mermaid diagrams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import EngineDep, LangDep
from api.problems import responses
from api.schemas import ProcedureOut, ProcedureSummary
from states.machine import Procedure

router = APIRouter(tags=["procedures"])


def _versions(procs: list[Procedure]) -> list[dict[str, Any]]:
    return [
        {
            "version": p.version,
            "title": p.spec.title.model_dump(),
            "effective_from": p.spec.effective_from,
            "effective_until": p.spec.effective_until,
            "jurisdiction": p.spec.jurisdiction,
        }
        for p in procs
    ]


@router.get(
    "/procedures", response_model=list[ProcedureSummary], summary="Every procedure and its versions"
)
def procedures(engine: EngineDep) -> list[dict[str, Any]]:
    reg = engine.registry
    return [{"name": n, "versions": _versions(reg.versions(n))} for n in reg.names()]


@router.get(
    "/procedures/{name}",
    response_model=ProcedureOut,
    responses=responses(404, 422),
    summary="A procedure: definition and Mermaid",
)
def procedure(
    name: Annotated[str, Path(pattern="^[a-z_]{1,40}$")],
    engine: EngineDep,
    lang: LangDep,
    version: Annotated[int | None, Query(ge=1, le=10000)] = None,
) -> dict[str, Any]:
    reg = engine.registry
    procs = reg.versions(name)
    proc = reg.get(name, version) if version else procs[-1]
    return {
        "name": name,
        "versions": _versions(procs),
        "version": proc.version,
        "definition": proc.spec.model_dump(mode="json"),
        "mermaid": proc.mermaid(lang),
    }
