"""Procedure definitions: the deployed versions, each as a document and a Mermaid diagram,
and deploying a new one (administrators)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import ActorDep, EngineDep, LangDep
from api.problems import responses
from api.schemas import (
    DeployIn,
    DeployOut,
    MigrationIn,
    MigrationOut,
    ProcedureOut,
    ProcedureSummary,
    StoredProcedureOut,
)
from engine.definitions import StoredVersion
from engine.service import Engine
from states.errors import Forbidden, NotFound
from states.machine import Procedure

router = APIRouter(tags=["procedures"])
NAME = Path(pattern="^[a-z][a-z0-9_]{0,39}$")
JURISDICTION = Query(pattern="^[a-z][a-z0-9_-]{0,39}$", description="default, shanghai, ...")


def _version(s: StoredVersion, p: Procedure) -> dict[str, Any]:
    return {
        "version": s.version,
        "title": p.spec.title.model_dump(),
        "effective_from": s.effective_from,
        "effective_until": s.effective_until,
        "jurisdiction": s.jurisdiction,
        "sha256": s.sha256,
        "deployed_by": s.deployed_by,
        "deployed_at": s.deployed_at,
    }


def _by_name(engine: Engine) -> dict[str, list[tuple[StoredVersion, Procedure]]]:
    out: dict[str, list[tuple[StoredVersion, Procedure]]] = {}
    for s, p in engine.procedures.latest():
        out.setdefault(s.name, []).append((s, p))
    return out


@router.get(
    "/procedures", response_model=list[ProcedureSummary], summary="Every procedure and its versions"
)
def procedures(engine: EngineDep) -> list[dict[str, Any]]:
    return [
        {"name": n, "versions": [_version(s, p) for s, p in rows]}
        for n, rows in sorted(_by_name(engine).items())
    ]


@router.get(
    "/procedures/{name}",
    response_model=ProcedureOut,
    responses=responses(404, 422),
    summary="A procedure: its versions, and one version's definition and Mermaid",
)
def procedure(
    name: Annotated[str, NAME],
    engine: EngineDep,
    lang: LangDep,
    version: Annotated[int | None, Query(ge=1, le=10000)] = None,
    jurisdiction: Annotated[str, JURISDICTION] = "default",
) -> dict[str, Any]:
    rows = _by_name(engine).get(name)
    if not rows:
        raise NotFound(f"no procedure named {name!r}", f"没有名为“{name}”的程序")
    mine = [(s, p) for s, p in rows if s.jurisdiction == jurisdiction] or rows
    chosen = [(s, p) for s, p in mine if version is None or s.version == version]
    if not chosen:
        raise NotFound(
            f"procedure {name!r} has no version {version}", f"程序“{name}”没有第{version}版"
        )
    _, proc = max(chosen, key=lambda sp: sp[0].version)
    return {
        "name": name,
        "versions": [_version(s, p) for s, p in rows],
        "version": proc.version,
        "definition": proc.spec.model_dump(mode="json"),
        "mermaid": proc.mermaid(lang),
    }


@router.get(
    "/procedures/{name}/versions/{version}",
    response_model=StoredProcedureOut,
    responses=responses(404, 422),
    summary="One stored version: the document as deployed, its hash, and Mermaid",
)
def stored_version(
    name: Annotated[str, NAME],
    version: Annotated[int, Path(ge=1, le=10000)],
    engine: EngineDep,
    lang: LangDep,
    jurisdiction: Annotated[str, JURISDICTION] = "default",
) -> dict[str, Any]:
    stored = engine.procedures.find(name, version, jurisdiction)
    proc = engine.procedures.by_id(stored.id)
    document, source = engine.procedures.document(stored.id)
    return {
        "name": name,
        **_version(stored, proc),
        "document": document,
        "source": source,
        "mermaid": proc.mermaid(lang),
    }


@router.post(
    "/procedures",
    response_model=DeployOut,
    status_code=201,
    responses=responses(401, 403, 409, 422),
    summary="Deploy a procedure version (administrators); identical content again is a no-op",
)
def deploy(body: DeployIn, engine: EngineDep, actor: ActorDep, response: Response) -> DeployOut:
    done = engine.deploy_procedure(
        body.document,
        actor,
        source="request",
        effective_from=body.effective_from,
        jurisdiction=body.jurisdiction,
    )
    s = done.stored
    if not done.created:
        response.status_code = 200
    what = f"{s.name} v{s.version} ({s.jurisdiction})"
    return DeployOut(
        created=done.created,
        message=f"deployed {what}" if done.created else f"{what} is already deployed: unchanged",
        message_zh=f"已部署{what}" if done.created else f"{what}已部署，内容相同，未作更改",
        name=s.name,
        version=s.version,
        jurisdiction=s.jurisdiction,
        effective_from=s.effective_from,
        effective_until=s.effective_until,
        sha256=s.sha256,
        deployed_by=s.deployed_by,
    )


@router.post(
    "/procedures/{name}/migrations",
    response_model=MigrationOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Move open cases to another version (administrators); dry_run returns the plan",
)
def migrate(
    name: Annotated[str, NAME], body: MigrationIn, engine: EngineDep, actor: ActorDep
) -> dict[str, Any]:
    from engine.migration import Migrations

    if actor.role != "admin":
        raise Forbidden("only an administrator migrates cases", "只有管理员可以迁移案件")
    migrations = Migrations(engine)
    plan = migrations.plan(name, body.jurisdiction, body.from_version, body.to_version, body.map)
    out: dict[str, Any] = {"plan": plan.as_dict(), "migrated": 0, "skipped": 0}
    if body.dry_run:
        return out
    result = migrations.run(plan, actor)
    out.update(migrated=result.migrated, skipped=result.skipped)
    return out
