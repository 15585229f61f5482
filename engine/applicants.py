"""Applicants without an account: a case number and an access code, and the status view.

A wrong number and a wrong code get the same answer in the same time (the code's hash is
compared in constant time, against a dummy when the number is unknown). Repeated wrong codes
on a case are slowed, then refused for a while (`AccessGuard`).
"""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine import notices as letters
from engine import schema as t
from engine import sql
from engine.core import _random_code, _record_state, canonical, loads
from engine.db import Tx
from engine.service import Actor, Engine
from engine.sessions import end_sessions_in
from states.errors import FieldError, InvalidPayload, NotFound, RedressError
from states.guards import GUARDS, Context
from states.machine import Procedure, is_clean_text
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
# The one engine event the applicant's timeline shows: the code sent again on request.
_CODE_SENT = Label(zh="查询码已重新发送（申请人申请）", en="access code sent again, as asked")
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
        elif trigger == REISSUED:
            label = _CODE_SENT.get(lang)
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


# -- what a published record allows now (the portal's search results) -------------------------

# The public files as nobody in particular (engine/commands.py: the credit office's window).
PUBLIC = Actor(name="applicant", role="applicant")
# The most records one look-up judges (a search shows a handful).
OUTLOOK_LIMIT = 50
_OPEN_CASES = (
    "SELECT record_id, procedure FROM cases WHERE record_id IN ({ids}) AND closed_at IS NULL"
)
# The same open-case rule `open_in` refuses a filing by, in the same words (never which case).
_CASE_OPEN = Label(
    zh="该记录已有办理中的同类案件，办结前不能再次申请",
    en="this record already has an open case of this kind; it cannot be filed again until "
    "that case is closed",
)


@dataclass(frozen=True)
class Outlook:
    """Whether `procedure` can be filed on a record today, and if not why (in words, with the
    earliest day when time alone will do it). Says nothing of another case but that it is
    open."""

    procedure: str
    possible: bool
    reasons: tuple[str, ...] = ()
    earliest: date | None = None
    case_open: bool = False


def filing_outlook(
    engine: Engine, record_ids: Sequence[int], procedures: Sequence[str], lang: str = "zh"
) -> dict[int, dict[str, Outlook]]:
    """For each record, what filing each procedure on it would meet today, judged by the
    rules the filing itself is judged by: the version in force for the credit office's
    jurisdiction, its intake guards (with the declarations and commitment the form makes the
    applicant give), and the one-open-case-per-record rule. One read transaction."""
    ids = list(dict.fromkeys(int(r) for r in record_ids))[:OUTLOOK_LIMIT]
    if not ids or not procedures:
        return {}
    today = engine.today()
    marks = ", ".join(f":r{i}" for i in range(len(ids)))
    params = {f"r{i}": rid for i, rid in enumerate(ids)}
    by_record = sql.RECORD_FOR_UPDATE.replace("WHERE id = :id", f"WHERE id IN ({marks})")
    assert by_record != sql.RECORD_FOR_UPDATE
    with engine.db.tx(readonly=True) as tx:
        selected: dict[str, Procedure | RedressError] = {}
        try:
            dept = engine._default_department(tx, PUBLIC)
            jurisdiction = str(
                tx.scalar("SELECT jurisdiction FROM departments WHERE id = :id", {"id": dept})
            )
        except RedressError as exc:
            selected = dict.fromkeys(procedures, exc)
        else:
            for name in procedures:
                try:
                    selected[name] = engine.procedures.select(tx, name, jurisdiction, today)[1]
                except RedressError as exc:
                    selected[name] = exc
        records = {
            int(row[0]): _record_state(int(row[0]), row[sql.RECORD_STATE])
            for row in tx.all(by_record, params)
        }
        open_cases = {(int(r), str(p)) for r, p in tx.all(_OPEN_CASES.format(ids=marks), params)}
    out: dict[int, dict[str, Outlook]] = {}
    for rid in ids:
        rec = records.get(rid)
        if rec is None:
            continue
        out[rid] = {}
        for name, proc in selected.items():
            if isinstance(proc, RedressError):
                reason = proc.message if lang == "en" else proc.message_zh
                out[rid][name] = Outlook(name, False, (reason,))
                continue
            spec = proc.spec
            declared = spec.portal.declarations if spec.portal is not None else ()
            payload = {"commitment_signed": True, **dict.fromkeys(declared, True)}
            ctx = Context(case_data={}, payload=payload, record=rec, today=today, rules=spec.rules)
            reasons: list[str] = []
            earliest: date | None = None
            for gname in spec.intake_guards:
                verdict = GUARDS[gname](ctx)
                if not verdict.ok:
                    reasons.append(verdict.reason_en if lang == "en" else verdict.reason_zh)
                    earliest = verdict.earliest or earliest
            taken = (rid, name) in open_cases
            if taken:
                reasons.append(_CASE_OPEN.get(lang))
            out[rid][name] = Outlook(name, not reasons, tuple(reasons), earliest, taken)
    return out


