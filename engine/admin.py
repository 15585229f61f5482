"""Departments, users and their tokens, procedure deployment, the audit of event chains.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import schema as t
from engine.core import (
    GENESIS,
    STAFF_ROLES,
    Actor,
    AuditProblem,
    _check_jurisdiction,
    _event_body,
    event_hash,
)
from engine.db import Tx
from engine.definitions import Deployed
from states.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidPayload,
    NotFound,
)

if TYPE_CHECKING:
    from engine.service import Engine


class Administration:
    def add_department(
        self: Engine,
        dept_id: str,
        name_zh: str,
        name_en: str,
        kind: str = "unit",
        email: str | None = None,
        jurisdiction: str = "default",
    ) -> None:
        if kind not in ("unit", "credit_office"):
            raise InvalidPayload(
                [FieldError("kind", "choice", "unit or credit_office", "须为unit或credit_office")]
            )
        _check_jurisdiction(jurisdiction)
        with self.db.tx() as tx:
            if tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": dept_id}):
                raise Conflict(f"department {dept_id!r} exists", f"部门“{dept_id}”已存在")
            tx.execute(
                "INSERT INTO departments (id, name_zh, name_en, kind, email, jurisdiction, "
                "created_at) VALUES (:id, :zh, :en, :kind, :email, :j, :now)",
                {
                    "id": dept_id,
                    "zh": name_zh,
                    "en": name_en,
                    "kind": kind,
                    "email": email,
                    "j": jurisdiction,
                    "now": self.sql_ts(self.now()),
                },
            )
        self._departments = None

    def set_jurisdiction(self: Engine, dept_id: str, jurisdiction: str) -> None:
        """Move a department to another jurisdiction: its new cases take that jurisdiction's
        rule sets; running cases keep their definitions (migrate them with `cases migrate`)
        and their deadlines count on the new jurisdiction's calendar from the next change."""
        _check_jurisdiction(jurisdiction)
        with self.db.tx() as tx:
            n = tx.execute(
                "UPDATE departments SET jurisdiction = :j WHERE id = :id",
                {"j": jurisdiction, "id": dept_id},
            )
        if not n:
            raise NotFound(f"no department {dept_id!r}", f"没有部门“{dept_id}”")
        self._departments = None

    def add_user(
        self: Engine, name: str, role: str, department_id: str, email: str | None = None
    ) -> tuple[int, str]:
        """Create a user; returns (id, token). Only the token's hash is stored."""
        roles = (*STAFF_ROLES, *self.settings.extra_roles)
        if role not in roles:
            raise InvalidPayload(
                [
                    FieldError(
                        "role",
                        "choice",
                        f"must be one of {', '.join(roles)}",
                        f"须为{'、'.join(roles)}之一",
                    )
                ]
            )
        token = "rd_" + secrets.token_urlsafe(32)
        with self.db.tx() as tx:
            if not tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": department_id}):
                raise NotFound(f"no department {department_id!r}", f"没有部门“{department_id}”")
            if tx.scalar("SELECT 1 FROM users WHERE name = :n", {"n": name}):
                raise Conflict(f"user {name!r} exists", f"用户“{name}”已存在")
            uid = tx.scalar(
                "INSERT INTO users (name, role, department_id, token_hash, active, email, "
                "created_at) VALUES (:n, :r, :d, :h, :a, :email, :now) RETURNING id",
                {
                    "n": name,
                    "r": role,
                    "d": department_id,
                    "h": self.hash_secret(token),
                    "a": True,
                    "email": email,
                    "now": self.sql_ts(self.now()),
                },
            )
        return int(uid), token

    _USER = (
        "SELECT u.id, u.name, u.role, u.department_id, d.kind FROM users u "
        "JOIN departments d ON d.id = u.department_id WHERE u.active AND "
    )

    @staticmethod
    def _actor_of(row: Sequence[Any]) -> Actor:
        return Actor(
            name=row[1],
            role=row[2],
            department_id=row[3],
            user_id=int(row[0]),
            department_kind=row[4],
        )

    def actor_by_id(self: Engine, user_id: int) -> Actor:
        """An active user by id (the CLI's own commands, tests)."""
        with self.db.tx(readonly=True) as tx:
            row = tx.one(self._USER + "u.id = :id", {"id": user_id})
        if row is None:
            raise Forbidden("unknown or inactive user", "用户不存在或已停用")
        return self._actor_of(row)

    def authenticate(self: Engine, token: str) -> Actor:
        """The active user of a bearer token. Read on every request, never cached, so that a
        disabled user's token stops working at once in every process (one indexed read)."""
        with self.db.tx(readonly=True) as tx:
            return self.authenticate_in(tx, token)

    def authenticate_in(self: Engine, tx: Tx, token: str) -> Actor:
        row = tx.one(self._USER + "u.token_hash = :h", {"h": self.hash_secret(token)})
        if row is None:
            raise Forbidden("unknown or inactive token", "令牌无效或已停用")
        return self._actor_of(row)

    def set_user_active(self: Engine, name: str, active: bool) -> int:
        """Disable (or enable again) a user. Disabling ends their console sessions in the same
        transaction; their token is refused from the next request on. Returns the user's id."""
        from engine.sessions import end_sessions_in

        with self.db.tx() as tx:
            uid = tx.scalar("SELECT id FROM users WHERE name = :n", {"n": name})
            if uid is None:
                raise NotFound(f"no user {name!r}", f"没有用户“{name}”")
            tx.execute("UPDATE users SET active = :a WHERE id = :id", {"a": active, "id": uid})
            if not active:
                end_sessions_in(tx, self, reason="user_disabled", user_id=int(uid))
        return int(uid)

    def deploy_procedure(
        self: Engine,
        text: str,
        actor: Actor,
        *,
        source: str = "<request>",
        effective_from: date | None = None,
        jurisdiction: str | None = None,
    ) -> Deployed:
        """Store a procedure version (administrators; the CLI acts as the system). Every
        process uses it for the next case filed in its jurisdiction on or after its date."""
        if actor.role not in ("admin", "system"):
            raise Forbidden(
                "only an administrator deploys procedure definitions", "只有管理员可以部署程序定义"
            )
        return self.procedures.deploy(
            text,
            actor=actor.name,
            now=self.now(),
            source=source,
            effective_from=effective_from,
            jurisdiction=jurisdiction,
        )

    def verify_audit(self: Engine) -> list[AuditProblem]:
        """Walk every case's event chain; report the first broken link of each case."""
        problems: list[AuditProblem] = []
        with self.db.read() as conn:
            cases = conn.execute(
                sa.select(
                    t.cases.c.id, t.cases.c.case_no, t.cases.c.last_hash, t.cases.c.event_seq
                ).order_by(t.cases.c.id)
            ).all()
            for c in cases:
                rows = (
                    conn.execute(
                        sa.select(t.case_events)
                        .where(t.case_events.c.case_id == c.id)
                        .order_by(t.case_events.c.seq)
                    )
                    .mappings()
                    .all()
                )
                prev = GENESIS
                for i, ev in enumerate(rows, start=1):
                    body = _event_body(
                        c.id,
                        ev["seq"],
                        ev["trigger"],
                        ev["from_state"],
                        ev["to_state"],
                        ev["case_version"],
                        ev["actor"],
                        ev["actor_role"],
                        t.ts_to_sqlite(ev["at"]),
                        ev["payload"],
                        ev["detail"],
                    )
                    problem = None
                    if ev["seq"] != i:
                        problem = f"event {i} is missing (found seq {ev['seq']})"
                    elif ev["prev_hash"] != prev:
                        problem = "its prev_hash does not match the previous event's hash"
                    elif event_hash(prev, body) != ev["hash"]:
                        problem = "its content does not match its hash (altered)"
                    if problem:
                        problems.append(AuditProblem(c.id, c.case_no, ev["seq"], problem))
                        break
                    prev = ev["hash"]
                else:
                    if rows and (c.last_hash != prev or c.event_seq != len(rows)):
                        problems.append(
                            AuditProblem(
                                c.id,
                                c.case_no,
                                len(rows),
                                "the case row does not point at its last event",
                            )
                        )
        return problems
