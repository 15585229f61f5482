"""The service layer: every command redress knows, each one transaction.

`open_case` and `advance` are the commands the API and the flows call; record effects, users and
departments have their own. A command loads what it needs, asks the compiled procedure (pure)
what happens, then writes the case row (version checked), one event, the record's new version,
timer changes and outbox rows, and commits. Any error raised before the commit rolls everything
back, so a refused command writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import orjson
import sqlalchemy as sa

from engine import notices as letters
from engine import schema as t
from engine import sql
from engine.clock import Clock, SystemClock
from engine.db import Database, Slot, Tx
from engine.definitions import Definitions, Deployed
from engine.definitions import catalog as definition_catalog
from engine.settings import get_settings
from states import disclosure
from states.calendar import Due, Period, WorkCalendar
from states.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyConflict,
    Ineligible,
    InvalidPayload,
    NotFound,
    RedressError,
    StaleVersion,
    TransitionNotAllowed,
)
from states.guards import GUARDS, Context
from states.identifiers import IdentifierError, validate_subject_identifier
from states.machine import Procedure, check_json, is_clean_text
from states.records import (
    PUBLICITY_MONTHS,
    RECORD_STATUSES,
    SEVERITIES,
    SOURCE_CATEGORIES,
    SOURCE_LABELS,
    SUBJECT_KINDS,
    RecordChange,
    RecordState,
)
from states.spec import TimerSpec

GENESIS = "0" * 64
PUBLICITY_TIMER = "publicity_max"
STAFF_ROLES = ("handler", "reviewer", "head", "credit_office", "admin")
# Case numbers and access codes avoid characters that are easy to misread on a phone.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _random_code(length: int) -> str:
    """`length` characters of _CODE_ALPHABET, uniformly at random from one draw of the OS's
    random source (a draw per character was one system call each)."""
    n = secrets.randbelow(len(_CODE_ALPHABET) ** length)
    out = []
    for _ in range(length):
        n, i = divmod(n, len(_CODE_ALPHABET))
        out.append(_CODE_ALPHABET[i])
    return "".join(out)


# Reminders go out at 09:00 local on the reminder day: the start of an office's working day.
REMINDER_TIME = time(9, 0)


@dataclass(frozen=True)
class Actor:
    """Who issues a command. Applicants are bound to one case; the clock is `system`."""

    name: str
    role: str
    department_id: str | None = None
    user_id: int | None = None
    case_id: int | None = None
    # The kind of the user's department: "credit_office" for the office that runs the
    # platform, "unit" for a determining unit.
    department_kind: str | None = None

    @property
    def is_staff(self) -> bool:
        # Every role but the applicant's and the clock's is staff, those the installation
        # declares for its procedures (REDRESS_EXTRA_ROLES) included.
        return bool(self.role) and self.role not in ("applicant", "system")

    @property
    def is_office(self) -> bool:
        """Credit-office staff of the credit office itself: they publish and route records.
        The role alone is not enough; in a unit's department it gives nothing more."""
        return self.role == "credit_office" and self.department_kind == "credit_office"

    @property
    def is_global(self) -> bool:
        """Sees and may do everything: an administrator, or the clock."""
        return self.role in ("admin", "system")


SYSTEM = Actor(name="clock", role="system")


@dataclass(frozen=True)
class Opened:
    case_id: int
    case_no: str
    state: str
    version: int
    procedure: str
    definition_version: int
    access_code: str | None
    replayed: bool = False
    definition_id: int = 0


@dataclass(frozen=True)
class Advanced:
    case_id: int
    state: str
    version: int
    seq: int
    replayed: bool = False
    notices: tuple[str, ...] = ()
    record_version: int | None = None


@dataclass(frozen=True)
class AuditProblem:
    case_id: int
    case_no: str
    seq: int
    problem: str


@dataclass
class _Case:
    id: int
    procedure: str
    definition_version: int
    state: str
    version: int
    record_id: int
    department_id: str
    assignee_id: int | None
    data: dict[str, Any]
    event_seq: int
    last_hash: str
    case_no: str
    determining_unit: str
    applicant_json: str = "{}"
    subject_name: str = ""
    definition_id: int = 0  # the stored definition (procedure_versions.id) it runs under
    detail: dict[str, Any] = field(default_factory=dict)
    row: tuple[Any, ...] = ()  # as read by CASE_FOR_COMMAND

    def record(self) -> RecordState | None:
        """The case's record as read (and, on PostgreSQL, locked) with the case; None for a
        case about a subject without a published record."""
        if self.row[5] is None:
            return None
        return _record_state(self.row[5], self.row[sql.CASE_RECORD])


_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ORJSON_CANONICAL |= orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def canonical(obj: Any) -> str:
    """The one text form of a JSON value that hashes and idempotency compare: keys sorted, no
    spaces, non-ASCII kept. orjson writes it (several times faster; an `advance` makes about
    five). It is the standard library's form (tests/engine/test_canonical.py) except for how a
    float is spelled (1e-7, not 1e-07) and NaN, which redress refuses before it gets here;
    what orjson cannot write (integers beyond 64 bits, lone surrogates) goes to the standard
    library."""
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_CANONICAL).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _canonical_stdlib(obj)


