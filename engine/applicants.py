"""Applicants without an account: a case number and an access code, and the status view.

A wrong number and a wrong code get the same answer in the same time (the code's hash is
compared in constant time, against a dummy when the number is unknown). Repeated wrong codes
from one client are slowed, then refused for a while.
"""

from __future__ import annotations

import contextlib
import hmac
import re
import threading
import time
from collections import deque
from datetime import date
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

# What the applicant can do through /status with a form of its own: supply documents, ask
# for a review, withdraw. Any other trigger open to the applicant (a party's statement, a
# rectification report, a request for re-examination) gets a form made from its fields.
APPLICANT_ACTIONS = ("supplement", "request_review", "withdraw")


class TooManyAttempts(RedressError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"too many wrong access codes; try again in {retry_after} seconds",
            f"查询码错误次数过多，请{retry_after}秒后再试",
        )


class AccessGuard:
    """Counts access-code attempts per client in a sliding window (per process).

    An attempt is counted when it starts, under the lock, and taken back when the code proves
    right: a hundred concurrent wrong codes can no longer all pass the check before the first
    of them is counted (38 of 100 did)."""

    def __init__(self, slow_after: int, lock_after: int, window_s: int) -> None:
        self.slow_after = slow_after
        self.lock_after = lock_after
        self.window = window_s
        self._tries: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._tries.setdefault(client, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def begin(self, client: str) -> tuple[float, float]:
        """Count an attempt; returns (seconds to wait before answering, the attempt's stamp
        for `succeeded`). Raises TooManyAttempts when the client is locked out."""
        with self._lock:
            now = time.monotonic()
            q = self._recent(client, now)
            if len(q) >= self.lock_after:
                raise TooManyAttempts(max(1, int(q[0] + self.window - now)))
            q.append(now)
            extra = len(q) - self.slow_after
        return (0.0 if extra <= 0 else min(0.25 * 2 ** (extra - 1), 4.0)), now

    def succeeded(self, client: str, stamp: float) -> None:
        """The code was right: the attempt does not count against the client."""
        with self._lock:
            q = self._tries.get(client)
            if q is not None:
                with contextlib.suppress(ValueError):  # already out of the window
                    q.remove(stamp)


def authenticate(engine: Engine, case_no: str, code: str) -> Actor:
    with engine.db.tx(readonly=True) as tx:
        return authenticate_in(tx, engine, case_no, code)


def authenticate_in(tx: Tx, engine: Engine, case_no: str, code: str) -> Actor:
    if not CASE_NO.fullmatch(case_no or ""):
        case_no = "-"  # looked up all the same, so a malformed number answers like a wrong one
    row = tx.one(
        "SELECT id, access_code_hash FROM cases WHERE case_no = :n",
        {"n": (case_no or "").strip().upper()},
    )
    stored = row[1] if row is not None and row[1] else _DUMMY_HASH
    given = engine.hash_secret((code or "").strip().upper())
    if not hmac.compare_digest(stored, given) or row is None:
        raise NotFound("no case with this number and access code", "案件编号或查询码不正确")
    return Actor(name=f"applicant:{case_no}", role="applicant", case_id=int(row[0]))


def status_lookup(engine: Engine, case_no: str, code: str, lang: str = "zh") -> dict[str, Any]:
    """`GET /status`: the access code checked and the view read in one read transaction."""
    with engine.db.tx(readonly=True) as tx:
        return _status_view(tx, engine, authenticate_in(tx, engine, case_no, code), lang)


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
