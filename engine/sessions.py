"""Web sessions (console and portal) that can end.

The session cookie (signed by Starlette) carries only a random session id; the id's hash is a
row of `web_sessions`. A page asks for the row on every request, so a session stops working at
once in every process when it is signed out, when its user is disabled, or when the case's
access code is replaced, whatever the cookie says. Forging a cookie, even with the signing key,
gives nothing: the id must be one this server issued.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.core import Actor
from engine.db import Tx
from states.errors import Forbidden

if TYPE_CHECKING:
    from engine.service import Engine

# A console or portal session lasts a working day at most (the cookie's own max-age too).
SESSION_HOURS = 8

_LIVE = "ended_at IS NULL AND expires_at > :now"
_STAFF = (
    "SELECT u.id, u.name, u.role, u.department_id, d.kind FROM web_sessions s "
    "JOIN users u ON u.id = s.user_id JOIN departments d ON d.id = u.department_id "
    "WHERE s.token_hash = :h AND s.kind = 'staff' AND s.ended_at IS NULL "
    "AND s.expires_at > :now AND u.active"
)
_APPLICANT = (
    "SELECT s.case_id, c.case_no FROM web_sessions s JOIN cases c ON c.id = s.case_id "
    "WHERE s.token_hash = :h AND s.kind = 'applicant' AND s.ended_at IS NULL "
    "AND s.expires_at > :now"
)


def _hash(session_id: str) -> str:
    # The id is 32 random bytes: a plain hash is enough, and keeps working if the key rotates.
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _start(
        self, kind: str, user_id: int | None, case_id: int | None, token_id: int | None = None
    ) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.engine.now()
        with self.engine.db.tx() as tx:
            tx.execute(
                "INSERT INTO web_sessions (token_hash, kind, user_id, case_id, token_id, "
                "created_at, expires_at) VALUES (:h, :kind, :user_id, :case_id, :token_id, :now, "
                ":expires)",
                {
                    "token_id": token_id,
                    "h": _hash(sid),
                    "kind": kind,
                    "user_id": user_id,
                    "case_id": case_id,
                    "now": self.engine.sql_ts(now),
                    "expires": self.engine.sql_ts(now + timedelta(hours=SESSION_HOURS)),
                },
            )
        return sid

    def start_staff(self, user_id: int, token_id: int | None = None) -> str:
        return self._start("staff", user_id, None, token_id)

    def start_applicant(self, case_id: int) -> str:
        return self._start("applicant", None, case_id)

    def staff(self, session_id: str) -> Actor:
        """The signed-in user of a live session; Forbidden if it ended or the user is disabled."""
        with self.engine.db.tx(readonly=True) as tx:
            row = tx.one(
                _STAFF, {"h": _hash(session_id), "now": self.engine.sql_ts(self.engine.now())}
            )
        if row is None:
            raise Forbidden("the session has ended; sign in again", "会话已结束，请重新登录")
        return self.engine._actor_of(row)  # the same columns, in the same order, as a token's

    def applicant(self, session_id: str) -> tuple[int, str]:
        """(case id, case number) of a live applicant session; Forbidden otherwise."""
        with self.engine.db.tx(readonly=True) as tx:
            row = tx.one(
                _APPLICANT, {"h": _hash(session_id), "now": self.engine.sql_ts(self.engine.now())}
            )
        if row is None:
            raise Forbidden("the session has ended; sign in again", "会话已结束，请重新输入查询码")
        return int(row[0]), str(row[1])

    def end(self, session_id: str, reason: str = "signed_out") -> None:
        with self.engine.db.tx() as tx:
            tx.execute(
                f"UPDATE web_sessions SET ended_at = :now, ended_reason = :why "
                f"WHERE token_hash = :h AND {_LIVE}",
                {
                    "h": _hash(session_id),
                    "now": self.engine.sql_ts(self.engine.now()),
                    "why": reason,
                },
            )


def end_sessions_in(
    tx: Tx,
    engine: Engine,
    *,
    reason: str,
    user_id: int | None = None,
    case_id: int | None = None,
    token_id: int | None = None,
) -> int:
    """End every live session of a user, of a case or opened with a token, inside the
    caller's transaction."""
    column, key = next(
        (c, k)
        for c, k in (("user_id", user_id), ("case_id", case_id), ("token_id", token_id))
        if k is not None
    )
    return tx.execute(
        f"UPDATE web_sessions SET ended_at = :now, ended_reason = :why "
        f"WHERE {column} = :id AND {_LIVE}",
        {
            "id": key,
            "now": engine.sql_ts(engine.now()),
            "why": reason,
        },
    )