def loads(text: str) -> Any:
    """Parse JSON the engine stored (orjson; the standard library for what it cannot read,
    integers beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _canonical_stdlib(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def _event_body(
    case_id: int,
    seq: int,
    trigger: str,
    src: str | None,
    dest: str,
    version: int,
    actor: str,
    role: str,
    at: str,
    payload: str,
    detail: str,
) -> dict[str, Any]:
    # Everything that makes the event what it is, so altering any column breaks the chain.
    return {
        "case_id": case_id,
        "seq": seq,
        "trigger": trigger,
        "from": src,
        "to": dest,
        "version": version,
        "actor": actor,
        "role": role,
        "at": at,
        "payload": payload,
        "detail": detail,
    }


def _record_state(record_id: int, r: Sequence[Any]) -> RecordState:
    """A record from RECORD_FOR_UPDATE's columns after the id (CASE_FOR_COMMAND's CASE_RECORD)."""
    return RecordState(
        id=record_id,
        version=r[0],
        status=r[1],
        disputed=bool(r[2]),
        severity=r[3],
        published_from=t.to_date(r[4]) or date.min,
        content=loads(r[5]),
        repair_barred_until=t.to_date(r[6]),
        source_category=r[7],
        decision_date=t.to_date(r[8]),
    )


JURISDICTION_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _check_jurisdiction(name: str) -> None:
    if not JURISDICTION_NAME.fullmatch(name):
        raise InvalidPayload(
            [
                FieldError(
                    "jurisdiction",
                    "invalid",
                    f"{name!r} is not a jurisdiction name (lower-case letters, digits, - and _)",
                    f"“{name}”不是有效的辖区名称（小写字母、数字、-、_）",
                )
            ]
        )


class Engine:
    """The one service layer. Holds no per-case state; safe to share between threads."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock | None = None,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.settings = get_settings()
        self.procedures = Definitions(db, definition_catalog(self.settings.extra_roles))
        self.calendar = calendar or WorkCalendar(tz=self.settings.timezone)
        # Each jurisdiction's calendar: the national one plus its local days (refreshed with
        # the national one by Deadlines.refresh_calendar).
        self.calendars: dict[str, WorkCalendar] = {}
        # What the operators' calendar data looked like when `calendar` was built.
        self.calendar_stamp: tuple[Any, ...] | None = None
        self._departments: dict[str, dict[str, str]] | None = None
        self._jurisdictions: dict[str, str] = {}

    # -- small helpers ----------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return self.calendar.local_date(self.now())

    def sql_ts(self, value: datetime | None) -> Any:
        return t.ts_param(value, self.db.dialect)

    def sql_date(self, value: date | None) -> Any:
        return t.date_param(value, self.db.dialect)

    def hash_secret(self, secret: str) -> str:
        if not self.settings.secret_key:
            # Hashing with an empty pepper would store tokens no configured server accepts.
            raise RedressError(
                "no secret key: set REDRESS_SECRET_KEY or run `redress secret init`",
                "未设置密钥：请设置 REDRESS_SECRET_KEY 或运行 redress secret init",
            )
        key = self.settings.secret_key.encode()
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()

    # -- departments and users --------------------------------------------------------------

    def add_department(
        self,
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

    def set_jurisdiction(self, dept_id: str, jurisdiction: str) -> None:
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
        self._jurisdictions = {}

    def add_user(
        self, name: str, role: str, department_id: str, email: str | None = None
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

    def actor_by_id(self, user_id: int) -> Actor:
        """An active user by id (the CLI's own commands, tests)."""
        with self.db.tx(readonly=True) as tx:
            row = tx.one(self._USER + "u.id = :id", {"id": user_id})
        if row is None:
            raise Forbidden("unknown or inactive user", "用户不存在或已停用")
        return self._actor_of(row)

    def authenticate(self, token: str) -> Actor:
        """The active user of a bearer token. Read on every request, never cached, so that a
        disabled user's token stops working at once in every process (one indexed read)."""
        with self.db.tx(readonly=True) as tx:
            return self.authenticate_in(tx, token)

    def authenticate_in(self, tx: Tx, token: str) -> Actor:
        row = tx.one(self._USER + "u.token_hash = :h", {"h": self.hash_secret(token)})
        if row is None:
            raise Forbidden("unknown or inactive token", "令牌无效或已停用")
        return self._actor_of(row)

    def set_user_active(self, name: str, active: bool) -> int:
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

    # -- records ----------------------------------------------------------------------------

    def create_record(
        self,
        *,
        actor: Actor,
        subject_kind: str,
        subject_name: str,
        subject_identifier: str,
        source_category: str,
        severity: str,
        determining_unit: str,
        decision_date: date,
        published_from: date,
        content: Mapping[str, Any] | None = None,
    ) -> int:
        if not (actor.is_office or actor.is_global):
            raise Forbidden(
                "only the credit office publishes records", "只有信用管理部门可以发布记录"
            )
        errors: list[FieldError] = []
        for fname, value, allowed in (
            ("subject_kind", subject_kind, SUBJECT_KINDS),
            ("source_category", source_category, SOURCE_CATEGORIES),
            ("severity", severity, SEVERITIES),
        ):
            if value not in allowed:
                errors.append(
                    FieldError(
                        fname,
                        "choice",
                        f"{value!r} is not one of: {', '.join(allowed)}",
                        f"“{value}”不是可选值之一：{'、'.join(allowed)}",
                    )
                )
        if not subject_name.strip():
            errors.append(FieldError("subject_name", "required", "is required", "必填"))
        elif not is_clean_text(subject_name) or len(subject_name) > 200:
            errors.append(
                FieldError(
                    "subject_name",
                    "text",
                    "contains an invalid character or is too long",
                    "含有非法字符或过长",
                )
            )
        ident = subject_identifier
        if subject_kind in SUBJECT_KINDS:
            try:
                ident = validate_subject_identifier(subject_kind, subject_identifier)
            except IdentifierError as exc:
                errors.append(
                    FieldError("subject_identifier", exc.code, exc.message_en, exc.message_zh)
                )
        if published_from < decision_date:
            errors.append(
                FieldError(
                    "published_from", "range", "is before the decision date", "公示日期早于决定日期"
                )
            )
        if errors:
            raise InvalidPayload(errors)
        check_json(content or {}, "content")
        now = self.now()
        body = canonical(dict(content or {}))
        with self.db.tx() as tx:
            if not tx.scalar("SELECT 1 FROM departments WHERE id = :id", {"id": determining_unit}):
                raise InvalidPayload(
                    [
                        FieldError(
                            "determining_unit",
                            "unknown",
                            f"no department {determining_unit!r}",
                            f"没有部门“{determining_unit}”",
                        )
                    ]
                )
            rid = int(
                tx.scalar(
                    "INSERT INTO credit_records (subject_kind, subject_name, subject_identifier, "
                    "source_category, severity, determining_unit, decision_date, published_from, "
                    "status, disputed, version, content, repair_barred_until, created_at, "
                    "updated_at) "
                    "VALUES (:k, :n, :i, :c, :s, :u, :dd, :pf, 'published', :f, 1, :content, NULL, "
                    ":now, :now) RETURNING id",
                    {
                        "k": subject_kind,
                        "n": subject_name.strip(),
                        "i": ident,
                        "c": source_category,
                        "s": severity,
                        "u": determining_unit,
                        "dd": self.sql_date(decision_date),
                        "pf": self.sql_date(published_from),
                        "f": False,
                        "content": body,
                        "now": self.sql_ts(now),
                    },
                )
            )
            tx.execute(
                sql.RECORD_VERSION_INSERT,
                {
                    "record_id": rid,
                    "version": 1,
                    "status": "published",
                    "disputed": False,
                    "content": body,
                    "repair_barred_until": None,
                    "reason": "公示 / published",
                    "actor": actor.name,
                    "case_id": None,
                    "at": self.sql_ts(now),
                },
            )
            self._queue_sync(tx, rid, 1, "published", False, now)
            self._start_publicity_timer(tx, rid, severity, published_from, now)
        return rid

    def _start_publicity_timer(
        self, tx: Tx, record_id: int, severity: str, published_from: date, now: datetime
    ) -> None:
        """Publication stops by itself when the maximum period for the severity ends (22号)."""
        months = PUBLICITY_MONTHS.get(severity, (0, 36))[1]
        due = self.calendar.add(published_from, Period(months, "months"))
        tx.execute(
            sql.TIMER_INSERT,
            {
                "case_id": None,
                "record_id": record_id,
                "name": PUBLICITY_TIMER,
                "period": str(Period(months, "months")),
                "started_at": self.sql_ts(now),
                "anchor_day": self.sql_date(published_from),
                "amount": months,
                "due_day": self.sql_date(due.day),
                "due_at": self.sql_ts(due.at),
                "provisional": due.provisional,
                "next_action": "due",
                "next_at": self.sql_ts(due.at),
            },
        )

    def change_record(
        self,
        record_id: int,
        *,
        actor: Actor,
        action: str,
        reason: str,
        content: Mapping[str, Any] | None = None,
    ) -> int:
        """A credit office's direct act on a record, outside any case. Returns the new version.

        action: mark_disputed | unmark_disputed | correct | revoke | stop_publication | republish
        """
        if not (actor.is_office or actor.role == "admin"):
            raise Forbidden(
                "only the credit office changes records", "只有信用管理部门可以变更记录"
            )
        if not reason.strip():
            raise InvalidPayload([FieldError("reason", "required", "is required", "必填")])
        statuses = {
            "revoke": "revoked",
            "stop_publication": "publication_stopped",
            "republish": "published",
        }
        with self.db.tx() as tx:
            rec = self.load_record(tx, record_id)
            if action == "mark_disputed":
                change = RecordChange(reason=reason, disputed=True)
            elif action == "unmark_disputed":
                change = RecordChange(reason=reason, disputed=False)
            elif action == "correct":
                if content:
                    check_json(content, "content")
                if not content:
                    raise InvalidPayload(
                        [
                            FieldError(
                                "content",
                                "required",
                                "the corrected content is required",
                                "须提供更正后的内容",
                            )
                        ]
                    )
                change = RecordChange(reason=reason, content={**rec.content, **content})
            elif action in statuses:
                if rec.status == statuses[action]:
                    raise Conflict(
                        f"record {record_id} is already {rec.status}", f"记录已是“{rec.status}”状态"
                    )
                change = RecordChange(reason=reason, status=statuses[action])
            else:
                raise InvalidPayload(
                    [
                        FieldError(
                            "action", "choice", f"unknown action {action!r}", f"未知操作“{action}”"
                        )
                    ]
                )
            return self.apply_record_change(tx, rec, change, actor.name, None, self.now())

    def load_record(self, tx: Tx, record_id: int, lock: bool = True) -> RecordState:
        return self._load_record_and_unit(tx, record_id, lock)[0]

    def _load_record_and_unit(
        self, tx: Tx, record_id: int, lock: bool = True
    ) -> tuple[RecordState, str, str]:
        """The record, its determining unit and its subject's name."""
        # The row lock serialises effects on one record from different cases (PostgreSQL;
        # SQLite's BEGIN IMMEDIATE already serialises every writer).
        q = sql.RECORD_FOR_UPDATE + (self.db.strategy.lock_row() if lock else "")
        row = tx.one(q, {"id": record_id})
        if row is None:
            raise NotFound(f"no record {record_id}", f"没有编号为{record_id}的记录")
        return (
            _record_state(row[0], row[sql.RECORD_STATE]),
            row[sql.RECORD_UNIT],
            row[sql.RECORD_SUBJECT],
        )

    def apply_record_change(
        self,
        tx: Tx,
        rec: RecordState,
        change: RecordChange,
        actor: str,
        case_id: int | None,
        now: datetime,
    ) -> int:
        status = change.status if change.status is not None else rec.status
        if status not in RECORD_STATUSES:  # a definition bug, not user input
            raise ValueError(f"effect produced unknown record status {status!r}")
        disputed = change.disputed if change.disputed is not None else rec.disputed
        content = canonical(change.content if change.content is not None else rec.content)
        bar = change.repair_barred_until or rec.repair_barred_until
        n = tx.execute(
            sql.RECORD_UPDATE,
            {
                "status": status,
                "disputed": disputed,
                "content": content,
                "repair_barred_until": self.sql_date(bar),
                "now": self.sql_ts(now),
                "id": rec.id,
                "version": rec.version,
            },
        )
        if n != 1:  # only possible if the row lock was not held; refuse rather than overwrite
            raise Conflict(f"record {rec.id} changed concurrently", "记录已被并发修改，请重试")
        version = rec.version + 1
        if rec.status == "published" and status != "published":
            tx.execute(sql.RECORD_TIMERS_STOP, {"id": rec.id, "now": self.sql_ts(now)})
        elif rec.status != "published" and status == "published":
            self._start_publicity_timer(tx, rec.id, rec.severity, rec.published_from, now)
        tx.execute(
            sql.RECORD_VERSION_INSERT,
            {
                "record_id": rec.id,
                "version": version,
                "status": status,
                "disputed": disputed,
                "content": content,
                "repair_barred_until": self.sql_date(bar),
                "reason": change.reason,
                "actor": actor,
                "case_id": case_id,
                "at": self.sql_ts(now),
            },
        )
        self._queue_sync(tx, rec.id, version, status, disputed, now)
        return version

    def _queue_sync(
        self, tx: Tx, record_id: int, version: int, status: str, disputed: bool, now: datetime
    ) -> None:
        # Pushed to the public credit platform in order per record (the version orders them).
        tx.execute(
            sql.OUTBOX_INSERT,
            {
                "case_id": None,
                "record_id": record_id,
                "kind": "platform_sync",
                "name": "record_changed",
                "channel": None,
                "recipient": "platform",
                "payload": canonical(
                    {
                        "record_id": record_id,
                        "version": version,
                        "status": status,
                        "disputed": disputed,
                    }
                ),
                "idempotency_key": f"record:{record_id}:v{version}",
                "now": self.sql_ts(now),
            },
        )

    def _attachments(self) -> Any:
        from engine.attachments import Attachments  # it builds on this module

        return Attachments(self)

    # -- procedure definitions ----------------------------------------------------------------

    def deploy_procedure(
        self,
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

    # -- opening a case -------------------------------------------------------------------

    def open_case(
        self,
        *,
        procedure: str,
        record_id: int,
        applicant: Mapping[str, Any],
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        filed_on: date | None = None,
        department_id: str | None = None,
        idempotency_key: str | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> Opened:
        """Open a case; `files` (the application's evidence) are stored with it in one
        transaction, as the applicant's own uploads."""
        now = self.now()
        filed = filed_on or self.calendar.local_date(now)
        if filed > self.calendar.local_date(now):
            raise InvalidPayload(
                [
                    FieldError(
                        "filed_on",
                        "future",
                        "the filing date cannot be after today",
                        "收件日期不能晚于今天",
                    )
                ]
            )
        prepared = self._attachments().prepare(files) if files else ()
        check_json(payload or {}, "payload")
        check_json(applicant, "applicant")
        person = self._validate_applicant(applicant)
        if department_id and not (
            actor.is_office or actor.is_global or department_id == actor.department_id
        ):
            # Staff file into their own department; only the credit office routes elsewhere.
            raise Forbidden(
                "only the credit office or an administrator files a case into another department",
                "只有信用管理部门或管理员可以将案件分派给其他部门",
            )
        code = _random_code(10)
        with self.db.tx() as tx:
            dept = department_id or self._default_department(tx, actor)
            jurisdiction = tx.scalar(
                "SELECT jurisdiction FROM departments WHERE id = :id", {"id": dept}
            )
            if jurisdiction is None:
                raise InvalidPayload(
                    [
                        FieldError(
                            "department_id",
                            "unknown",
                            f"no department {dept!r}",
                            f"没有部门“{dept}”",
                        )
                    ]
                )
            # The version in force on the filing day for the handling department's
            # jurisdiction, read in this transaction: a version deployed a moment ago by any
            # process applies.
            def_id, proc = self.procedures.select(tx, procedure, str(jurisdiction), filed)
            fields = proc.validate_intake(payload or {})
            req_hash = hashlib.sha256(
                canonical(
                    # Who asks is part of the request: another caller reusing a key gets a
                    # conflict, never someone else's case.
                    {
                        "p": procedure,
                        "r": record_id,
                        "a": person,
                        "f": fields,
                        "d": filed,
                        "by": [actor.name, actor.role, actor.department_id],
                    }
                ).encode()
            ).hexdigest()
            if idempotency_key:
                prior = tx.one(
                    "SELECT id, case_no, request_hash, state, version, procedure, "
                    "definition_version, definition_id FROM cases WHERE idempotency_key = :k",
                    {"k": idempotency_key},
                )
                if prior is not None:
                    if prior[2] != req_hash:
                        raise IdempotencyConflict(
                            "this idempotency key was used for a different application",
                            "该幂等键已用于另一份申请",
                        )
                    return Opened(
                        prior[0],
                        prior[1],
                        prior[3],
                        prior[4],
                        prior[5],
                        prior[6],
                        None,
                        replayed=True,
                        definition_id=prior[7],
                    )
            rec, rec_unit, rec_subject = self._load_record_and_unit(tx, record_id)
            ctx = Context(
                case_data={}, payload=fields, record=rec, today=filed, rules=proc.spec.rules
            )
            for gname in proc.spec.intake_guards:
                verdict = GUARDS[gname](ctx)
                if not verdict.ok:
                    raise Ineligible(verdict.reason_en, verdict.reason_zh, verdict.earliest)
            dup = tx.scalar(
                "SELECT case_no FROM cases WHERE record_id = :r AND procedure = :p "
                "AND closed_at IS NULL",
                {"r": record_id, "p": procedure},
            )
            if dup:
                # Not which case: the caller may not be allowed to see it.
                raise Conflict(
                    f"record {record_id} already has an open {procedure} case",
                    "该记录已有办理中的同类案件",
                )
            state = proc.initial
            at = self.sql_ts(now)
            payload_text = canonical({"applicant": person, **fields})
            detail: dict[str, Any] = {}
            person_text = canonical(person)
            row = {
                "p": procedure,
                "v": proc.version,
                "def": def_id,
                "s": state,
                "r": record_id,
                "d": dept,
                "a": person_text,
                "f": self.sql_date(filed),
                "at": at,
                "h": GENESIS,
                "code": self.hash_secret(code),
                "k": idempotency_key,
                "rh": req_hash,
            }
            prefix = f"{proc.spec.case_prefix}{filed:%Y%m%d}"
            # Random, so case numbers cannot be enumerated; a number already taken (rare)
            # inserts nothing and the next one is tried.
            for _ in range(8):
                case_no = prefix + _random_code(6)
                data = {**fields, "case_no": case_no, "filed_on": filed.isoformat()}
                inserted = tx.scalar(
                    sql.CASE_INSERT, {**row, "no": case_no, "data": canonical(data)}
                )
                if inserted is not None:
                    break
            else:  # pragma: no cover
                raise Conflict("could not allocate a case number", "无法分配案件编号")
            case_id = int(inserted)
            case = _Case(
                case_id,
                procedure,
                proc.version,
                state,
                1,
                record_id,
                dept,
                None,
                data,
                0,
                GENESIS,
                case_no,
                rec_unit,
                person_text,
                rec_subject,
                definition_id=def_id,
            )
            started = self.start_timers(
                tx, proc, case, proc.spec.initial_state.starts, now, anchor=filed
            )
            if started:
                detail["deadlines"] = started
            notices = self._queue_notices(
                tx, proc, case, proc.spec.intake_notices, 1, now, "submit", fields, detail, rec
            )
            if notices:
                detail["notices"] = notices
            self.append_event(
                tx,
                case,
                self.event_row(case, "submit", None, state, 1, actor, now, payload_text, detail),
            )
            tx.execute(sql.CASE_CHAIN_UPDATE, {"seq": 1, "hash": case.last_hash, "id": case_id})
            if prepared:
                # The public files as nobody in particular; the files are the case's applicant's.
                who = (
                    Actor(name=f"applicant:{case_no}", role="applicant", case_id=case_id)
                    if actor.role == "applicant"
                    else actor
                )
                self._attachments().record_in(tx, case, who, prepared, now)
        return Opened(
            case_id, case_no, state, 1, procedure, proc.version, code, definition_id=def_id
        )

    def _validate_applicant(self, applicant: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(applicant, Mapping):
            raise InvalidPayload([FieldError("applicant", "type", "must be an object", "须为对象")])
        errors: list[FieldError] = []
        kind = applicant.get("kind")
        name = str(applicant.get("name") or "").strip()
        ident = str(applicant.get("identifier") or "")
        if kind not in SUBJECT_KINDS:
            errors.append(
                FieldError(
                    "applicant.kind",
                    "choice",
                    f"must be one of {', '.join(SUBJECT_KINDS)}",
                    f"须为{'、'.join(SUBJECT_KINDS)}之一",
                )
            )
        if not name:
            errors.append(FieldError("applicant.name", "required", "is required", "必填"))
        elif len(name) > 200:
            errors.append(
                FieldError("applicant.name", "too_long", "at most 200 characters", "最多200个字符")
            )
        if kind in SUBJECT_KINDS:
            try:
                ident = validate_subject_identifier(kind, ident, self.today())
            except IdentifierError as exc:
                errors.append(
                    FieldError("applicant.identifier", exc.code, exc.message_en, exc.message_zh)
                )
        contact = {k: str(applicant[k]).strip() for k in ("email", "phone") if applicant.get(k)}
        for k, v in (("name", name), *contact.items()):
            if not is_clean_text(v) or len(v) > 200:
                errors.append(
                    FieldError(
                        f"applicant.{k}",
                        "text",
                        "contains an invalid character or is too long",
                        "含有非法字符或过长",
                    )
                )
        extra = set(applicant) - {"kind", "name", "identifier", "email", "phone"}
        for k in sorted(extra):
            errors.append(
                FieldError(
                    f"applicant.{k}",
                    "unknown",
                    "not a field; allowed: kind, name, identifier, email, phone",
                    "无此字段；可用字段：kind、name、identifier、email、phone",
                )
            )
        if errors:
            raise InvalidPayload(errors)
        return {"kind": kind, "name": name, "identifier": ident, **contact}

    def _default_department(self, tx: Tx, actor: Actor) -> str:
        # Cases are handled by the credit office (one intake window); staff filing on an
        # applicant's behalf file into their own department.
        if actor.is_staff and actor.department_id:
            return actor.department_id
        dept = tx.scalar("SELECT id FROM departments WHERE kind = 'credit_office' ORDER BY id")
        if dept is None:
            raise NotFound("no credit office department is set up", "尚未设置信用管理部门")
        return str(dept)

    # -- advancing a case -----------------------------------------------------------------

    def advance(
        self,
        case_id: int,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        files: Sequence[tuple[str, bytes]] = (),
        within: Slot | None = None,
    ) -> Advanced:
        """Fire `trigger`; `files` (documents supplied with it) are stored in the same
        transaction, so a supplement is never half-made (files without the step, or the step
        without its files). `within`: the slot of a group of commands committed together
        (the API's write lane on SQLite); otherwise the command is its own transaction."""
        payload = payload if payload is not None else {}
        check_json(payload, "payload")
        now = self.now()
        prepared = self._attachments().prepare(files) if files else ()
        req_hash = (
            hashlib.sha256(
                canonical([trigger, payload, expected_version, actor.name, actor.role]).encode()
            ).hexdigest()
            if idempotency_key
            else None
        )
        with within.tx() if within is not None else self.db.tx() as tx:
            case = self.load_case(tx, case_id, actor, lock=True)
            if idempotency_key:
                prior = tx.one(sql.EVENT_BY_KEY, {"case_id": case_id, "key": idempotency_key})
                if prior is not None:
                    if prior[0] != req_hash:
                        raise IdempotencyConflict(
                            "this idempotency key was used for a different command",
                            "该幂等键已用于另一操作",
                        )
                    done = json.loads(prior[4])
                    return Advanced(
                        case_id,
                        prior[1],
                        prior[2],
                        prior[3],
                        replayed=True,
                        notices=tuple(done.get("notices", ())),
                        record_version=done.get("record_version"),
                    )
            if expected_version is not None and expected_version != case.version:
                raise StaleVersion(case_id, expected_version, case.version)
            if prepared:
                self._attachments().record_in(tx, case, actor, prepared, now)
            return self.advance_locked(
                tx, case, trigger, actor, payload, now, idempotency_key, req_hash
            )

    def advance_locked(
        self,
        tx: Tx,
        case: _Case,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: datetime,
        idempotency_key: str | None = None,
        req_hash: str | None = None,
    ) -> Advanced:
        """Fire `trigger` on a case already loaded (and locked) in this transaction."""
        proc = self.procedures.by_id(case.definition_id)
        self._authorize(proc, case, trigger, actor)
        fields = proc.validate_payload(trigger, payload)
        refusal = self._extension_refusal(proc, case, trigger)
        if refusal is not None:
            raise TransitionNotAllowed(
                trigger, case.state, self._allowed_names(proc, case, actor), *refusal
            )
        branches = proc.branches[trigger]
        needs_record = any(b.effect or b.guards or b.unless for b in branches)
        rec = case.record() if needs_record else None
        today = self.calendar.local_date(now)
        ctx = Context(case.data, fields, rec, today, proc.spec.rules, actor.name, actor.role)
        try:
            fired = proc.fire(case.state, trigger, ctx)
        except TransitionNotAllowed as exc:
            # The machine knows the guards; the engine knows who is asking.
            raise TransitionNotAllowed(
                trigger,
                case.state,
                self._allowed_names(proc, case, actor),
                exc.reason,
                exc.reason_zh,
            ) from None
        branch = fired.trigger
        data = {**case.data, **fields, **branch.sets}
        if branch.records_actor:
            data[branch.records_actor] = {"name": actor.name, "role": actor.role}
        for tm in proc.extended_by.get(trigger, ()):
            # Counted per timer; the request trigger is refused once max_count is reached.
            counts = dict(data.get("extensions") or {})
            counts[tm.name] = int(counts.get(tm.name, 0)) + 1
            data["extensions"] = counts
        detail = case.detail
        version = case.version + 1
        closed = proc.is_closed(fired.dest)
        at = self.sql_ts(now)
        seq = case.event_seq + 1
        payload_text = canonical(fields)
        # The effect is worked out first: a sync timer starts only if the record changes.
        effect = proc.effect(branch)
        change = None
        if effect is not None and rec is not None:
            change = effect(
                rec, Context(data, fields, rec, today, proc.spec.rules, actor.name, actor.role)
            )
        timer_changes = self._apply_timer_plan(
            tx, proc, case, fired.source, fired.dest, trigger, data, now, change is not None
        )
        if timer_changes:
            detail["deadlines"] = timer_changes
        record_version = None
        if change is not None and rec is not None:
            record_version = self.apply_record_change(tx, rec, change, actor.name, case.id, now)
            detail["record_version"] = record_version
        notices = self._queue_notices(
            tx, proc, case, branch.notices, seq, now, trigger, fields, detail, rec
        )
        if notices:
            detail["notices"] = notices
        event = self.event_row(
            case,
            trigger,
            fired.source,
            fired.dest,
            version,
            actor,
            now,
            payload_text,
            detail,
            idempotency_key,
            req_hash,
        )
        n = tx.execute(
            sql.CASE_UPDATE,
            {
                "state": fired.dest,
                "data": canonical(data),
                "seq": seq,
                "hash": event["hash"],
                "now": at,
                "closed_at": at if closed else None,
                "id": case.id,
                "version": case.version,
            },
        )
        if n != 1:
            current = tx.scalar(sql.CASE_VERSION, {"id": case.id})
            raise StaleVersion(case.id, case.version, int(current or 0))
        self.append_event(tx, case, event)
        return Advanced(
            case.id, fired.dest, version, seq, notices=tuple(notices), record_version=record_version
        )

    def load_case(self, tx: Tx, case_id: int, actor: Actor, lock: bool = False) -> _Case:
        # A command locks the case row as it reads it (PostgreSQL), so a concurrent command
        # waits here and then sees the new version: it fails as stale before writing anything.
        row = self.case_row(tx, case_id, lock)
        if row is None or not self._can_see(actor, row[0], row[6], row[12]):
            # Another department's case looks exactly like a missing one: numbers do not leak.
            raise NotFound(f"no case {case_id}", f"没有编号为{case_id}的案件")
        return self.case_from_row(row)

    def case_row(self, tx: Tx, case_id: int, lock: bool, skip: bool = False) -> Any:
        """CASE_FOR_COMMAND's row, for a case with or without a record (`skip`: a row
        another transaction holds is passed over, for sweepers)."""
        strategy = self.db.strategy
        q = sql.CASE_FOR_COMMAND + (strategy.lock_case(skip) if lock else "")
        row = tx.one(q, {"id": case_id})
        if row is None:
            q = sql.CASE_WITHOUT_RECORD + (strategy.lock_row(skip) if lock else "")
            row = tx.one(q, {"id": case_id})
        return row

    @staticmethod
    def case_from_row(row: tuple[Any, ...]) -> _Case:
        return _Case(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            loads(row[8]),
            row[9],
            row[10],
            row[11],
            row[12],
            row[13],
            row[14],
            definition_id=row[sql.CASE_DEFINITION_ID],
            row=row,
        )

    def append_system_event(
        self, tx: Tx, case: _Case, trigger: str, detail: Mapping[str, Any], now: datetime
    ) -> None:
        """An event that records what the clock did without moving the case (no new version:
        a reminder must not make a handler's open form stale)."""
        row = self.event_row(
            case, trigger, case.state, case.state, case.version, SYSTEM, now, canonical({}), detail
        )
        self.append_event(tx, case, row)
        tx.execute(
            sql.CASE_CHAIN_UPDATE, {"seq": case.event_seq, "hash": case.last_hash, "id": case.id}
        )

    @staticmethod
    def _can_see(actor: Actor, case_id: int, dept: str, unit: str) -> bool:
        return disclosure.sees_case(actor, case_id=case_id, handling=dept, unit=unit)

    def _authorize(self, proc: Procedure, case: _Case, trigger: str, actor: Actor) -> None:
        if trigger not in proc.triggers_from(case.state):
            raise TransitionNotAllowed(trigger, case.state, self._allowed_names(proc, case, actor))
        branch = proc.branches[trigger][0]
        if actor.role not in branch.roles and actor.role != "admin":
            raise Forbidden(
                f"role {actor.role!r} may not {trigger!r}; it needs one of: "
                f"{', '.join(branch.roles)}",
                f"角色“{actor.role}”不能执行“{trigger}”，需要：{'、'.join(branch.roles)}",
            )
        if not self._in_scope(branch.scope, case, actor):
            who = (
                "the determining unit"
                if branch.scope == "determining_unit"
                else "the handling department"
            )
            unit_zh = "认定单位" if branch.scope == "determining_unit" else "承办部门"
            raise Forbidden(
                f"{trigger!r} is for {who} of this case",
                f"“{trigger}”须由本案{unit_zh}执行",
            )

    @staticmethod
    def _in_scope(scope: str, case: _Case, actor: Actor) -> bool:
        if not actor.is_staff or actor.role == "admin":
            return True
        if scope == "handling":
            return actor.department_id == case.department_id
        if scope == "determining_unit":
            return actor.department_id == case.determining_unit
        return actor.department_id in (case.department_id, case.determining_unit)

    def _allowed_names(self, proc: Procedure, case: _Case, actor: Actor) -> list[str]:
        return list(self.allowed_triggers(proc, case, actor, None))

    def allowed_triggers(
        self, proc: Procedure, case: _Case, actor: Actor, rec: RecordState | None
    ) -> Iterator[str]:
        """The triggers `actor` may fire on `case` now, in the procedure's order."""
        ctx = Context(case.data, {}, rec, self.today(), proc.spec.rules, actor.name, actor.role)
        for trig in proc.triggers_from(case.state):
            b = proc.branches[trig][0]
            if actor.role not in b.roles and actor.role != "admin":
                continue
            if not self._in_scope(b.scope, case, actor):
                continue
            if self._extension_refusal(proc, case, trig) is not None:
                continue
            # Judged without the command's fields: guards on those are checked when it is sent.
            if proc.guard_verdicts(case.state, trig, ctx):
                continue
            yield trig

    def _allowed(
        self, proc: Procedure, case: _Case, actor: Actor, rec: RecordState | None
    ) -> list[dict[str, Any]]:
        out = []
        for trig in self.allowed_triggers(proc, case, actor, rec):
            b = proc.branches[trig][0]
            out.append(
                {
                    "trigger": trig,
                    "label": b.label.model_dump(),
                    "required": list(b.required),
                    "optional": list(b.optional),
                    "fields": [proc.fields[f].model_dump() for f in (*b.required, *b.optional)],
                }
            )
        return out

    @staticmethod
    def _extension_refusal(proc: Procedure, case: _Case, trigger: str) -> tuple[str, str] | None:
        """(en, zh) if `trigger` asks for an extension the definition no longer allows."""
        tm = proc.extension_requests.get(trigger)
        if tm is None or tm.extension is None:
            return None
        used = int((case.data.get("extensions") or {}).get(tm.name, 0))
        if used < tm.extension.max_count:
            return None
        n = tm.extension.max_count
        return (
            f"the {tm.label.en} may be extended {n} time(s) in all; that has been used",
            f"{tm.label.zh}只能延期{n}次，已延期{used}次",
        )

    # -- timers -----------------------------------------------------------------------------

    def start_timers(
        self,
        tx: Tx,
        proc: Procedure,
        case: _Case,
        names: tuple[str, ...],
        now: datetime,
        running: set[str] | None = None,
        anchor: date | None = None,
        record_changed: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Start the named timers. `anchor`: the day counting starts after (default today;
        a case keyed in later counts from the filing day the applicant gave)."""
        cal = self.calendar_of(case)
        changes = []
        rows = []
        waiting = []
        today = self.calendar.local_date(now)
        day = anchor or today
        for name in names:
            if running and name in running:  # a case-wide timer keeps running on re-entry
                continue
            spec = proc.timers[name]
            if spec.scope == "sync" and not record_changed:
                continue  # nothing to push, so nothing to withdraw in time
            if spec.when is not None:
                ctx = Context(data or case.data, {}, None, today, proc.spec.rules)
                if not GUARDS[spec.when](ctx).ok:
                    continue
            period = Period.parse(spec.period)
            if spec.starts_on_delivery:
                check = cal.add(today, Period.parse(spec.undelivered_after)).day
                waiting.append(
                    {
                        "case_id": case.id,
                        "record_id": None,
                        "name": name,
                        "period": spec.period,
                        "started_at": self.sql_ts(now),
                        "amount": period.amount,
                        "next_at": self.sql_ts(
                            datetime.combine(check, REMINDER_TIME, tzinfo=cal.tz)
                        ),
                    }
                )
                changes.append(
                    {"timer": name, "change": "waiting", "notice": spec.starts_on_delivery}
                )
                continue
            due = cal.add(day, period)
            action, at = self._next_action(spec.reminder_before, due, now, cal)
            rows.append(
                {
                    "case_id": case.id,
                    "record_id": case.record_id if spec.scope == "sync" else None,
                    "name": name,
                    "period": spec.period,
                    "started_at": self.sql_ts(now),
                    "anchor_day": self.sql_date(day),
                    "amount": period.amount,
                    "due_day": self.sql_date(due.day),
                    "due_at": self.sql_ts(due.at),
                    "provisional": due.provisional,
                    "next_action": action,
                    "next_at": self.sql_ts(at),
                }
            )
            change: dict[str, Any] = {
                "timer": name,
                "change": "started",
                "due": due.day.isoformat(),
                "provisional": due.provisional,
            }
            if day != today:
                change["from"] = day.isoformat()
            changes.append(change)
        tx.executemany(sql.TIMER_INSERT, rows)
        tx.executemany(sql.TIMER_INSERT_WAITING, waiting)
        return changes

    def _next_action(
        self, reminder_before: str | None, due: Due, now: datetime, cal: WorkCalendar
    ) -> tuple[str, datetime]:
        if reminder_before:
            day = cal.reminder_day(due.day, Period.parse(reminder_before))
            at = datetime.combine(day, REMINDER_TIME, tzinfo=cal.tz)
            if at > now:
                return "reminder", at
        return "due", due.at

    def _apply_timer_plan(
        self,
        tx: Tx,
        proc: Procedure,
        case: _Case,
        src: str,
        dest: str,
        trigger: str,
        data: Mapping[str, Any],
        now: datetime,
        record_changed: bool = False,
    ) -> list[dict[str, Any]]:
        plan = proc.timer_plan(src, dest)
        ext = proc.extended_by.get(trigger, ())
        delivered = proc.delivery_triggers.get(trigger, ())
        if not (
            plan.stop
            or plan.pause
            or plan.resume
            or plan.start
            or plan.stop_all
            or ext
            or delivered
        ):
            return []
        closing = proc.closing_stops if plan.stop_all else None
        if not (plan.reads_live or ext or delivered):
            # Only stops and starts: one UPDATE ... RETURNING instead of reading the rows.
            stopped = self._stop_live_timers(
                tx, case.id, closing if plan.stop_all else plan.stop, now
            )
            if plan.start and not plan.stop_all:
                stopped += self.start_timers(
                    tx, proc, case, plan.start, now, record_changed=record_changed, data=data
                )
            return stopped
        live = {r[1]: r for r in tx.all(sql.TIMERS_LIVE, {"case_id": case.id})}
        cal = self.calendar_of(case)
        today = self.calendar.local_date(now)
        changes: list[dict[str, Any]] = []
        for name, row in live.items():
            tid, status, period = row[0], row[2], Period.parse(row[3])
            due_day, remaining, extended = t.to_date(row[4]), row[5], row[6]
            anchor, amount = t.to_date(row[7]), row[8]
            spec = proc.timers.get(name)
            if (plan.stop_all and name not in proc.sync_timers) or name in plan.stop:
                tx.execute(sql.TIMER_STOP, {"id": tid, "now": self.sql_ts(now)})
                changes.append({"timer": name, "change": "stopped"})
            elif name in plan.pause and status == "active" and due_day is not None:
                # Pause rule (states/calendar.py): the day of the pause counts as used.
                left = (
                    cal.remaining_working_days(due_day, today)
                    if period.unit == "working_days"
                    else max((due_day - today).days, 0)
                )
                tx.execute(sql.TIMER_PAUSE, {"id": tid, "remaining": left})
                changes.append(
                    {"timer": name, "change": "paused", "remaining": left, "unit": period.unit}
                )
            elif name in plan.resume and status == "paused" and spec is not None:
                changes.append(
                    self._resume(
                        tx, spec, tid, period, int(remaining or 0), extended, now, trigger, cal
                    )
                )
            elif spec is not None and spec in ext and status in ("active", "paused"):
                changes.append(
                    self._extend(
                        tx, spec, row, period, anchor, int(amount or 0), data, now, live, today, cal
                    )
                )
            elif spec is not None and spec in delivered and status == "waiting":
                day = date.fromisoformat(str(data["delivered_on"]))
                changes.append(self._anchor_on_delivery(tx, spec, tid, day, now, "by hand", cal))
        if plan.start and not plan.stop_all:
            changes += self.start_timers(
                tx,
                proc,
                case,
                plan.start,
                now,
                running={n for n in live if n not in plan.stop},
                record_changed=record_changed,
                data=data,
            )
        return changes

    def _resume(
        self,
        tx: Tx,
        spec: TimerSpec,
        tid: int,
        period: Period,
        remaining: int,
        extended: int,
        now: datetime,
        trigger: str,
        cal: WorkCalendar,
    ) -> dict[str, Any]:
        """Resume rule: the day it resumes is not counted; at least one day is left (a
        working day for a working-day period; a calendar day, which ends on a working day)."""
        today = self.calendar.local_date(now)
        unit = "working_days" if period.unit == "working_days" else "calendar_days"
        amount = max(remaining, 1)
        return self.set_due(
            tx,
            tid,
            spec.name,
            spec.reminder_before,
            today,
            amount,
            unit,
            extended,
            now,
            f"resumed after {trigger}",
            cal=cal,
        )

    def _anchor_on_delivery(
        self,
        tx: Tx,
        spec: TimerSpec,
        tid: int,
        day: date,
        now: datetime,
        how: str,
        cal: WorkCalendar,
    ) -> dict[str, Any]:
        """A timer counted from a notice's delivery gets its due day: delivery day + period."""
        period = Period.parse(spec.period)
        change = self.set_due(
            tx,
            tid,
            spec.name,
            spec.reminder_before,
            day,
            period.amount,
            period.unit,
            0,
            now,
            f"notice {spec.starts_on_delivery} delivered on {day.isoformat()} ({how})",
            cal=cal,
        )
        change.update({"change": "started", "from": day.isoformat()})
        return change

    def _stop_live_timers(
        self, tx: Tx, case_id: int, names: tuple[str, ...] | None, now: datetime
    ) -> list[dict[str, Any]]:
        """Stop the case's live timers, all of them (None) or those named."""
        if names is not None and not names:
            return []
        params: dict[str, Any] = {"case_id": case_id, "now": self.sql_ts(now)}
        if names is not None:
            params.update({f"n{i}": n for i, n in enumerate(names)})
        stopped = tx.all(sql.timers_stop_live(None if names is None else len(names)), params)
        # In the order they were started, as the rows would be read.
        return [{"timer": name, "change": "stopped"} for _, name in sorted(stopped)]

    def set_due(
        self,
        tx: Tx,
        tid: int,
        name: str,
        reminder_before: str | None,
        anchor: date,
        amount: int,
        unit: str,
        extended: int,
        now: datetime,
        reason: str,
        previous: date | None = None,
        *,
        cal: WorkCalendar,
    ) -> dict[str, Any]:
        """Give a timer a new due day (anchor + amount) and say so, with the reason."""
        due = cal.add(anchor, Period(amount, unit))  # type: ignore[arg-type]
        action, at = self._next_action(reminder_before, due, now, cal)
        tx.execute(
            sql.TIMER_SET_DUE,
            {
                "id": tid,
                "due_day": self.sql_date(due.day),
                "due_at": self.sql_ts(due.at),
                "anchor_day": self.sql_date(anchor),
                "amount": amount,
                "provisional": due.provisional,
                "extended_days": extended,
                "next_action": action,
                "next_at": self.sql_ts(at),
            },
        )
        change: dict[str, Any] = {
            "timer": name,
            "change": "due_changed",
            "due": due.day.isoformat(),
            "provisional": due.provisional,
            "reason": reason,
        }
        if previous is not None:
            change["from"] = previous.isoformat()
        return change

    def _extend(
        self,
        tx: Tx,
        spec: TimerSpec,
        row: Sequence[Any],
        period: Period,
        anchor: date | None,
        amount: int,
        data: Mapping[str, Any],
        now: datetime,
        live: Mapping[str, Sequence[Any]],
        today: date,
        cal: WorkCalendar,
    ) -> dict[str, Any]:
        """Extend a running or paused timer by the days asked for, within the definition's
        bounds: the total period (max_total) and, where set, another timer's due day."""
        assert spec.extension is not None
        tid, status, extended = row[0], row[2], int(row[6])
        days = int(data.get("days") or 0)
        limit = Period.parse(spec.extension.max_total)
        trig = spec.extension.approve_trigger
        if period.amount + extended + days > limit.amount:
            left = limit.amount - period.amount - extended
            raise TransitionNotAllowed(
                trig,
                "",
                [],
                f"an extension of {days} days would exceed the limit of {limit}; "
                f"at most {max(left, 0)} more",
                f"延期{days}日将超过总期限{limit.amount}日，最多还可延期{max(left, 0)}日",
            )
        if status == "paused":
            # Paused (forwarded, awaiting documents): the days are added to those left.
            remaining = int(row[5] or 0) + days
            tx.execute(
                sql.TIMER_EXTEND_PAUSED,
                {"id": tid, "remaining": remaining, "extended_days": extended + days},
            )
            self._check_within(spec, None, live, today, days, cal)
            return {
                "timer": spec.name,
                "change": "extended",
                "days": days,
                "remaining": remaining,
                "reason": f"extension approved: {data.get('reason') or ''}".strip(),
            }
        assert anchor is not None
        new_due = cal.add(anchor, Period(amount + days, period.unit)).day
        self._check_within(spec, new_due, live, today, days, cal)
        previous = cal.add(anchor, Period(amount, period.unit)).day
        change = self.set_due(
            tx,
            tid,
            spec.name,
            spec.reminder_before,
            anchor,
            amount + days,
            period.unit,
            extended + days,
            now,
            f"extension approved: {data.get('reason') or ''}".strip(),
            previous,
            cal=cal,
        )
        change.update({"change": "extended", "days": days})
        return change

    def _check_within(
        self,
        spec: TimerSpec,
        new_due: date | None,
        live: Mapping[str, Sequence[Any]],
        today: date,
        days: int,
        cal: WorkCalendar,
    ) -> None:
        """An extension may not carry a stage past the deadline it lies within (repair: the
        review may be extended, but the applicant's result stays due within 10 working days
        of the application, 国办发〔2025〕22号)."""
        assert spec.extension is not None
        outer = spec.extension.within
        row = live.get(outer) if outer else None
        if row is None or row[4] is None or new_due is None:
            return
        outer_due = t.to_date(row[4])
        assert outer_due is not None
        if new_due <= outer_due:
            return
        fits = max(days - cal.working_days_between(outer_due, new_due), 0)
        raise TransitionNotAllowed(
            spec.extension.approve_trigger,
            "",
            [],
            f"an extension of {days} working days would end on {new_due.isoformat()}, after the "
            f"overall deadline {outer_due.isoformat()}; at most {fits} fit",
            f"延期{days}个工作日将至{new_due.isoformat()}，超过总办理期限{outer_due.isoformat()}；"
            f"最多可延期{fits}个工作日",
        )

    # -- deliveries that start or meet deadlines ----------------------------------------------

    def on_delivered(
        self,
        tx: Tx,
        *,
        kind: str,
        name: str,
        channel: str,
        case_id: int | None,
        record_id: int | None,
        queued_at: datetime | None,
        now: datetime,
    ) -> None:
        """What a delivered message means for the deadlines, in the delivery's transaction.

        A notice served to the applicant by mail or SMS starts the timers counted from its
        delivery (the review window: 自收到告知书之日起). The in-app copy and a log line are not
        service. A push the platform received meets the sync timers of the record's cases."""
        if kind == "notice" and case_id is not None and channel in ("email", "sms"):
            self._notice_delivered(tx, case_id, name, channel, now)
        elif kind == "platform_sync" and record_id is not None and queued_at is not None:
            self._platform_received(tx, record_id, queued_at, now)

    def _notice_delivered(
        self, tx: Tx, case_id: int, notice: str, channel: str, now: datetime
    ) -> None:
        waiting = tx.all(sql.TIMERS_WAITING, {"case_id": case_id})
        if not waiting:
            return
        case = self.locked_case(tx, case_id)
        if case is None:
            return
        proc = self.procedures.by_id(case.definition_id)
        specs = {tm.name: tm for tm in proc.on_delivery.get(notice, ())}
        day = self.calendar.local_date(now)
        changes = [
            self._anchor_on_delivery(
                tx, specs[name], int(tid), day, now, channel, self.calendar_of(case)
            )
            for tid, name in waiting
            if name in specs
        ]
        if changes:
            self.append_system_event(
                tx,
                case,
                "notice_delivered",
                {"notice": notice, "channel": channel, "deadlines": changes},
                now,
            )

    def _platform_received(
        self, tx: Tx, record_id: int, queued_at: datetime, now: datetime
    ) -> None:
        rows = tx.all(
            sql.SYNC_TIMERS_MET, {"record_id": record_id, "queued_at": self.sql_ts(queued_at)}
        )
        by_case: dict[int, list[tuple[int, str]]] = {}
        for tid, cid, name in rows:
            by_case.setdefault(int(cid), []).append((int(tid), str(name)))
        for cid, timers in by_case.items():
            case = self.locked_case(tx, cid)
            if case is None:
                continue
            proc = self.procedures.by_id(case.definition_id)
            met = [(tid, name) for tid, name in timers if name in proc.sync_timers]
            for tid, _ in met:
                tx.execute(sql.TIMER_STOP, {"id": tid, "now": self.sql_ts(now)})
            if met:
                self.append_system_event(
                    tx,
                    case,
                    "deadline_met",
                    {"deadlines": [{"timer": n, "change": "met"} for _, n in met]},
                    now,
                )

    def locked_case(self, tx: Tx, case_id: int) -> _Case | None:
        row = self.case_row(tx, case_id, lock=True)
        return None if row is None else self.case_from_row(row)

    # -- notices and events -------------------------------------------------------------------

    def _queue_notices(
        self,
        tx: Tx,
        proc: Procedure,
        case: _Case,
        names: tuple[str, ...],
        seq: int,
        now: datetime,
        trigger: str,
        fields: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
        rec: RecordState | None = None,
    ) -> list[str]:
        """Queue each notice on every channel its recipient is reached by, with the values
        the letter needs taken now (what the decision said, the new deadline ...). `rec`:
        the case's record, if the caller has it already (else read from the case's row)."""
        if not names:
            return []
        rows = []
        # The letter names the deadlines now running, not only those this step changed (a
        # unit asked to accept a repair is told the day the application's 3 days end).
        running = {
            str(r[0]): {"due": t.to_date(r[1]).isoformat(), "provisional": bool(r[2])}  # type: ignore[union-attr]
            for r in tx.all(sql.TIMERS_RUNNING, {"case_id": case.id})
        }
        context = self._notice_context(
            proc,
            case,
            rec if rec is not None else case.record(),
            trigger,
            fields or {},
            detail or {},
            seq,
            now,
            running,
        )
        at = self.sql_ts(now)
        for name in names:
            spec = proc.notices[name]
            # One payload per notice, shared by its channels.
            payload = canonical(
                {
                    "template": spec.template,
                    "version": letters.latest(spec.template),
                    "event_seq": seq,
                    "recipient_role": spec.recipient,
                    "context": context,
                }
            )
            for channel, address in self._routes(tx, case, spec.recipient):
                rows.append(
                    {
                        "case_id": case.id,
                        "record_id": case.record_id,
                        "kind": "notice",
                        "name": name,
                        "recipient": address,
                        "channel": channel,
                        "payload": payload,
                        "idempotency_key": f"case:{case.id}:e{seq}:{name}:{channel}",
                        "now": at,
                    }
                )
        tx.executemany(sql.OUTBOX_INSERT, rows)
        return list(names)

    def _routes(self, tx: Tx, case: _Case, recipient: str) -> list[tuple[str, str]]:
        """(channel, address) pairs for a notice's recipient. Every notice to the applicant is
        also kept in-app (their status page); mail and SMS where an address is on file."""
        if recipient == "applicant":
            person = loads(case.applicant_json)
            routes = [("inapp", f"case:{case.case_no}")]
            if person.get("email") and "email" in self.settings.applicant_channels:
                routes.append(("email", person["email"]))
            if person.get("phone") and "sms" in self.settings.applicant_channels:
                routes.append(("sms", person["phone"]))
            return routes
        dept = case.determining_unit if recipient == "determining_unit" else case.department_id
        email = tx.scalar("SELECT email FROM departments WHERE id = :id", {"id": dept})
        return [("email", str(email))] if email else [("log", f"department:{dept}")]

    def _notice_context(
        self,
        proc: Procedure,
        case: _Case,
        rec: RecordState | None,
        trigger: str,
        fields: Mapping[str, Any],
        detail: Mapping[str, Any],
        seq: int,
        now: datetime,
        running: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        person = loads(case.applicant_json)
        names = self.department_names()
        changed = {c["timer"]: c for c in detail.get("deadlines", ()) if c.get("due")}
        deadlines = {
            name: {
                "due": c["due"],
                "provisional": c.get("provisional", False),
                "label": proc.timer_labels.get(name) or {"zh": name, "en": name},
            }
            for name, c in {**(running or {}), **changed}.items()
        }
        data = {**case.data, **fields}
        outcome = data.get("outcome")
        # The period the applicant has to ask for a review: the window a delivered letter opens.
        review = next((tm for tm in proc.spec.timers if tm.starts_on_delivery), None)
        return {
            "notice_no": f"{case.case_no}-{seq:02d}",
            "issued_on": self.calendar.local_date(now).isoformat(),
            "case": {
                "case_no": case.case_no,
                "procedure": case.procedure,
                "title": proc.title_labels,
                "filed_on": data.get("filed_on", ""),
            },
            "applicant": {"name": person.get("name", ""), "kind": person.get("kind", "")},
            # The record as its subject knows it: not only by name, as a subject may have
            # several (templates v2 on).
            # A case about a subject without a published record: its letters say nothing of one.
            "record": {
                "id": None,
                "subject_name": "",
                "category": {"zh": "", "en": ""},
                "decision_date": "",
            }
            | (
                {}
                if rec is None
                else {
                    "id": rec.id,
                    "subject_name": case.subject_name,
                    "category": letters.label(
                        SOURCE_LABELS.get(rec.source_category), rec.source_category
                    ),
                    "decision_date": rec.decision_date.isoformat() if rec.decision_date else "",
                }
            ),
            "office": names.get(
                case.department_id, {"zh": case.department_id, "en": case.department_id}
            ),
            "unit": names.get(
                case.determining_unit, {"zh": case.determining_unit, "en": case.determining_unit}
            ),
            "trigger": trigger,
            "fields": dict(fields),
            "data": data,
            "rules": dict(proc.spec.rules),
            "outcome": proc.choice_label("outcome", outcome),
            "deadlines": deadlines,
            "remedies": {
                "review_period": review.period if review else "15 calendar days",
                "reconsideration_days": letters.RECONSIDERATION_DAYS,
                "litigation_months": letters.LITIGATION_MONTHS,
            },
        }

    def department_names(self) -> dict[str, dict[str, str]]:
        if self._departments is None:
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(
                        t.departments.c.id,
                        t.departments.c.name_zh,
                        t.departments.c.name_en,
                        t.departments.c.jurisdiction,
                    )
                ).all()
            self._departments = {r[0]: {"zh": r[1], "en": r[2]} for r in rows}
            self._jurisdictions = {r[0]: r[3] for r in rows}
        return self._departments

    def jurisdiction_of(self, department_id: str) -> str:
        """The jurisdiction whose rules and calendar the department's cases follow."""
        if department_id not in self._jurisdictions:
            self._departments = None
            self.department_names()
        return self._jurisdictions.get(department_id, "default")

    def calendar_of(self, case: _Case) -> WorkCalendar:
        """The working-day calendar a case's deadlines count on: its jurisdiction's."""
        if not self.calendars:
            return self.calendar
        return self.calendars.get(self.jurisdiction_of(case.department_id), self.calendar)

    def event_row(
        self,
        case: _Case,
        trigger: str,
        src: str | None,
        dest: str,
        version: int,
        actor: Actor,
        now: datetime,
        payload_text: str,
        detail: Mapping[str, Any],
        key: str | None = None,
        req_hash: str | None = None,
    ) -> dict[str, Any]:
        """The next event of `case`, chained to the last one by its hash."""
        seq = case.event_seq + 1
        detail_text = canonical(detail)
        body = _event_body(
            case.id,
            seq,
            trigger,
            src,
            dest,
            version,
            actor.name,
            actor.role,
            t.ts_to_sqlite(now),
            payload_text,
            detail_text,
        )
        return {
            "case_id": case.id,
            "seq": seq,
            "trigger": trigger,
            "from_state": src,
            "to_state": dest,
            "case_version": version,
            "actor": actor.name,
            "actor_role": actor.role,
            "at": self.sql_ts(now),
            "payload": payload_text,
            "detail": detail_text,
            "prev_hash": case.last_hash,
            "hash": event_hash(case.last_hash, body),
            "idempotency_key": key,
            "request_hash": req_hash,
        }

    def append_event(self, tx: Tx, case: _Case, row: Mapping[str, Any]) -> None:
        tx.execute(sql.EVENT_INSERT, row)
        case.event_seq, case.last_hash = row["seq"], row["hash"]

    # -- assignment -------------------------------------------------------------------------

    def assign(self, case_id: int, assignee_id: int | None, actor: Actor) -> dict[str, Any]:
        """Give a case to a handler of its department (or take it away with None)."""
        if actor.role not in ("reviewer", "head", "admin", "handler"):
            raise Forbidden(f"role {actor.role!r} may not assign cases", "该角色不能分派案件")
        now = self.now()
        with self.db.tx() as tx:
            case = self.load_case(tx, case_id, actor, lock=True)
            if actor.role != "admin" and actor.department_id != case.department_id:
                raise Forbidden(
                    "only the handling department assigns its cases", "只有承办部门可以分派本案"
                )
            if actor.role == "handler" and assignee_id != actor.user_id:
                raise Forbidden(
                    "a handler may only take a case for themselves", "经办人只能认领给自己"
                )
            name = None
            if assignee_id is not None:
                row = tx.one(
                    "SELECT name, department_id, active FROM users WHERE id = :id",
                    {"id": assignee_id},
                )
                if (
                    row is None
                    or not row[2]
                    or row[1] not in (case.department_id, case.determining_unit)
                ):
                    raise InvalidPayload(
                        [
                            FieldError(
                                "assignee_id",
                                "unknown",
                                "no active user of this case's departments has that id",
                                "本案所属部门中没有该用户",
                            )
                        ]
                    )
                name = row[0]
            tx.execute(
                "UPDATE cases SET assignee_id = :a, updated_at = :now WHERE id = :id",
                {"a": assignee_id, "now": self.sql_ts(now), "id": case_id},
            )
            self.append_system_event(
                tx,
                case,
                "assign",
                {"assignee_id": assignee_id, "assignee": name, "by": actor.name},
                now,
            )
        return {"case_id": case_id, "assignee_id": assignee_id, "assignee": name}

    # -- queries ----------------------------------------------------------------------------

    def allowed_actions(self, case_id: int, actor: Actor) -> list[dict[str, Any]]:
        with self.db.tx(readonly=True) as tx:
            case = self.load_case(tx, case_id, actor)
            proc = self.procedures.by_id(case.definition_id)
            return self._allowed(proc, case, actor, case.record())

    def case_view(self, case_id: int, actor: Actor, lang: str = "zh") -> dict[str, Any]:
        with self.db.tx(readonly=True) as tx:
            return self.case_view_in(tx, self.load_case(tx, case_id, actor), actor, lang)

    def case_view_in(self, tx: Tx, case: _Case, actor: Actor, lang: str = "zh") -> dict[str, Any]:
        """`case_view` inside a caller's transaction (the status page reads all in one)."""
        now = self.now()
        case_id = case.id
        proc = self.procedures.by_id(case.definition_id)
        rec = case.record()
        row = case.row
        allowed = self._allowed(proc, case, actor, rec)
        state = proc.states[case.state]
        applicant = self._applicant_for(actor, case, json.loads(case.applicant_json))
        return {
            "id": case.id,
            "case_no": case.case_no,
            "procedure": case.procedure,
            "definition_version": case.definition_version,
            "definition_id": case.definition_id,
            "state": case.state,
            "state_label": state.label.get(lang),
            "summary": state.summary.get(lang),
            "applicant_todo": state.applicant_todo.get(lang) if state.applicant_todo else None,
            "terminal": state.terminal,
            "closed": proc.is_closed(case.state),
            "version": case.version,
            "department_id": case.department_id,
            "determining_unit": case.determining_unit,
            "assignee_id": case.assignee_id,
            "applicant": applicant,
            "data": case.data,
            "filed_on": t.to_date(row[sql.CASE_FILED_ON]),
            "opened_at": t.to_ts(row[sql.CASE_OPENED_AT]),
            "closed_at": t.to_ts(row[sql.CASE_CLOSED_AT]),
            "record": None
            if rec is None
            else {
                "id": rec.id,
                "version": rec.version,
                "status": rec.status,
                "disputed": rec.disputed,
                "severity": rec.severity,
                "content": rec.content,
            },
            "deadlines": self.deadlines_in(tx, proc, case_id, lang, now),
            "allowed_actions": allowed,
        }

    def deadlines_in(
        self, tx: Tx, proc: Procedure, case_id: int, lang: str, now: datetime
    ) -> list[dict[str, Any]]:
        """The case's timers, oldest first, as the case view and the status page show them."""
        timers = tx.all(
            "SELECT name, status, due_day, due_at, provisional, remaining, extended_days, "
            "period FROM timers WHERE case_id = :id ORDER BY id",
            {"id": case_id},
        )
        return [
            {
                "timer": r[0],
                "label": proc.timers[r[0]].label.get(lang) if r[0] in proc.timers else r[0],
                "status": r[1],
                "due_day": t.to_date(r[2]),
                "due_at": t.to_ts(r[3]),
                "provisional": bool(r[4]),
                "overdue": r[1] == "active" and r[3] is not None and (t.to_ts(r[3]) or now) <= now,
                "remaining": r[5],
                "extended_days": r[6],
                "period": r[7],
            }
            for r in timers
        ]

    def events(self, case_id: int, actor: Actor) -> list[dict[str, Any]]:
        with self.db.tx(readonly=True) as tx:
            return self.events_in(tx, self.load_case(tx, case_id, actor), actor)

    def events_in(self, tx: Tx, case: _Case, actor: Actor) -> list[dict[str, Any]]:
        """`events` inside a caller's transaction."""
        rows = tx.all(
            "SELECT seq, trigger, from_state, to_state, case_version, actor, actor_role, at, "
            "payload, detail, hash FROM case_events WHERE case_id = :id ORDER BY seq",
            {"id": case.id},
        )
        out = [
            {
                "seq": r[0],
                "trigger": r[1],
                "from": r[2],
                "to": r[3],
                "version": r[4],
                "actor": r[5],
                "role": r[6],
                "at": t.to_ts(r[7]),
                "payload": json.loads(r[8]),
                "detail": json.loads(r[9]),
                "hash": r[10],
            }
            for r in rows
        ]
        for e in out:
            person = e["payload"].get("applicant")
            if isinstance(person, dict):
                e["payload"]["applicant"] = self._applicant_for(actor, case, person)
        return out

    @staticmethod
    def _applicant_for(actor: Actor, case: _Case, person: Mapping[str, Any]) -> dict[str, Any]:
        """The applicant as this caller may see them (states/disclosure.py)."""
        return disclosure.applicant_for(
            actor,
            person,
            case_id=case.id,
            department_id=case.department_id,
            determining_unit=case.determining_unit,
            subject_identifier=case.row[sql.CASE_SUBJECT_IDENTIFIER] if case.row else None,
        )

    def record_versions(self, record_id: int) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = (
                conn.execute(
                    sa.select(t.record_versions)
                    .where(t.record_versions.c.record_id == record_id)
                    .order_by(t.record_versions.c.version)
                )
                .mappings()
                .all()
            )
        return [{**r, "content": json.loads(r["content"])} for r in rows]

    # -- audit --------------------------------------------------------------------------------

    def verify_audit(self) -> list[AuditProblem]:
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
