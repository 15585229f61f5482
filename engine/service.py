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
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine import schema as t
from engine import sql
from engine.admin import Administration
from engine.clock import Clock, SystemClock
from engine.commands import CaseCommands
from engine.core import (  # re-exported: the engine's one surface
    SYSTEM,
    Actor,
    Advanced,
    AuditProblem,
    Opened,
    _Case,
    _event_body,
    canonical,
    event_hash,
    loads,
)
from engine.db import Database, Tx
from engine.definitions import Definitions
from engine.definitions import catalog as definition_catalog
from engine.notifying import Notifying
from engine.recordkeeping import RecordKeeping
from engine.settings import get_settings
from engine.timers import Timers
from engine.views import CaseViews
from states import disclosure
from states.calendar import WorkCalendar
from states.errors import (
    NotFound,
    RedressError,
)

# The engine's one surface: what the API, the flows and the CLI use. The parts of the engine
# share the rest through engine.core.
__all__ = ["SYSTEM", "Actor", "Advanced", "AuditProblem", "Engine", "Opened", "canonical"]


class Engine(Administration, RecordKeeping, CaseCommands, Timers, Notifying, CaseViews):
    """The one service layer. Holds no per-case state; safe to share between threads.

    Each capability lives in its own module (admin, recordkeeping, commands, timers,
    notifying, views); what they all use lives here: the clock, the database, the
    definitions, the calendars, a case as read by a command, and the event chain.
    """

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

    def _attachments(self) -> Any:
        from engine.attachments import Attachments  # it builds on this module

        return Attachments(self)

    def load_case(self, tx: Tx, case_id: int, actor: Actor, lock: bool = False) -> _Case:
        # A command locks the case row as it reads it (PostgreSQL), so a concurrent command
        # waits here and then sees the new version: it fails as stale before writing anything.
        row = self.case_row(tx, case_id, lock)
        if row is None or not self._can_see(actor, row[0], row[6], row[12], row[1]):
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
            jurisdiction=row[sql.CASE_JURISDICTION],
            row=row,
        )

    def append_system_event(
        self,
        tx: Tx,
        case: _Case,
        trigger: str,
        detail: Mapping[str, Any],
        now: datetime,
        actor: Actor = SYSTEM,
    ) -> None:
        """An event that records something done to the case without moving it (no new
        version: a reminder must not make a handler's open form stale) — by the clock, or by
        `actor` (who uploaded a file)."""
        row = self.event_row(
            case, trigger, case.state, case.state, case.version, actor, now, canonical({}), detail
        )
        self.append_event(tx, case, row)
        tx.execute(
            sql.CASE_CHAIN_UPDATE, {"seq": case.event_seq, "hash": case.last_hash, "id": case.id}
        )

    def _can_see(self, actor: Actor, case_id: int, dept: str, unit: str, procedure: str) -> bool:
        return disclosure.sees_case(
            actor, case_id=case_id, handling=dept, unit=unit, remit=procedure in self.remit(actor)
        )

    def remit(self, actor: Actor) -> frozenset[str]:
        """The procedures whose every case `actor`'s role acts on (and so sees)."""
        if not actor.is_staff or actor.is_global:
            return frozenset()
        return self.procedures.remit(actor.role)

    def locked_case(self, tx: Tx, case_id: int) -> _Case | None:
        row = self.case_row(tx, case_id, lock=True)
        return None if row is None else self.case_from_row(row)

    def department_names(self) -> dict[str, dict[str, str]]:
        if self._departments is None:
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(t.departments.c.id, t.departments.c.name_zh, t.departments.c.name_en)
                ).all()
            self._departments = {r[0]: {"zh": r[1], "en": r[2]} for r in rows}
        return self._departments

    def calendar_of(self, case: _Case) -> WorkCalendar:
        """The working-day calendar a case's deadlines count on: that of the jurisdiction it
        was filed in (kept on the case, so every process agrees without a cache)."""
        return (
            self.calendars.get(case.jurisdiction, self.calendar)
            if self.calendars
            else self.calendar
        )

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
