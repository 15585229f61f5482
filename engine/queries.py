"""Read side: the work queue's case list with filters and cursor pagination, and records.

Queries use SQLAlchemy Core (they vary with the filters; commands use fixed SQL). Visibility is
applied in the query itself: a user sees the cases of their department and of the records their
unit determined, so another department's case never shows up, even in counts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import schema as t
from engine.db import Tx
from engine.service import Actor, Engine
from states import disclosure
from states.errors import FieldError, InvalidPayload
from states.identifiers import mask

MAX_LIMIT = 200


@dataclass(frozen=True)
class CaseFilter:
    procedure: str | None = None
    state: str | None = None
    department: str | None = None
    assignee: int | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    subject_identifier: str | None = None
    case_no: str | None = None
    q: str | None = None
    # None: open and closed; False: open only (the console's default); True: closed only.
    closed: bool | None = None
    # Only cases in these (procedure, state) pairs (the console's "waiting for my approval").
    states_in: tuple[tuple[str, str], ...] | None = None
    # ... or, when given, cases with an extension waiting in these pairs.
    extension_in: tuple[tuple[str, str], ...] = ()
    # newest first (id); "due": the next deadline first; "filed": the oldest filing first.
    sort: str = "newest"


SORTS = ("newest", "due", "filed")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode()


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_offset(cursor: str) -> int:
    """A page of a sorted list (other than newest first) continues at an offset."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        offset = int(value["offset"])
        if not 0 <= offset <= 10**7:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidPayload(
            [FieldError("cursor", "invalid", "not a cursor this server issued", "无效的分页游标")]
        ) from None


