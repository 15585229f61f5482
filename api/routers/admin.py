"""Administrators' API: departments, users, their tokens, and the access log.

Every write goes through the same engine functions as `redress init`, `redress department`,
`redress user` and `redress token`, with the same checks and errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.deps import ActorDep, EngineDep
from api.problems import responses
from api.schemas_admin import (
    AccessPage,
    DepartmentOut,
    DepartmentPatch,
    RotateIn,
    TokenIn,
    TokenIssuedOut,
    TokenOut,
    UserCreatedOut,
    UserOut,
    UserPatch,
)
from engine import access, setup
from engine.core import Actor
from engine.service import Engine
from engine.setup import DepartmentIn, UserIn
from engine.staff import IssuedToken
from states.errors import Forbidden, NotFound

router = APIRouter(tags=["administration"])
DEPT = Path(pattern=setup.DEPT_ID)
USER = Path(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")
TOKEN = Path(ge=1, le=2**53)


def admin(actor: ActorDep) -> Actor:
    if actor.role != "admin":
        raise Forbidden("administrators only", "仅限管理员")
    return actor


AdminDep = Annotated[Actor, Depends(admin)]


def _department(engine: Engine, dept_id: str) -> dict[str, Any]:
    for d in setup.departments(engine):
        if d["id"] == dept_id:
            return d
    raise NotFound(f"no department {dept_id!r}", f"没有部门“{dept_id}”")


def _user(engine: Engine, name: str) -> dict[str, Any]:
    for u in setup.users(engine):
        if u["name"] == name:
            return u
    raise NotFound(f"no user {name!r}", f"没有用户“{name}”")


def _issued(t: IssuedToken) -> TokenIssuedOut:
    return TokenIssuedOut(
        id=t.id, user=t.user, label=t.label, token=t.token, expires_at=t.expires_at
    )


@router.get(
    "/departments",
    response_model=list[DepartmentOut],
    responses=responses(401, 403),
    summary="Departments (administrators)",
)
def departments(engine: EngineDep, actor: AdminDep) -> list[dict[str, Any]]:
    return setup.departments(engine)


@router.post(
    "/departments",
    status_code=201,
    response_model=DepartmentOut,
    responses=responses(401, 403, 409, 422),
    summary="Add a department (administrators)",
)
def add_department(body: DepartmentIn, engine: EngineDep, actor: AdminDep) -> dict[str, Any]:
    d = setup.create_department(engine, body.model_dump())
    return _department(engine, d.id)


@router.patch(
    "/departments/{dept_id}",
    response_model=DepartmentOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Change a department's names, email, parent or jurisdiction (administrators)",
)
def change_department(
    dept_id: Annotated[str, DEPT], body: DepartmentPatch, engine: EngineDep, actor: AdminDep
) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    jurisdiction = fields.pop("jurisdiction", None)
    _department(engine, dept_id)  # 404 before anything else
    if fields or jurisdiction is None:
        setup.set_department(engine, dept_id, **fields)  # "nothing to change" if empty
    if jurisdiction is not None:
        engine.set_jurisdiction(dept_id, jurisdiction)
    return _department(engine, dept_id)


@router.get(
    "/users",
    response_model=list[UserOut],
    responses=responses(401, 403),
    summary="Staff users (administrators)",
)
def users(engine: EngineDep, actor: AdminDep) -> list[dict[str, Any]]:
    return setup.users(engine)


@router.post(
    "/users",
    status_code=201,
    response_model=UserCreatedOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Add a staff user; their first token is in the answer, once (administrators)",
)
def add_user(body: UserIn, engine: EngineDep, actor: AdminDep) -> UserCreatedOut:
    _, issued = engine.create_user(body.name, body.role, body.department, body.email, by=actor.name)
    return UserCreatedOut(user=UserOut(**_user(engine, body.name)), token=_issued(issued))


@router.patch(
    "/users/{user_name}",
    response_model=UserOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Change a user's role, department or email, or disable them (administrators)",
)
def change_user(
    user_name: Annotated[str, USER], body: UserPatch, engine: EngineDep, actor: AdminDep
) -> dict[str, Any]:
    name = user_name
    fields = body.model_dump(exclude_none=True)
    active = fields.pop("active", None)
    _user(engine, name)
    if active is False and name == actor.name:
        raise Forbidden(
            "you cannot disable your own account (ask another administrator)",
            "不能停用自己的账户（请另一位管理员操作）",
        )
    if fields or active is None:
        setup.set_user(engine, name, **fields)
    if active is not None:
        engine.set_user_active(name, active)
    return _user(engine, name)


@router.get(
    "/tokens",
    response_model=list[TokenOut],
    responses=responses(401, 403, 404, 422),
    summary="Tokens with their state; the tokens themselves are never shown again",
)
def tokens(
    engine: EngineDep,
    actor: AdminDep,
    user: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")] = None,
) -> list[dict[str, Any]]:
    return engine.tokens(user)


@router.post(
    "/users/{user_name}/tokens",
    status_code=201,
    response_model=TokenIssuedOut,
    responses=responses(401, 403, 404, 422),
    summary="Issue another token for a user; shown once (administrators)",
)
def add_token(
    user_name: Annotated[str, USER], body: TokenIn, engine: EngineDep, actor: AdminDep
) -> TokenIssuedOut:
    return _issued(engine.add_token(user_name, body.label, body.days, by=actor.name))


@router.post(
    "/tokens/{token_id}/rotate",
    status_code=201,
    response_model=TokenIssuedOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Replace a token: the old one stops at once, the new one is shown once",
)
def rotate_token(
    token_id: Annotated[int, TOKEN],
    engine: EngineDep,
    actor: AdminDep,
    body: RotateIn | None = None,
) -> TokenIssuedOut:
    return _issued(engine.rotate_token(token_id, body.days if body else None, by=actor.name))


@router.post(
    "/tokens/{token_id}/revoke",
    response_model=TokenOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Revoke a token: refused from the next request on, in every process",
)
def revoke_token(
    token_id: Annotated[int, TOKEN], engine: EngineDep, actor: AdminDep
) -> dict[str, Any]:
    user = engine.revoke_token(token_id, by=actor.name)
    return next(t for t in engine.tokens(user) if t["id"] == token_id)


@router.get(
    "/access-log",
    response_model=AccessPage,
    responses=responses(401, 403, 404, 422),
    summary="Who saw what: staff views of personal data, newest first (administrators; "
    "staff: a case they may see)",
)
def access_log(
    engine: EngineDep,
    actor: ActorDep,
    case_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    user: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    items = access.entries(engine, actor, case_id=case_id, user=user, before=before, limit=limit)
    return {
        "items": items,
        "next_before": items[-1]["id"] if len(items) == limit else None,
    }