# -- a lost access code, sent again to the contact on file -----------------------------------

REISSUED = "access_code_reissued"  # the case's event, and the notice's name and template
# A case's code is sent again at most this often (whoever asks): a known address cannot be
# used to flood the applicant's mailbox, or to keep their code changing.
REISSUE_MAX = 3
REISSUE_WINDOW = timedelta(hours=24)
CODE_REQUESTED = Label(
    zh="若信息与案件登记一致，新的查询码已发送至登记的电子邮箱或手机，原查询码即时失效。"
    "请查收后凭案件编号和新的查询码查询办理进度。",
    en="If the details match those on file for the case, a new access code has been sent to "
    "the email address or phone number on file, and the old code no longer works. Use it with "
    "the case number to follow your case.",
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


class TooManyCodeRequests(TooManyAttempts):
    """Too many requests for a new code on one case from one client (the wrong-code guard's
    bound: each request counts as a wrong code does)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        RedressError.__init__(
            self,
            f"too many requests for this case; try again in {minutes} minute(s)",
            f"该案件的请求次数过多，请{minutes}分钟后再试",
        )


def contact_key(text: str) -> tuple[str, str] | None:
    """("email", the address in lower case) or ("phone", its digits, without China's +86),
    or None for text that is neither."""
    value = (text or "").strip()
    if not value or len(value) > 200 or not is_clean_text(value):
        return None
    if "@" in value:
        return ("email", value.lower()) if _EMAIL.fullmatch(value) else None
    digits = _PHONE_SEPARATORS.sub("", value)
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits.isascii() or not digits.isdigit():
        return None
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return ("phone", digits) if 5 <= len(digits) <= 20 else None


def check_code_request(case_no: str, contact: str) -> tuple[str, str]:
    """The number and contact of a request for a new code, or InvalidPayload naming the
    field that is wrong (nothing is looked up or counted for a malformed request)."""
    errors: list[FieldError] = []
    number = (case_no or "").strip().upper()
    if not number:
        errors.append(FieldError("case_no", "required", "is required", "必填"))
    elif not CASE_NO.fullmatch(number):
        errors.append(
            FieldError(
                "case_no",
                "format",
                "a case number is 4 to 32 letters and digits, e.g. YY20260407K3M9QX",
                "案件编号应为4至32位字母或数字，如YY20260407K3M9QX",
            )
        )
    if not (contact or "").strip():
        errors.append(FieldError("contact", "required", "is required", "必填"))
    elif contact_key(contact) is None:
        errors.append(
            FieldError(
                "contact",
                "format",
                "enter the email address or the phone number given when the case was filed",
                "请输入申请时登记的电子邮箱或手机号码",
            )
        )
    if errors:
        raise InvalidPayload(errors)
    return number, contact.strip()


def request_new_code(
    engine: Engine, case_no: str, contact: str, guard: AccessGuard, client: str
) -> float:
    """An applicant who lost the access code asks for a new one with the case number and the
    email or phone on file. Returns the seconds to wait before answering; the answer is the
    same whether anything matched (`CODE_REQUESTED`).

    Every request counts as a wrong code does on (case number, client), matched or not, so
    that a 429 (`TooManyCodeRequests`) says nothing of a match either. When the contact is the
    case's own, in one transaction: a new code replaces the old one (which stops working at
    once), the case's applicant sessions end, the case's timeline records it, and the code is
    queued in the outbox to that contact only; the code is never returned. Nothing happens
    for an anonymous case, a contact not on file, a channel not used for applicants, a case
    whose code was sent again `REISSUE_MAX` times in a day, or a party who has not yet been
    given a code by its letter (an identification before its prior notice)."""
    number, given = check_code_request(case_no, contact)
    try:
        delay = guard.failed(number, client)
    except TooManyAttempts as exc:
        raise TooManyCodeRequests(exc.retry_after) from None
    key = contact_key(given)
    assert key is not None
    _reissue(engine, number, key)
    return delay


def _reissue(engine: Engine, number: str, key: tuple[str, str]) -> bool:
    kind, value = key
    channel = "email" if kind == "email" else "sms"
    now = engine.now()
    with engine.db.tx() as tx:
        case_id = tx.scalar("SELECT id FROM cases WHERE case_no = :n", {"n": number})
        case = engine.locked_case(tx, int(case_id)) if case_id is not None else None
        if case is None:
            return False
        person = loads(case.applicant_json)
        on_file = person.get(kind) if not person.get("anonymous") else None
        stored = contact_key(str(on_file)) if on_file else None
        if stored is None or not hmac.compare_digest(stored[1].encode(), value.encode()):
            return False
        if channel not in engine.settings.applicant_channels:
            return False  # no way to send it: the old code keeps working
        proc = engine.procedures.by_id(case.definition_id)
        issuing = sorted(
            {b.name for bs in proc.branches.values() for b in bs if b.issues_access_code}
        )
        if issuing:
            # A party who did not file the case learns of it, and gets its code, from a letter
            # (the prior notice): not before that letter is sent.
            marks = ", ".join(f":t{i}" for i in range(len(issuing)))
            sent = tx.scalar(
                f"SELECT count(*) FROM case_events WHERE case_id = :id AND trigger IN ({marks})",
                {"id": case.id, **{f"t{i}": name for i, name in enumerate(issuing)}},
            )
            if not int(sent or 0):
                return False
        recent = tx.scalar(
            "SELECT count(*) FROM case_events WHERE case_id = :id AND trigger = :t AND at > :since",
            {"id": case.id, "t": REISSUED, "since": engine.sql_ts(now - REISSUE_WINDOW)},
        )
        if int(recent or 0) >= REISSUE_MAX:
            return False
        code = _random_code(10)
        tx.execute(
            "UPDATE cases SET access_code_hash = :h WHERE id = :id",
            {"h": engine.hash_secret(code), "id": case.id},
        )
        ended = end_sessions_in(tx, engine, reason="code_reset", case_id=case.id)
        applicant = Actor(name=f"applicant:{case.case_no}", role="applicant", case_id=case.id)
        engine.append_system_event(
            tx,
            case,
            REISSUED,
            {"channel": channel, "notices": [REISSUED], "sessions_ended": ended},
            now,
            actor=applicant,
        )
        seq = case.event_seq
        context = engine._notice_context(proc, case, case.record(), REISSUED, {}, {}, seq, now)
        context["access_code"] = code
        context["channel"] = channel
        payload = canonical(
            {
                "template": REISSUED,
                "version": letters.latest(REISSUED),
                "event_seq": seq,
                "recipient_role": "applicant",
                "context": context,
            }
        )
        tx.executemany(
            sql.OUTBOX_INSERT,
            [
                {
                    "case_id": case.id,
                    "record_id": case.record_id,
                    "kind": "notice",
                    "name": REISSUED,
                    "recipient": str(on_file).strip(),
                    "channel": channel,
                    "payload": payload,
                    "idempotency_key": f"case:{case.id}:e{seq}:{REISSUED}:{channel}",
                    "now": engine.sql_ts(now),
                }
            ],
        )
    return True
