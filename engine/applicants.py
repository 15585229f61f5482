"""Applicants without an account: a case number and an access code, and the status view.

A wrong number and a wrong code get the same answer in the same time (the code's hash is
compared in constant time, against a dummy when the number is unknown). Repeated wrong codes
on a case are slowed, then refused for a while (`AccessGuard`).
"""

from __future__ import annotations

import hmac
import math
import re
from datetime import date, timedelta
from typing import Any

from engine import schema as t
from engine import sql
from engine.db import Tx
from engine.service import Actor, Engine
from states.errors import NotFound, RedressError
from states.spec import Label

_DUMMY_HASH = "0" * 64
CASE_NO = re.compile(r"[A-Za-z0-9]{4,32}")
# The engine's own events an applicant does not see on their timeline (the clock's
# bookkeeping); a procedure's triggers say so themselves (`applicant_visible`).
_HIDDEN = {
    "assign",
    "attach",
    "deadline_reminder",
    "deadline_expired",
    "deadline_escalated",
    "deadline_recomputed",
    "notice_undelivered",
    "deadline_met",
    "migrated",
}


_FILED = Label(zh="提交申请", en="application filed")
_TIMELINE = "SELECT trigger, to_state, at FROM case_events WHERE case_id = :id ORDER BY seq"
_APPLICANT_NOTICES = (
    "SELECT id, name, subject, created_at FROM notices "
    "WHERE case_id = :id AND lang = :lang AND recipient = 'applicant' ORDER BY id"
)

_SENDING = (
    "SELECT count(*) FROM outbox WHERE case_id = :id AND kind = 'notice' AND channel = 'inapp' "
    "AND status IN ('pending', 'sending')"
)
# The applicant's own files (uploaded as the applicant), not the office's.
_MY_UPLOADS = (
    "SELECT filename, size, uploaded_at FROM attachments WHERE case_id = :id "
    "AND uploaded_by LIKE 'applicant%' ORDER BY id"
)

# What the applicant can do through /status with a form of its own: supply documents, ask
# for a review, withdraw. Any other trigger open to the applicant (a party's statement, a
# rectification report, a request for re-examination) gets a form made from its fields.
APPLICANT_ACTIONS = ("supplement", "request_review", "withdraw")


class TooManyAttempts(RedressError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"too many wrong access codes for this case; try again in {minutes} minute(s)",
            f"该案件查询码错误次数过多，请{minutes}分钟后再试",
        )


class AccessGuard:
    """Wrong access codes, counted in the database (shared by every worker) per (case number,
    client) and, with a far higher bound, per client.

    An office or a mobile network puts many applicants behind one address: counting per
    client alone locked every one of them out for a quarter of an hour. Now a right code is
    refused only on a case that was itself attacked from this client (`lock_after` wrong codes
    on that case number in the window); a client over `client_lock_after` wrong codes in all
    is refused for any *wrong* code, never for a right one. Each wrong code is decided and
    recorded in one transaction serialised per client, so a hundred at once cannot all pass
    before the first is counted. Repeated wrong codes on one case are slowed first."""

    def __init__(
        self,
        engine: Engine,
        slow_after: int,
        lock_after: int,
        window_s: int,
        client_lock_after: int | None = None,
    ) -> None:
        self.engine = engine
        self.slow_after = slow_after
        self.lock_after = lock_after
        self.window = window_s
        self.client_lock_after = client_lock_after or lock_after * 10

    def since(self) -> Any:
        """The start of the window, as the database compares it."""
        return self._since()

    def _since(self) -> Any:
        return self.engine.sql_ts(self.engine.now() - timedelta(seconds=self.window))

    def _retry_after(self, first: Any) -> int:
        began = t.to_ts(first)
        assert began is not None
        left = (began + timedelta(seconds=self.window) - self.engine.now()).total_seconds()
        return max(1, math.ceil(left))

    def locked(self, case_no: str, client: str) -> int | None:
        """Seconds to wait if this case was attacked from this client (even a right code is
        refused then), else None."""
        with self.engine.db.tx(readonly=True) as tx:
            return self.locked_in(tx, case_no, client)

    def locked_in(self, tx: Tx, case_no: str, client: str) -> int | None:
        """`locked` in the caller's read transaction: one indexed read, after a right code
        only, in the transaction that checked it (a status look-up stays one transaction)."""
        row = tx.one(
            "SELECT count(*), min(at) FROM access_failures "
            "WHERE case_no = :n AND client = :c AND at > :since",
            {"n": _key(case_no), "c": client[:64], "since": self._since()},
        )
        if row is None or int(row[0]) < self.lock_after:
            return None
        return self._retry_after(row[1])

    def check_in(self, tx: Tx, case_no: str, client: str) -> None:
        wait = self.locked_in(tx, case_no, client)
        if wait is not None:
            raise TooManyAttempts(wait)

    def failed(self, case_no: str, client: str) -> float:
        """Record a wrong code; returns the seconds to wait before answering it. Raises
        TooManyAttempts (recording nothing more) when the case or the client is over its
        bound."""
        case_key, who = _key(case_no), client[:64]
        with self.engine.db.tx() as tx:
            lock = self.engine.db.strategy.key_lock
            if lock is not None:
                tx.scalar(lock, {"key": "access:" + who})
            since = self._since()
            here = tx.one(
                "SELECT count(*), min(at) FROM access_failures "
                "WHERE case_no = :n AND client = :c AND at > :since",
                {"n": case_key, "c": who, "since": since},
            )
            everywhere = tx.one(
                "SELECT count(*), min(at) FROM access_failures WHERE client = :c AND at > :since",
                {"c": who, "since": since},
            )
            assert here is not None and everywhere is not None
            if int(here[0]) >= self.lock_after:
                raise TooManyAttempts(self._retry_after(here[1]))
            if int(everywhere[0]) >= self.client_lock_after:
                raise TooManyAttempts(self._retry_after(everywhere[1]))
            tx.execute(
                "INSERT INTO access_failures (case_no, client, at) VALUES (:n, :c, :at)",
                {"n": case_key, "c": who, "at": self.engine.sql_ts(self.engine.now())},
            )
            # Old rows go as new ones come: the table holds one window's failures.
            tx.execute(
                "DELETE FROM access_failures WHERE client = :c AND at <= :since",
                {"c": who, "since": since},
            )
        extra = int(here[0]) + 1 - self.slow_after
        return 0.0 if extra <= 0 else min(0.25 * 2 ** (extra - 1), 4.0)

    def clear(self) -> None:
        """Forget every failure (tests and fuzzing; an operator's `redress` has no need)."""
        with self.engine.db.tx() as tx:
            tx.execute("DELETE FROM access_failures")


