"""Setting an office up: its departments and staff, from a file or by commands.

`redress init --file office.yaml` applies a whole set-up in one transaction: every problem of
the file is reported at once (path, what is wrong) and nothing is written unless all of it is
right. Applying the same file again changes nothing; an entry that differs from what is
stored is refused, naming it (change a department or a user with `redress department set` /
`redress user set`, never by re-running a different file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine import staff
from engine.core import _check_jurisdiction
from engine.db import Tx
from states.errors import Conflict, FieldError, InvalidPayload, NotFound

if TYPE_CHECKING:
    from engine.service import Engine

DEPT_ID = r"^[a-z][a-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DepartmentIn(_Strict):
    id: str = Field(pattern=DEPT_ID)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    # credit_office: runs the platform (one intake window); unit: a determining unit.
    kind: Literal["credit_office", "unit"] = "unit"
    jurisdiction: str = "default"
    email: str | None = Field(None, max_length=200)
    parent: str | None = Field(None, pattern=DEPT_ID)


class UserIn(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")
    role: str
    department: str
    email: str | None = Field(None, max_length=200)


class SetupIn(_Strict):
    departments: list[DepartmentIn] = Field(default_factory=list)
    users: list[UserIn] = Field(default_factory=list)


@dataclass
class SetupResult:
    created_departments: list[str] = field(default_factory=list)
    kept_departments: list[str] = field(default_factory=list)
    # (name, token): each token is shown once, here.
    created_users: list[tuple[str, str]] = field(default_factory=list)
    kept_users: list[str] = field(default_factory=list)


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_setup(doc: Any) -> SetupIn:
    """The set-up file as data, or InvalidPayload naming every wrong entry by its path."""
    if not isinstance(doc, Mapping):
        raise InvalidPayload(
            [FieldError("(file)", "type", "a set-up file is a mapping", "设置文件应为键值映射")]
        )
    try:
        return SetupIn.model_validate(dict(doc))
    except ValidationError as exc:
        raise InvalidPayload(
            [
                FieldError(_where(tuple(e["loc"])), e["type"], e["msg"], f"取值无效（{e['msg']}）")
                for e in exc.errors()
            ]
        ) from None


def apply_setup(engine: Engine, doc: Any, by: str = "cli") -> SetupResult:
    spec = parse_setup(doc)
    errors: list[FieldError] = []
    for i, d in enumerate(spec.departments):
        try:
            _check_jurisdiction(d.jurisdiction)
        except InvalidPayload as exc:
            errors += [
                FieldError(f"departments[{i}].jurisdiction", e.code, e.message, e.message_zh)
                for e in exc.errors
            ]
    for i, u in enumerate(spec.users):
        problem = staff.role_problem(engine, u.role, f"users[{i}].role")
        if problem:
            errors.append(problem)
    if errors:
        raise InvalidPayload(errors)
    result = SetupResult()
    now = engine.sql_ts(engine.now())
    with engine.db.tx() as tx:
        known = {
            str(r[0]): tuple(r[1:])
            for r in tx.all(
                "SELECT id, name_zh, name_en, kind, jurisdiction, email, parent_id FROM departments"
            )
        }
        for i, d in enumerate(spec.departments):
            want = (d.name_zh, d.name_en, d.kind, d.jurisdiction, d.email, d.parent)
            if d.parent is not None and d.parent not in known:
                errors.append(
                    FieldError(
                        f"departments[{i}].parent",
                        "unknown",
                        f"no department {d.parent!r} (list a parent before its children)",
                        f"没有部门“{d.parent}”（上级部门须列在下级之前）",
                    )
                )
                continue
            if d.id in known:
                if known[d.id] != want:
                    errors.append(
                        FieldError(
                            f"departments[{i}]",
                            "conflict",
                            f"department {d.id!r} exists with other values; change it with "
                            "`redress department set`",
                            f"部门“{d.id}”已存在且内容不同，请用 redress department set 修改",
                        )
                    )
                else:
                    result.kept_departments.append(d.id)
                continue
            insert_department(tx, d, now)
            known[d.id] = want
            result.created_departments.append(d.id)
        users = {
            str(r[0]): (str(r[1]), str(r[2]))
            for r in tx.all("SELECT name, role, department_id FROM users")
        }
        for i, u in enumerate(spec.users):
            if u.department not in known:
                errors.append(
                    FieldError(
                        f"users[{i}].department",
                        "unknown",
                        f"no department {u.department!r}",
                        f"没有部门“{u.department}”",
                    )
                )
                continue
            if u.name in users:
                if users[u.name] != (u.role, u.department):
                    errors.append(
                        FieldError(
                            f"users[{i}]",
                            "conflict",
                            f"user {u.name!r} exists with another role or department; change it "
                            "with `redress user set`",
                            f"用户“{u.name}”已存在且角色或部门不同，请用 redress user set 修改",
                        )
                    )
                else:
                    result.kept_users.append(u.name)
                continue
            _, issued = staff.insert_user(
                tx,
                engine,
                name=u.name,
                role=u.role,
                department=u.department,
                email=u.email,
                by=by,
            )
            users[u.name] = (u.role, u.department)
            result.created_users.append((u.name, issued.token))
        if errors:
            raise _Refused(errors)  # rolls the whole set-up back
    engine._departments = None
    return result


class _Refused(InvalidPayload):
    """Raised inside the set-up's transaction so that nothing of it is kept."""


