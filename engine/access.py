"""Who saw what: the access log of staff views of unmasked personal data.

A case page (the applicant's identifier and contact), an attachment, a notice, a record and a
search by identifier each leave a row, written before the data is handed over, so that what
was shown is always in the log. The table is append-only (database triggers, migration 0012):
the log cannot be edited by the application either. The applicant's own views and the
clock's reads are not logged: they are not staff looking at somebody else's data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from engine import schema as t
from engine.core import Actor
from states.errors import Forbidden

if TYPE_CHECKING:
    from engine.service import Engine

What = Literal["case", "attachment", "notice", "record", "search"]
Channel = Literal["console", "api"]


def seen(
    engine: Engine,
    actor: Actor,
    what: What,
    detail: str,
    *,
    channel: Channel,
    client: str,
    case_id: int | None = None,
    record_id: int | None = None,
) -> None:
    """Record one view by staff (a no-op for anybody else); its own short transaction."""
    if not actor.is_staff:
        return
    with engine.db.tx() as tx:
        tx.execute(
            "INSERT INTO access_log (at, user_id, actor, role, what, case_id, record_id, "
            "detail, channel, client) VALUES (:at, :uid, :actor, :role, :what, :case_id, "
            ":record_id, :detail, :channel, :client)",
            {
                "at": engine.sql_ts(engine.now()),
                "uid": actor.user_id,
                "actor": actor.name,
                "role": actor.role,
                "what": what,
                "case_id": case_id,
                "record_id": record_id,
                "detail": detail[:200],
                "channel": channel,
                "client": client[:64],
            },
        )


def entries(
    engine: Engine,
    actor: Actor,
    *,
    case_id: int | None = None,
    user: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. Administrators read the whole log; other staff only a case's entries,
    and only of a case they may see (the console shows them on the case page)."""
    if not actor.is_global:
        if case_id is None or not actor.is_staff:
            raise Forbidden(
                "only an administrator reads the access log", "只有管理员可以查看访问记录"
            )
        engine.case_view(case_id, actor)  # NotFound / Forbidden as for the case itself
    where: list[str] = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    if case_id is not None:
        where.append("a.case_id = :case_id")
        params["case_id"] = case_id
    if user is not None:
        where.append("a.actor = :user")
        params["user"] = user
    if before is not None:
        where.append("a.id < :before")
        params["before"] = before
    with engine.db.tx(readonly=True) as tx:
        rows = tx.all(
            "SELECT a.id, a.at, a.actor, a.role, a.what, a.case_id, c.case_no, a.record_id, "
            "a.detail, a.channel, a.client FROM access_log a "
            "LEFT JOIN cases c ON c.id = a.case_id "
            f"WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT :limit",
            params,
        )
    keys = (
        "id",
        "at",
        "actor",
        "role",
        "what",
        "case_id",
        "case_no",
        "record_id",
        "detail",
        "channel",
        "client",
    )
    out = []
    for r in rows:
        item = dict(zip(keys, r, strict=True))
        item["at"] = t.to_ts(item["at"])
        out.append(item)
    return out
