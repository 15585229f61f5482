"""Departments, users and their tokens, procedure deployment, the audit of event chains.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import schema as t
from engine import staff
from engine.core import (
    GENESIS,
    Actor,
    AuditProblem,
    _check_jurisdiction,
    _event_body,
    event_hash,
)
from engine.definitions import Deployed
from engine.staff import IssuedToken
from states.errors import (
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
        parent: str | None = None,
    ) -> None:
        from engine.setup import create_department

        create_department(
            self,
            {
                "id": dept_id,
                "name_zh": name_zh,
                "name_en": name_en,
                "kind": kind,
                "email": email,
                "jurisdiction": jurisdiction,
                "parent": parent,
            },
        )

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
        self: Engine,
        name: str,
        role: str,
        department_id: str,
        email: str | None = None,
        *,
        by: str = "cli",
    ) -> tuple[int, str]:
        """Create a user; returns (id, their first token). Only the token's hash is stored."""
        uid, issued = self.create_user(name, role, department_id, email, by=by)
        return uid, issued.token

    def create_user(
        self: Engine,
        name: str,
        role: str,
        department_id: str,
        email: str | None = None,
        *,
        by: str,
    ) -> tuple[int, IssuedToken]:
        staff.check_role(self, role)
        with self.db.tx() as tx:
            return staff.insert_user(
                tx, self, name=name, role=role, department=department_id, email=email, by=by
            )

    def add_token(
        self: Engine, user: str, label: str, days: int | None = None, *, by: str = "cli"
    ) -> IssuedToken:
        """Another token for a user (a second device, a script), expiring after `days`."""
        label = label.strip()
        if not 1 <= len(label) <= 100:
            raise InvalidPayload(
                [FieldError("label", "required", "1 to 100 characters", "请填写1至100个字的用途")]
            )
        with self.db.tx() as tx:
            return staff.insert_token(
                tx, self, staff.user_id_of(tx, user), user, label=label, days=days, by=by
            )

    def tokens(self: Engine, user: str | None = None) -> list[dict[str, Any]]:
        with self.db.tx(readonly=True) as tx:
            return staff.list_tokens(tx, self, user)

    def revoke_token(self: Engine, token_id: int, *, by: str = "cli") -> str:
        """End a token at once, in every process, with the console sessions it opened."""
        with self.db.tx() as tx:
            return staff.end_token(tx, self, token_id, reason=staff.REVOKED, by=by)

    def rotate_token(
        self: Engine, token_id: int, days: int | None = None, *, by: str = "cli"
    ) -> IssuedToken:
        with self.db.tx() as tx:
            return staff.rotate_token(tx, self, token_id, days=days, by=by)

    _USER = (
        "SELECT u.id, u.name, u.role, u.department_id, d.kind FROM users u "
        "JOIN departments d ON d.id = u.department_id WHERE u.active AND "
    )
    # A live token of an active user: not ended, not expired (one indexed read, no cache).
    _TOKEN_USER = (
        "SELECT u.id, u.name, u.role, u.department_id, d.kind, k.id FROM api_tokens k "
        "JOIN users u ON u.id = k.user_id JOIN departments d ON d.id = u.department_id "
        "WHERE k.token_hash = :h AND k.revoked_at IS NULL AND k.expires_at > :now AND u.active"
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
        """The active user of a live bearer token. Read on every request, never cached, so
        that a revoked token or a disabled user is refused at once in every process."""
        return self.authenticate_token(token)[0]

    def authenticate_token(self: Engine, token: str) -> tuple[Actor, int]:
        """(the user, the token's id): a console sign-in ties its session to the token."""
        with self.db.tx(readonly=True) as tx:
            row = tx.one(
                self._TOKEN_USER,
                {"h": self.hash_secret(token), "now": self.sql_ts(self.now())},
            )
        if row is None:
            raise Forbidden("unknown, expired or revoked token", "令牌无效、已过期或已停用")
        return self._actor_of(row), int(row[5])

    def set_user_active(self: Engine, name: str, active: bool) -> int:
        """Disable (or enable again) a user. Disabling ends their console sessions in the same
        transaction; their tokens are refused from the next request on. Returns the user's id."""
        from engine.sessions import end_sessions_in

        with self.db.tx() as tx:
            uid = staff.user_id_of(tx, name)
            tx.execute("UPDATE users SET active = :a WHERE id = :id", {"a": active, "id": uid})
            if not active:
                end_sessions_in(tx, self, reason="user_disabled", user_id=uid)
        return uid

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