def insert_department(tx: Tx, d: DepartmentIn, now: str) -> None:
    tx.execute(
        "INSERT INTO departments (id, name_zh, name_en, kind, email, jurisdiction, parent_id, "
        "created_at) VALUES (:id, :zh, :en, :kind, :email, :j, :parent, :now)",
        {
            "id": d.id,
            "zh": d.name_zh,
            "en": d.name_en,
            "kind": d.kind,
            "email": d.email,
            "j": d.jurisdiction,
            "parent": d.parent,
            "now": now,
        },
    )


def create_department(engine: Engine, data: Mapping[str, Any]) -> DepartmentIn:
    """One new department (the CLI, the admin API, the console): checked as a set-up file's
    entry is, its parent must exist."""
    try:
        d = DepartmentIn.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidPayload(
            [
                FieldError(_where(tuple(e["loc"])), e["type"], e["msg"], f"取值无效（{e['msg']}）")
                for e in exc.errors()
            ]
        ) from None
    _check_jurisdiction(d.jurisdiction)
    with engine.db.tx() as tx:
        if tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": d.id}):
            raise Conflict(f"department {d.id!r} exists", f"部门“{d.id}”已存在")
        if d.parent is not None and not tx.scalar(
            "SELECT 1 FROM departments WHERE id = :id", {"id": d.parent}
        ):
            raise InvalidPayload(
                [
                    FieldError(
                        "parent", "unknown", f"no department {d.parent!r}", f"没有部门“{d.parent}”"
                    )
                ]
            )
        insert_department(tx, d, engine.sql_ts(engine.now()))
    engine._departments = None
    return d


def departments(engine: Engine) -> list[dict[str, Any]]:
    with engine.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.id, d.name_zh, d.name_en, d.kind, d.jurisdiction, d.email, d.parent_id, "
                "(SELECT count(*) FROM users u WHERE u.department_id = d.id AND u.active) "
                "FROM departments d ORDER BY d.id"
            )
        ).all()
    keys = ("id", "name_zh", "name_en", "kind", "jurisdiction", "email", "parent", "users")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def users(engine: Engine) -> list[dict[str, Any]]:
    with engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT id, name, role, department_id, email, active FROM users ORDER BY name")
        ).all()
    keys = ("id", "name", "role", "department", "email", "active")
    return [dict(zip(keys, (*r[:5], bool(r[5])), strict=True)) for r in rows]


def set_department(
    engine: Engine,
    dept_id: str,
    *,
    name_zh: str | None = None,
    name_en: str | None = None,
    email: str | None = None,
    parent: str | None = None,
) -> None:
    """Change a department's names, letters' address or parent (its kind and jurisdiction
    have their own commands: `set_jurisdiction`)."""
    changes = {
        k: v
        for k, v in (
            ("name_zh", name_zh),
            ("name_en", name_en),
            ("email", email),
            ("parent_id", parent),
        )
        if v is not None
    }
    if not changes:
        raise InvalidPayload(
            [FieldError("(options)", "required", "nothing to change", "没有要修改的内容")]
        )
    with engine.db.tx() as tx:
        if not tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": dept_id}):
            raise NotFound(f"no department {dept_id!r}", f"没有部门“{dept_id}”")
        if parent is not None:
            if parent == dept_id or _is_below(tx, parent, dept_id):
                raise Conflict(
                    f"{parent!r} cannot be the parent of {dept_id!r}: the chain would loop",
                    f"“{parent}”不能作为“{dept_id}”的上级部门：会形成循环",
                )
            if not tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": parent}):
                raise NotFound(f"no department {parent!r}", f"没有部门“{parent}”")
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        tx.execute(f"UPDATE departments SET {sets} WHERE id = :id", {**changes, "id": dept_id})
    engine._departments = None


def _is_below(tx: Tx, candidate: str, dept_id: str) -> bool:
    """Whether `candidate` is `dept_id` itself or one of the departments under it."""
    seen: set[str] = set()
    cur: str | None = candidate
    while cur is not None and cur not in seen:
        if cur == dept_id:
            return True
        seen.add(cur)
        parent = tx.scalar("SELECT parent_id FROM departments WHERE id = :id", {"id": cur})
        cur = None if parent is None else str(parent)
    return False


def set_user(
    engine: Engine,
    name: str,
    *,
    role: str | None = None,
    department: str | None = None,
    email: str | None = None,
) -> int:
    """Change a user's role, department or address; it applies from their next request
    (tokens and console sessions are read on every request)."""
    if role is None and department is None and email is None:
        raise InvalidPayload(
            [FieldError("(options)", "required", "nothing to change", "没有要修改的内容")]
        )
    if role is not None:
        staff.check_role(engine, role)
    with engine.db.tx() as tx:
        uid = staff.user_id_of(tx, name)
        if department is not None and not tx.scalar(
            "SELECT 1 FROM departments WHERE id = :id", {"id": department}
        ):
            raise NotFound(f"no department {department!r}", f"没有部门“{department}”")
        if role is not None:
            tx.execute("UPDATE users SET role = :r WHERE id = :id", {"r": role, "id": uid})
        if department is not None:
            tx.execute(
                "UPDATE users SET department_id = :d WHERE id = :id", {"d": department, "id": uid}
            )
        if email is not None:
            tx.execute(
                "UPDATE users SET email = :e WHERE id = :id", {"e": email or None, "id": uid}
            )
    return uid
