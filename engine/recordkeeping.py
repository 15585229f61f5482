"""Credit records: creating them, their versions, the effects cases have on them, and the
pushes of each change to the public credit platform.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import schema as t
from engine import sql
from engine.core import (
    PUBLICITY_TIMER,
    Actor,
    _Case,
    _record_state,
    canonical,
    loads,
)
from engine.db import Tx
from states.calendar import Period
from states.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidPayload,
    NotFound,
)
from states.identifiers import IdentifierError, validate_subject_identifier
from states.machine import check_json, is_clean_text
from states.records import (
    PUBLICITY_MONTHS,
    RECORD_STATUSES,
    SEVERITIES,
    SOURCE_CATEGORIES,
    STATUS_LABELS,
    SUBJECT_KINDS,
    NewRecord,
    RecordChange,
    RecordState,
)

if TYPE_CHECKING:
    from engine.service import Engine


class RecordKeeping:
    def create_record(
        self: Engine,
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
            rid = self._insert_record(
                tx,
                subject_kind=subject_kind,
                subject_name=subject_name.strip(),
                subject_identifier=ident,
                source_category=source_category,
                severity=severity,
                determining_unit=determining_unit,
                decision_date=decision_date,
                published_from=published_from,
                content=body,
                reason="公示 / published",
                actor=actor.name,
                case_id=None,
                now=now,
            )
        return rid

    def _insert_record(
        self: Engine,
        tx: Tx,
        *,
        subject_kind: str,
        subject_name: str,
        subject_identifier: str,
        source_category: str,
        severity: str,
        determining_unit: str,
        decision_date: date,
        published_from: date,
        content: str,
        reason: str,
        actor: str,
        case_id: int | None,
        now: datetime,
        publicity_months: int | None = None,
    ) -> int:
        """A new record, published: its first version, its push to the platform and the
        timer that ends its publication."""
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
                    "n": subject_name,
                    "i": subject_identifier,
                    "c": source_category,
                    "s": severity,
                    "u": determining_unit,
                    "dd": self.sql_date(decision_date),
                    "pf": self.sql_date(published_from),
                    "f": False,
                    "content": content,
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
                "content": content,
                "repair_barred_until": None,
                "reason": reason,
                "actor": actor,
                "case_id": case_id,
                "at": self.sql_ts(now),
            },
        )
        self._queue_sync(tx, rid, 1, "published", False, now)
        self._start_publicity_timer(tx, rid, severity, published_from, now, publicity_months)
        return rid

    def record_for_case(
        self: Engine, tx: Tx, case: _Case, new: NewRecord, actor: Actor, now: datetime
    ) -> RecordState:
        """Publish the record a case's decision creates: about the case's party, determined by
        its handling department (the lead department), and make it the case's record."""
        person = loads(case.applicant_json)
        rid = self._insert_record(
            tx,
            subject_kind=str(person.get("kind")),
            subject_name=str(person.get("name")),
            subject_identifier=str(person.get("identifier") or ""),
            source_category=new.source_category,
            severity=new.severity,
            determining_unit=case.department_id,
            decision_date=new.decision_date,
            published_from=new.published_from,
            content=canonical(dict(new.content)),
            reason=new.reason,
            actor=actor.name,
            case_id=case.id,
            now=now,
            publicity_months=new.publicity_months,
        )
        tx.execute("UPDATE cases SET record_id = :r WHERE id = :id", {"r": rid, "id": case.id})
        # The rest of this command (its letters) sees the case with its record.
        case.record_id = rid
        case.determining_unit = case.department_id
        case.subject_name = str(person.get("name"))
        return self.load_record(tx, rid, lock=False)

    def _start_publicity_timer(
        self: Engine,
        tx: Tx,
        record_id: int,
        severity: str,
        published_from: date,
        now: datetime,
        months: int | None = None,
    ) -> None:
        """Publication stops by itself when the maximum period for the severity ends (22号),
        or the period the record's decision set within the severity's bounds."""
        months = months or PUBLICITY_MONTHS.get(severity, (0, 36))[1]
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
        self: Engine,
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
                    zh, en = STATUS_LABELS.get(rec.status, (rec.status, rec.status))
                    raise Conflict(f"record {record_id} is already {en}", f"记录已是“{zh}”状态")
                change = RecordChange(reason=reason, status=statuses[action])
            else:
                raise InvalidPayload(
                    [FieldError("action", "choice", f"unknown action {action!r}", "请选择一项操作")]
                )
            return self.apply_record_change(tx, rec, change, actor.name, None, self.now())

    def load_record(self: Engine, tx: Tx, record_id: int, lock: bool = True) -> RecordState:
        return self._load_record_and_unit(tx, record_id, lock)[0]

    def _load_record_and_unit(
        self: Engine, tx: Tx, record_id: int, lock: bool = True
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
        self: Engine,
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
            months = rec.content.get("publicity_months")
            self._start_publicity_timer(
                tx,
                rec.id,
                rec.severity,
                rec.published_from,
                now,
                int(months) if isinstance(months, int) else None,
            )
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
        self: Engine,
        tx: Tx,
        record_id: int,
        version: int,
        status: str,
        disputed: bool,
        now: datetime,
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

    def record_versions(self: Engine, record_id: int) -> list[dict[str, Any]]:
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
