"""Staff accounts and their bearer tokens: the rows, and the rules every entry point shares.

`redress user …`, `redress token …`, `redress init`, the admin API and the console's admin pages
all write through these functions, inside the caller's transaction, so that a user created by
any of them has the same first token, the same checks and the same errors.

A token is ``rd_`` and 43 random URL-safe characters; only its keyed hash is stored, so it is
shown once, when issued. Every request reads the token's row (no cache): a revoked, rotated or
expired token, or one of a disabled user, is refused from the next request on, in every
process (the bound is one request's own transaction, nothing more).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import schema as t
from engine.core import STAFF_ROLES
from engine.db import Tx
from states.errors import Conflict, FieldError, InvalidPayload, NotFound

if TYPE_CHECKING:
    from engine.service import Engine

TOKEN_PREFIX = "rd_"
# How a token's end is recorded (api_tokens.revoked_reason).
REVOKED, ROTATED = "revoked", "rotated"


@dataclass(frozen=True)
class IssuedToken:
    """A token as issued: the only time its text exists outside the holder's hands."""

    id: int
    user: str
    label: str
    token: str
    expires_at: datetime


def roles_of(engine: Engine) -> tuple[str, ...]:
    return (*STAFF_ROLES, *engine.settings.extra_roles)


def role_problem(engine: Engine, role: str, field: str = "role") -> FieldError | None:
    roles = roles_of(engine)
    if role in roles:
        return None
    return FieldError(
        field,
        "choice",
        f"{role!r} is not a declared role ({', '.join(roles)})",
        f"“{role}”不是已声明的角色（{'、'.join(roles)}）",
    )


def check_role(engine: Engine, role: str) -> None:
    problem = role_problem(engine, role)
    if problem:
        raise InvalidPayload([problem])


def check_days(days: int | None, field: str = "days") -> None:
    if days is not None and not 1 <= days <= 3650:
        raise InvalidPayload(
            [FieldError(field, "range", "must be 1 to 3650 days", "有效期须为1至3650天")]
        )


def user_id_of(tx: Tx, name: str) -> int:
    uid = tx.scalar("SELECT id FROM users WHERE name = :n", {"n": name})
    if uid is None:
        raise NotFound(f"no user {name!r}", f"没有用户“{name}”")
    return int(uid)


def insert_user(
    tx: Tx,
    engine: Engine,
    *,
    name: str,
    role: str,
    department: str,
    email: str | None,
    by: str,
) -> tuple[int, IssuedToken]:
    """A new user and their first token (labelled "initial"); the role is checked by the
    caller (a set-up file reports every wrong role at once)."""
    if not tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": department}):
        raise NotFound(f"no department {department!r}", f"没有部门“{department}”")
    if tx.scalar("SELECT 1 FROM users WHERE name = :n", {"n": name}):
        raise Conflict(f"user {name!r} exists", f"用户“{name}”已存在")
    uid = int(
        tx.scalar(
            "INSERT INTO users (name, role, department_id, active, email, created_at) "
            "VALUES (:n, :r, :d, :a, :email, :now) RETURNING id",
            {
                "n": name,
                "r": role,
                "d": department,
                "a": True,
                "email": email,
                "now": engine.sql_ts(engine.now()),
            },
        )
    )
    return uid, insert_token(tx, engine, uid, name, label="initial", days=None, by=by)


def insert_token(
    tx: Tx,
    engine: Engine,
    user_id: int,
    user: str,
    *,
    label: str,
    days: int | None,
    by: str,
) -> IssuedToken:
    check_days(days)
    now = engine.now()
    expires = now + timedelta(days=days or engine.settings.token_days)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    tid = tx.scalar(
        "INSERT INTO api_tokens (user_id, token_hash, label, created_at, created_by, expires_at) "
        "VALUES (:u, :h, :label, :now, :by, :exp) RETURNING id",
        {
            "u": user_id,
            "h": engine.hash_secret(token),
            "label": label,
            "now": engine.sql_ts(now),
            "by": by,
            "exp": engine.sql_ts(expires),
        },
    )
    return IssuedToken(int(tid), user, label, token, expires)


_TOKEN_ROW = (
    "SELECT t.id, u.name, t.label, t.created_at, t.created_by, t.expires_at, t.revoked_at, "
    "t.revoked_reason, t.revoked_by FROM api_tokens t JOIN users u ON u.id = t.user_id "
)


def token_state(row: dict[str, Any], now: datetime, active_user: bool = True) -> str:
    """live | expired | revoked | rotated | user_disabled (the words are the pages')."""
    if row["revoked_at"] is not None:
        return str(row["revoked_reason"] or REVOKED)
    if row["expires_at"] <= now:
        return "expired"
    return "live" if active_user else "user_disabled"


def list_tokens(tx: Tx, engine: Engine, user: str | None = None) -> list[dict[str, Any]]:
    """Every token (never its text), newest first, with its state now."""
    where, params = ("WHERE u.name = :n ", {"n": user}) if user else ("", {})
    if user:
        user_id_of(tx, user)
    rows = tx.all(
        _TOKEN_ROW.replace("t.revoked_by ", "t.revoked_by, u.active ")
        + where
        + "ORDER BY t.id DESC",
        params,
    )
    keys = (
        "id",
        "user",
        "label",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_reason",
        "revoked_by",
    )
    now = engine.now()
    out = []
    for r in rows:
        item: dict[str, Any] = dict(zip(keys, r[:9], strict=True))
        for k in ("created_at", "expires_at", "revoked_at"):
            item[k] = t.to_ts(item[k])
        item["state"] = token_state(item, now, bool(r[9]))
        out.append(item)
    return out


def end_token(tx: Tx, engine: Engine, token_id: int, *, reason: str, by: str) -> str:
    """Revoke (or retire, when rotated) one token and end the console sessions it opened.
    Returns its user's name. A token already ended is a Conflict: nothing changes."""
    from engine.sessions import end_sessions_in

    row: Sequence[Any] | None = tx.one(
        "SELECT t.revoked_at, u.name FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.id = :id",
        {"id": token_id},
    )
    if row is None:
        raise NotFound(f"no token {token_id}", f"没有编号为{token_id}的令牌")
    if row[0] is not None:
        raise Conflict(f"token {token_id} has already ended", f"令牌{token_id}已停用")
    tx.execute(
        "UPDATE api_tokens SET revoked_at = :now, revoked_reason = :why, revoked_by = :by "
        "WHERE id = :id",
        {"now": engine.sql_ts(engine.now()), "why": reason, "by": by, "id": token_id},
    )
    end_sessions_in(tx, engine, reason=f"token_{reason}", token_id=token_id)
    return str(row[1])


def rotate_token(
    tx: Tx, engine: Engine, token_id: int, *, days: int | None, by: str
) -> IssuedToken:
    """A new token for the same user and label; the old one ends in the same transaction."""
    row = tx.one("SELECT t.user_id, t.label FROM api_tokens t WHERE t.id = :id", {"id": token_id})
    if row is None:
        raise NotFound(f"no token {token_id}", f"没有编号为{token_id}的令牌")
    user = end_token(tx, engine, token_id, reason=ROTATED, by=by)
    return insert_token(tx, engine, int(row[0]), user, label=str(row[1]), days=days, by=by)