def decode_cursor(cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        before = int(value["before"])
        if not 1 <= before <= 2**53:
            raise ValueError(before)
        return before
    except (ValueError, KeyError, TypeError, OverflowError):
        raise InvalidPayload(
            [FieldError("cursor", "invalid", "not a cursor this API gave out", "无效的分页游标")]
        ) from None


def visible_cases(actor: Actor, remit: Iterable[str] = ()) -> sa.ColumnElement[bool]:
    """`states.disclosure.sees_case` as a condition on cases joined to their records;
    `remit`: the procedures whose every case the actor's role acts on (Engine.remit)."""
    if disclosure.is_global(actor):
        return sa.true()
    if actor.role == "applicant":
        return t.cases.c.id == (actor.case_id or -1)
    procedures = sorted(remit)
    if actor.department_id is None:
        return t.cases.c.procedure.in_(procedures) if procedures else sa.false()
    seen = sa.or_(
        t.cases.c.department_id == actor.department_id,
        t.credit_records.c.determining_unit == actor.department_id,
    )
    return sa.or_(seen, t.cases.c.procedure.in_(procedures)) if procedures else seen


def _own(actor: Actor) -> sa.ColumnElement[bool]:
    if actor.role in ("admin", "system"):
        return sa.true()
    return t.cases.c.department_id == (actor.department_id or "")


def list_cases(
    engine: Engine, actor: Actor, f: CaseFilter, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; `cursor` continues after the last case of the previous page."""
    limit = max(1, min(limit, MAX_LIMIT))
    c, r, tm = t.cases, t.credit_records, t.timers
    now = engine.now()
    next_due = (
        sa.select(sa.func.min(tm.c.due_at))
        .where(tm.c.case_id == c.c.id, tm.c.status == "active")
        .scalar_subquery()
    )
    q = (
        sa.select(
            c.c.id,
            c.c.case_no,
            c.c.procedure,
            c.c.definition_version,
            c.c.definition_id,
            c.c.state,
            c.c.version,
            c.c.department_id,
            c.c.assignee_id,
            c.c.applicant,
            c.c.filed_on,
            c.c.opened_at,
            c.c.closed_at,
            c.c.data,
            r.c.subject_name,
            r.c.subject_identifier,
            r.c.determining_unit,
            next_due.label("next_due"),
        )
        .select_from(c.outerjoin(r, r.c.id == c.c.record_id))
        .limit(limit + 1)
    )
    q = q.where(visible_cases(actor, engine.remit(actor)))
    offset = 0
    if f.sort == "due":
        q = q.order_by(next_due.is_(None), next_due, c.c.id.desc())
    elif f.sort == "filed":
        q = q.order_by(c.c.filed_on, c.c.id)
    else:
        q = q.order_by(c.c.id.desc())
    if cursor and f.sort in ("due", "filed"):
        offset = decode_offset(cursor)
        q = q.offset(offset)
    elif cursor:
        q = q.where(c.c.id < decode_cursor(cursor))
    if f.closed is False:
        q = q.where(c.c.closed_at.is_(None))
    elif f.closed is True:
        q = q.where(c.c.closed_at.is_not(None))
    if f.states_in is not None:
        pairs = [sa.and_(c.c.procedure == p, c.c.state == st) for p, st in f.states_in]
        waiting = [
            sa.and_(
                c.c.procedure == p,
                c.c.state == st,
                # The case's data is canonical JSON (no spaces): the flag as stored.
                c.c.data.like('%"extension_requested":true%'),
            )
            for p, st in f.extension_in
        ]
        q = q.where(sa.or_(*pairs, *waiting) if pairs or waiting else sa.false())
    if f.procedure:
        if f.procedure not in engine.procedures.names():
            raise InvalidPayload(
                [
                    FieldError(
                        "procedure",
                        "unknown",
                        f"no procedure named {f.procedure!r}",
                        f"没有名为“{f.procedure}”的程序",
                    )
                ]
            )
        q = q.where(c.c.procedure == f.procedure)
    if f.state:
        q = q.where(c.c.state == f.state)
    if f.department:
        q = q.where(c.c.department_id == f.department)
    if f.assignee is not None:
        q = q.where(c.c.assignee_id == f.assignee)
    if f.case_no:
        q = q.where(c.c.case_no == f.case_no.strip().upper())
    if f.subject_identifier:
        q = q.where(r.c.subject_identifier == f.subject_identifier.strip().upper())
    live = sa.select(tm.c.id).where(tm.c.case_id == c.c.id, tm.c.status == "active")
    if f.overdue is True:
        q = q.where(live.where(tm.c.due_at <= now).exists())
    elif f.overdue is False:
        q = q.where(~live.where(tm.c.due_at <= now).exists())
    if f.due_before is not None:
        q = q.where(live.where(tm.c.due_at <= f.due_before).exists())
    if f.q:
        # Case number, the record's subject, the case's texts (grounds, reasons) and, for its
        # own department, the applicant. % and _ are literal.
        text = f.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{text}%"
        q = q.where(
            sa.or_(
                c.c.case_no.ilike(like, escape="\\"),
                r.c.subject_name.ilike(like, escape="\\"),
                c.c.data.ilike(like, escape="\\"),
                # The applicant (name, identifier) only where the caller sees them whole.
                sa.and_(_own(actor), c.c.applicant.ilike(like, escape="\\")),
            )
        )
    with engine.db.read() as conn:
        rows = conn.execute(q).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    out = []
    for row in rows:
        ident = row["subject_identifier"]
        applicant = disclosure.applicant_for(
            actor,
            json.loads(row["applicant"]),
            case_id=row["id"],
            department_id=row["department_id"],
            determining_unit=row["determining_unit"],
            subject_identifier=ident,
        )
        if ident is not None and not disclosure.sees_subject(
            actor, determining_unit=row["determining_unit"], handling=row["department_id"]
        ):
            ident = mask(ident)
        subject = row["subject_name"]
        if subject is None:
            # No record (yet): whom the case is about — a complaint's subject, or the party.
            data = json.loads(row["data"])
            subject = data.get("subject_name") or (
                None if applicant.get("anonymous") else applicant.get("name")
            )
        proc = engine.procedures.by_id(row["definition_id"])
        state = proc.states[row["state"]]
        due_at = t.to_ts(row["next_due"])
        out.append(
            {
                "id": row["id"],
                "case_no": row["case_no"],
                "procedure": row["procedure"],
                "definition_version": row["definition_version"],
                "definition_id": row["definition_id"],
                "state": row["state"],
                "state_label": state.label.model_dump(),
                "version": row["version"],
                "department_id": row["department_id"],
                "assignee_id": row["assignee_id"],
                "applicant": applicant,
                "subject_name": subject,
                "subject_identifier": ident,
                "filed_on": t.to_date(row["filed_on"]),
                "opened_at": t.to_ts(row["opened_at"]),
                "closed_at": t.to_ts(row["closed_at"]),
                "next_due_at": due_at,
                "overdue": due_at is not None and due_at <= now,
            }
        )
    if not (more and rows):
        return out, None
    if f.sort in ("due", "filed"):
        return out, encode_offset(offset + len(rows))
    return out, encode_cursor(rows[-1]["id"])


def get_record(engine: Engine, record_id: int, actor: Actor) -> dict[str, Any] | None:
    with engine.db.read() as conn:
        row = (
            conn.execute(sa.select(t.credit_records).where(t.credit_records.c.id == record_id))
            .mappings()
            .first()
        )
    if row is None:
        return None
    return _record_out(engine, dict(row), actor, with_versions=True)


def find_records(
    engine: Engine,
    actor: Actor,
    subject_identifier: str | None,
    limit: int = 50,
    *,
    published_only: bool = False,
) -> list[dict[str, Any]]:
    """Newest first. `published_only`: what the public may see (the portal)."""
    q = (
        sa.select(t.credit_records)
        .order_by(t.credit_records.c.id.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    if subject_identifier:
        q = q.where(t.credit_records.c.subject_identifier == subject_identifier.strip().upper())
    if published_only:
        q = q.where(t.credit_records.c.status == "published")
    with engine.db.read() as conn:
        rows = conn.execute(q).mappings().all()
    return [_record_out(engine, dict(r), actor, with_versions=False) for r in rows]


def _record_out(
    engine: Engine, row: dict[str, Any], actor: Actor, with_versions: bool
) -> dict[str, Any]:
    # Published records are public; their subject identifiers are personal data all the same.
    privileged = disclosure.sees_subject(actor, determining_unit=row["determining_unit"])
    out = {
        "id": row["id"],
        "subject_kind": row["subject_kind"],
        "subject_name": row["subject_name"],
        "subject_identifier": row["subject_identifier"]
        if privileged
        else mask(row["subject_identifier"]),
        "source_category": row["source_category"],
        "severity": row["severity"],
        "determining_unit": row["determining_unit"],
        "decision_date": t.to_date(row["decision_date"]),
        "published_from": t.to_date(row["published_from"]),
        "status": row["status"],
        "disputed": bool(row["disputed"]),
        "version": row["version"],
        "content": json.loads(row["content"]),
        "repair_barred_until": t.to_date(row["repair_barred_until"]),
    }
    if with_versions:
        out["versions"] = [
            {
                "version": v["version"],
                "status": v["status"],
                "disputed": bool(v["disputed"]),
                "reason": v["reason"],
                "actor": v["actor"],
                "case_id": v["case_id"],
                "at": v["at"],
                "content": v["content"],
            }
            for v in engine.record_versions(int(row["id"]))
        ]
    return out


def case_counts(engine: Engine) -> tuple[list[tuple[str, str, int]], int]:
    """For /metrics: open and closed cases by procedure and state, and overdue cases."""
    c, tm = t.cases, t.timers
    with engine.db.read() as conn:
        by_state = conn.execute(
            sa.select(c.c.procedure, c.c.state, sa.func.count()).group_by(c.c.procedure, c.c.state)
        ).all()
        overdue = conn.execute(
            sa.select(sa.func.count(sa.distinct(tm.c.case_id))).where(
                tm.c.status == "active", tm.c.case_id.is_not(None), tm.c.due_at <= engine.now()
            )
        ).scalar_one()
    return [(p, s, int(n)) for p, s, n in by_state], int(overdue)


def case_notices(
    engine: Engine,
    case_id: int,
    actor: Actor,
    lang: str | None = None,
    recipient: str | None = None,
) -> list[dict[str, Any]]:
    """The notices kept for a case (visible cases only), with how each went out."""
    with engine.db.tx(readonly=True) as tx:
        engine.load_case(tx, case_id, actor)  # NotFound unless visible
        return case_notices_in(tx, case_id, lang, recipient)


_NOTICES = (
    "SELECT id, name, lang, recipient, event_seq, subject, template, template_version, "
    "created_at FROM notices WHERE case_id = :case_id"
)
_SENDS = (
    "SELECT name, channel, status, attempts, payload FROM outbox "
    "WHERE case_id = :case_id AND kind IN ('notice', 'staff')"
)


def case_notices_in(
    tx: Tx, case_id: int, lang: str | None = None, recipient: str | None = None
) -> list[dict[str, Any]]:
    """`case_notices` inside a caller's transaction, the case already checked as visible."""
    q, params = _NOTICES, {"case_id": case_id, "lang": lang, "recipient": recipient}
    if lang:
        q += " AND lang = :lang"
    if recipient:
        q += " AND recipient = :recipient"
    rows = tx.all(q + " ORDER BY id", params)
    deliveries: dict[tuple[int, str], list[dict[str, Any]]] = {}
    if rows:
        for name, channel, status, attempts, payload in tx.all(_SENDS, {"case_id": case_id}):
            seq = json.loads(payload).get("event_seq")
            deliveries.setdefault((int(seq or 0), name), []).append(
                {"channel": channel or "log", "status": status, "attempts": attempts}
            )
    return [
        {
            "id": r[0],
            "name": r[1],
            "lang": r[2],
            "recipient": r[3],
            "event_seq": r[4],
            "subject": r[5],
            "template": r[6],
            "template_version": r[7],
            "created_at": t.to_ts(r[8]),
            "deliveries": deliveries.get((r[4], r[1]), []),
        }
        for r in rows
    ]


def notice(engine: Engine, notice_id: int, actor: Actor) -> dict[str, Any]:
    """One stored notice, for whoever may see its case (an applicant: their own notices)."""
    from states.errors import NotFound

    with engine.db.read() as conn:
        row = (
            conn.execute(sa.select(t.notices).where(t.notices.c.id == notice_id)).mappings().first()
        )
    missing = NotFound(f"no notice {notice_id}", f"没有编号为{notice_id}的通知书")
    if row is None or (actor.role == "applicant" and row["recipient"] != "applicant"):
        raise missing
    with engine.db.tx(readonly=True) as tx:
        try:
            case = engine.load_case(tx, int(row["case_id"]), actor)
        except NotFound:
            raise missing from None
    return {**dict(row), "case_no": case.case_no}


def list_outbox(
    engine: Engine, actor: Actor, status: str, limit: int = 100
) -> list[dict[str, Any]]:
    """Messages by status (e.g. dead letters), for the cases the caller's department sees."""
    o, c, r = t.outbox, t.cases, t.credit_records
    q = (
        sa.select(
            o.c.id,
            o.c.kind,
            o.c.name,
            o.c.recipient,
            o.c.channel,
            o.c.status,
            o.c.attempts,
            o.c.last_error,
            o.c.created_at,
            o.c.next_attempt_at,
            o.c.case_id,
            c.c.case_no,
            o.c.record_id,
        )
        # The record: the message's own, or its case's (a letter names only the case).
        .select_from(
            o.outerjoin(c, c.c.id == o.c.case_id).outerjoin(
                r, r.c.id == sa.func.coalesce(o.c.record_id, c.c.record_id)
            )
        )
        .where(o.c.status == status)
        .order_by(o.c.id)
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    if not disclosure.is_global(actor):
        mine = [
            c.c.department_id == actor.department_id,
            r.c.determining_unit == actor.department_id,
        ]
        if actor.is_office:  # the platform's own pushes of records, which it publishes
            mine.append(o.c.case_id.is_(None))
        q = q.where(sa.or_(*mine))
    q = q.add_columns(c.c.department_id.label("case_department"))
    with engine.db.read() as conn:
        rows = [dict(row) for row in conn.execute(q).mappings().all()]
    for m in rows:
        dept = m.pop("case_department")
        if m["kind"] in ("notice", "staff"):
            # An address is contact data: whole for the case's own department only.
            whole = dept is not None and dept == actor.department_id
            shown = disclosure.recipient_for(actor, m["recipient"], whole=whole)
            if shown != m["recipient"] and m["recipient"] and m["last_error"]:
                m["last_error"] = str(m["last_error"]).replace(m["recipient"], shown or "")
            m["recipient"] = shown
    return rows


def dashboard_rows(engine: Engine, actor: Actor, now: datetime) -> tuple[Any, ...]:
    """The dashboard's figures as rows, over the cases `actor` may see: open cases by
    (department, procedure, definition, state); overdue cases by department; the stopped
    deadlines of closed cases; the number closed; every event (case, seq, from, to, at,
    procedure)."""
    c, r, tm, ev = t.cases, t.credit_records, t.timers, t.case_events
    joined = c.outerjoin(r, r.c.id == c.c.record_id)
    vis = visible_cases(actor, engine.remit(actor))
    with engine.db.read() as conn:
        open_rows = conn.execute(
            sa.select(
                c.c.department_id,
                c.c.procedure,
                c.c.definition_id,
                c.c.state,
                sa.func.count(),
            )
            .select_from(joined)
            .where(vis, c.c.closed_at.is_(None))
            .group_by(c.c.department_id, c.c.procedure, c.c.definition_id, c.c.state)
        ).all()
        overdue_rows = conn.execute(
            sa.select(c.c.department_id, sa.func.count(sa.distinct(c.c.id)))
            .select_from(joined.join(tm, tm.c.case_id == c.c.id))
            .where(vis, tm.c.status == "active", tm.c.due_at <= now)
            .group_by(c.c.department_id)
        ).all()
        timer_rows = conn.execute(
            sa.select(c.c.id, tm.c.due_at, tm.c.stopped_at)
            .select_from(joined.join(tm, tm.c.case_id == c.c.id))
            .where(
                vis,
                c.c.closed_at.is_not(None),
                tm.c.status == "stopped",
                tm.c.due_at.is_not(None),
                tm.c.stopped_at.is_not(None),
            )
        ).all()
        closed_total = conn.execute(
            sa.select(sa.func.count()).select_from(joined).where(vis, c.c.closed_at.is_not(None))
        ).scalar_one()
        event_rows = conn.execute(
            sa.select(
                ev.c.case_id, ev.c.seq, ev.c.from_state, ev.c.to_state, ev.c.at, c.c.procedure
            )
            .select_from(joined.join(ev, ev.c.case_id == c.c.id))
            .where(vis)
            .order_by(ev.c.case_id, ev.c.seq)
        ).all()
    return open_rows, overdue_rows, timer_rows, closed_total, event_rows