def _key(case_no: str) -> str:
    """The number as counted: a malformed one (a NUL, which PostgreSQL cannot store, or any
    other character) is counted under one key, as it is looked up."""
    key = (case_no or "").strip().upper()
    return key if CASE_NO.fullmatch(key) else "-"


def authenticate(
    engine: Engine,
    case_no: str,
    code: str,
    guard: AccessGuard | None = None,
    client: str = "",
) -> Actor:
    """The applicant of a case by its number and code; with a `guard`, a right code on a
    case attacked from `client` is refused too (TooManyAttempts), in the same transaction."""
    with engine.db.tx(readonly=True) as tx:
        return authenticate_in(tx, engine, case_no, code, guard, client)


_BY_NUMBER = "SELECT id, access_code_hash FROM cases WHERE case_no = :n"
# With the guard's count of this client's recent wrong codes on this number, in the same
# statement (a status look-up stays one read of one statement more or less).
_BY_NUMBER_GUARDED = (
    "SELECT id, access_code_hash, (SELECT count(*) FROM access_failures "
    "WHERE case_no = :n AND client = :c AND at > :since) FROM cases WHERE case_no = :n"
)


def authenticate_in(
    tx: Tx,
    engine: Engine,
    case_no: str,
    code: str,
    guard: AccessGuard | None = None,
    client: str = "",
) -> Actor:
    if not CASE_NO.fullmatch(case_no or ""):
        case_no = "-"  # looked up all the same, so a malformed number answers like a wrong one
    number = (case_no or "").strip().upper()
    if guard is None:
        row = tx.one(_BY_NUMBER, {"n": number})
    else:
        row = tx.one(_BY_NUMBER_GUARDED, {"n": number, "c": client[:64], "since": guard.since()})
    stored = row[1] if row is not None and row[1] else _DUMMY_HASH
    given = engine.hash_secret((code or "").strip().upper())
    if not hmac.compare_digest(stored, given) or row is None:
        raise NotFound("no case with this number and access code", "案件编号或查询码不正确")
    if guard is not None and int(row[2]) >= guard.lock_after:
        # A right code, on a case attacked from this client: refused while it lasts.
        guard.check_in(tx, case_no, client)
    return Actor(name=f"applicant:{case_no}", role="applicant", case_id=int(row[0]))


def status_lookup(
    engine: Engine,
    case_no: str,
    code: str,
    lang: str = "zh",
    guard: AccessGuard | None = None,
    client: str = "",
) -> dict[str, Any]:
    """`GET /status`: the access code checked (and the guard asked) and the view read in one
    read transaction."""
    with engine.db.tx(readonly=True) as tx:
        actor = authenticate_in(tx, engine, case_no, code, guard, client)
        return _status_view(tx, engine, actor, lang)


def status_view(engine: Engine, actor: Actor, lang: str = "zh") -> dict[str, Any]:
    """What the applicant sees: plain words, a timeline, what comes next and by when."""
    with engine.db.tx(readonly=True) as tx:
        return _status_view(tx, engine, actor, lang)


def _status_view(tx: Tx, engine: Engine, actor: Actor, lang: str) -> dict[str, Any]:
    # Reads only what the page shows (not the handler's case view with its payloads, hashes
    # and delivery records): applicants check their cases often, from phones.
    assert actor.case_id is not None
    case = engine.load_case(tx, actor.case_id, actor)
    proc = engine.procedures.by_id(case.definition_id)
    state = proc.states[case.state]
    rec = case.record()
    timeline = []
    for trigger, to_state, at in tx.all(_TIMELINE, {"id": case.id}):
        branch = proc.branches.get(trigger)
        if trigger in _HIDDEN or (branch and not branch[0].applicant_visible):
            continue
        if trigger == "submit":
            label = _FILED.get(lang)
        elif trigger in proc.branches:
            label = proc.branches[trigger][0].label.get(lang)
        else:
            continue
        timeline.append(
            {
                "at": t.to_ts(at),
                "event": trigger,
                "label": label,
                "state": to_state,
                "state_label": proc.states[to_state].label.get(lang),
            }
        )
    running = sorted(
        (
            d
            for d in engine.deadlines_in(tx, proc, case.id, lang, engine.now())
            if d["status"] in ("active", "paused", "waiting")
            and (d["timer"] not in proc.timers or proc.timers[d["timer"]].applicant_visible)
        ),
        # Running deadlines first, by due day; paused ones (waiting for the applicant) and
        # ones that start when a notice reaches the applicant after.
        key=lambda d: (d["status"] != "active", d["due_day"] is None, d["due_day"] or date.min),
    )
    next_step = None
    if running:
        d = running[0]
        next_step = {
            "what": d["label"],
            "due_day": d["due_day"],
            "due_at": d["due_at"],
            "provisional": d["provisional"],
            "paused": d["status"] == "paused",
            "on_delivery": d["status"] == "waiting",
        }
    allowed = list(engine.allowed_triggers(proc, case, actor, rec))
    # Letters queued for the applicant but not yet delivered in-app (the outbox sends within
    # seconds): the page says they are on their way instead of "no notices".
    sending = int(tx.scalar(_SENDING, {"id": case.id}) or 0)
    uploads = [
        {"filename": r[0], "size": int(r[1]), "uploaded_at": t.to_ts(r[2])}
        for r in tx.all(_MY_UPLOADS, {"id": case.id})
    ]
    notices = tx.all(
        _APPLICANT_NOTICES, {"id": case.id, "lang": "en" if lang.startswith("en") else "zh"}
    )
    return {
        "case_no": case.case_no,
        "procedure": case.procedure,
        "procedure_title": proc.spec.title.get(lang),
        "state": case.state,
        "state_label": state.label.get(lang),
        "summary": state.summary.get(lang),
        "applicant_todo": state.applicant_todo.get(lang) if state.applicant_todo else None,
        "closed": proc.is_closed(case.state),
        "filed_on": t.to_date(case.row[sql.CASE_FILED_ON]),
        "next_step": next_step,
        "deadlines": [
            {
                "what": d["label"],
                "status": d["status"],
                "due_day": d["due_day"],
                "provisional": d["provisional"],
            }
            for d in running
        ],
        "timeline": timeline,
        "actions": allowed,
        "other_actions": [
            {
                "trigger": trig,
                "label": proc.branches[trig][0].label.get(lang),
                "fields": [
                    {
                        "name": f,
                        "label": proc.fields[f].label.get(lang),
                        "type": proc.fields[f].type,
                        "required": f in proc.branches[trig][0].required,
                    }
                    for f in (*proc.branches[trig][0].required, *proc.branches[trig][0].optional)
                ],
            }
            for trig in allowed
            if trig not in APPLICANT_ACTIONS
        ],
        "version": case.version,
        "notices_sending": sending,
        "uploads": uploads,
        "record": None if rec is None else {"status": rec.status, "disputed": rec.disputed},
        "notices": [
            {
                "id": nid,
                "name": name,
                "subject": subject,
                "created_at": t.to_ts(created_at),
                "pdf_url": f"/api/v1/status/{case.case_no}/notices/{nid}/pdf",
            }
            for nid, name, subject, created_at in notices
        ],
    }
