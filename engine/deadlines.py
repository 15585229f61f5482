"""The clock's commands: firing due timers, and the operators' calendar data.

A timer row says what the sweep does next (`next_action`: reminder, due, escalate:N) and when
(`next_at`, indexed). `sweep` finds due timers in batches and fires each in its own short
transaction. Firing locks the case row first (the same order every command uses, so sweeps and
users never deadlock), with SKIP LOCKED on PostgreSQL so two sweepers pass each other by, then
re-reads the timer: if another sweep already acted, `next_at` has moved and nothing happens.
Every action's outbox row has a unique idempotency key, so even a replayed action cannot send
twice. Together: each due timer fires exactly once, whether a sweep dies halfway or two run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine import notices as letters
from engine import schema as t
from engine import sql
from engine.core import REMINDER_TIME, _Case
from engine.service import SYSTEM, Engine, canonical
from states.calendar import DayOverride, Period, WorkCalendar
from states.errors import FieldError, InvalidPayload, RedressError
from states.machine import Procedure
from states.records import RecordChange

CALENDAR_STAMP = """
SELECT (SELECT count(*) FROM calendar_days), (SELECT max(loaded_at) FROM calendar_days),
       (SELECT count(*) FROM calendar_years), (SELECT max(loaded_at) FROM calendar_years),
       (SELECT count(*) FROM jurisdiction_days), (SELECT max(loaded_at) FROM jurisdiction_days)
"""


@dataclass
class SweepResult:
    found: int = 0
    fired: int = 0
    skipped: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CalendarLoad:
    year: int | None
    kind: str
    days: int
    recomputed: int


class Deadlines:
    """Timer firing and calendar maintenance, on top of the engine's commands."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.db = engine.db

    # -- sweeping -----------------------------------------------------------------------------

    def due_timers(self, now: datetime, limit: int) -> list[int]:
        with self.db.tx(readonly=True) as tx:
            rows = tx.all(sql.DUE_TIMERS, {"now": self.engine.sql_ts(now), "limit": limit})
        return [int(r[0]) for r in rows]

    def sweep(
        self, now: datetime | None = None, batch: int = 500, max_batches: int | None = None
    ) -> SweepResult:
        """Fire every timer due at `now`, batch by batch, each in its own transaction."""
        now = now or self.engine.now()
        self.refresh_calendar()
        result = SweepResult()
        # A timer may come round again in the same sweep when its next step is also due
        # (a late sweep catches up on every missed step); one that was skipped (busy, or
        # failed) waits for the next sweep, so the loop always ends.
        passed: set[int] = set()
        batches = 0
        while max_batches is None or batches < max_batches:
            ids = [i for i in self.due_timers(now, batch + len(passed)) if i not in passed]
            if not ids:
                break
            batches += 1
            for tid in ids[:batch]:
                result.found += 1
                try:
                    action = self.fire_timer(tid, now)
                except RedressError as exc:  # a timer that cannot act is reported, not fatal
                    result.errors.append(f"timer {tid}: {exc.message}")
                    passed.add(tid)
                    continue
                if action is None:
                    passed.add(tid)
                    result.skipped += 1
                else:
                    result.fired += 1
                    key = action.split(":")[0]
                    result.actions[key] = result.actions.get(key, 0) + 1
        return result

    def fire_timer(self, timer_id: int, now: datetime) -> str | None:
        """Do what a due timer says, once. Returns the action taken, or None if not due."""
        eng = self.engine
        locks = self.db.strategy
        with self.db.tx() as tx:
            owner = tx.one("SELECT case_id, record_id FROM timers WHERE id = :id", {"id": timer_id})
            if owner is None:
                return None
            case = None
            if owner[0] is not None:
                row = eng.case_row(tx, int(owner[0]), lock=True, skip=True)
                if row is None:
                    return None  # busy with another command or sweeper: next sweep
                case = eng.case_from_row(row)
            else:
                lock = locks.lock_row(skip=True)
                if (
                    tx.one("SELECT id FROM credit_records WHERE id = :id" + lock, {"id": owner[1]})
                    is None
                ):
                    return None
            tm = tx.one(sql.TIMER_FOR_FIRING, {"id": timer_id})
            assert tm is not None
            status, next_action, next_at = tm[4], tm[8], t.to_ts(tm[9])
            if status not in ("active", "waiting") or next_at is None or next_at > now:
                return None  # already handled (or stopped) by someone else
            if case is None:
                return self._fire_record_timer(tx, timer_id, int(owner[1]), now)
            return self._fire_case_timer(tx, case, tm, str(next_action), now)

    def _fire_case_timer(
        self, tx: Any, case: _Case, tm: tuple[Any, ...], action: str, now: datetime
    ) -> str:
        eng = self.engine
        timer_id, name, due_day = tm[0], tm[3], t.to_date(tm[6])
        due_at = t.to_ts(tm[7])
        proc = eng.procedures.by_id(case.definition_id)
        spec = proc.timers[name]
        info = {
            "timer": name,
            "label": spec.label.model_dump(),
            "due": due_day.isoformat() if due_day else None,
            "case_no": case.case_no,
            "state": case.state,
        }
        cal = eng.calendar_of(case)
        if action == "undelivered":
            # Counted from a delivery that has not happened: say so, and again later.
            again = cal.add(cal.local_date(now), Period.parse(spec.undelivered_after)).day
            at = datetime.combine(again, REMINDER_TIME, tzinfo=cal.tz)
            tx.execute(
                sql.TIMER_NEXT,
                {"id": timer_id, "next_action": "undelivered", "next_at": eng.sql_ts(at)},
            )
            notice = spec.starts_on_delivery or ""
            eng.append_system_event(tx, case, "notice_undelivered", {**info, "notice": notice}, now)
            self._staff_message(tx, case, proc, timer_id, "undelivered", "assignee", info, now)
            return "undelivered"
        if action == "reminder" and due_at is not None and due_at <= now:
            action = "due"  # a late sweep: the deadline itself has passed, remind no more
        if action == "reminder":
            assert due_at is not None
            tx.execute(
                sql.TIMER_NEXT,
                {"id": timer_id, "next_action": "due", "next_at": eng.sql_ts(due_at)},
            )
            eng.append_system_event(tx, case, "deadline_reminder", {**info}, now)
            self._staff_message(tx, case, proc, timer_id, "reminder", "assignee", info, now)
            return "reminder"
        if action == "due" and spec.expiry_trigger:
            eng.advance_locked(tx, case, spec.expiry_trigger, SYSTEM, {}, now)
            tx.execute(sql.TIMER_EXPIRE, {"id": timer_id, "now": eng.sql_ts(now)})
            return f"transition:{spec.expiry_trigger}"
        step = 0 if action == "due" else int(action.split(":")[1])
        steps = spec.escalation
        if step >= len(steps):
            tx.execute(sql.TIMER_NEXT, {"id": timer_id, "next_action": None, "next_at": None})
            return "done"
        who = steps[step].notify
        nxt = step + 1
        if nxt < len(steps) and due_day is not None:
            after = sum(Period.parse(s.after).amount for s in steps[: nxt + 1])
            at = cal.add(due_day, Period(after, "working_days")).at
            tx.execute(
                sql.TIMER_NEXT,
                {"id": timer_id, "next_action": f"escalate:{nxt}", "next_at": eng.sql_ts(at)},
            )
        else:
            tx.execute(sql.TIMER_NEXT, {"id": timer_id, "next_action": None, "next_at": None})
        event = "deadline_expired" if step == 0 else "deadline_escalated"
        eng.append_system_event(tx, case, event, {**info, "step": step, "notify": who}, now)
        self._staff_message(
            tx, case, proc, timer_id, f"escalate:{step}", who, {**info, "step": step}, now
        )
        return f"escalate:{step}"

    def _staff_message(
        self,
        tx: Any,
        case: _Case,
        proc: Procedure,
        timer_id: int,
        action: str,
        who: str,
        info: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """A reminder or escalation to the people concerned, by mail where an address is on
        file (else logged), rendered from the staff templates like any notice."""
        eng = self.engine
        template = {"reminder": "staff_reminder", "undelivered": "staff_undelivered"}.get(
            action, "staff_escalation"
        )
        names = eng.department_names()
        state = proc.states[case.state]
        context = {
            "notice_no": f"{case.case_no}-{case.event_seq:02d}",
            "issued_on": eng.calendar.local_date(now).isoformat(),
            "case": {
                "case_no": case.case_no,
                "procedure": case.procedure,
                "title": proc.spec.title.model_dump(),
            },
            "state_label": state.label.model_dump(),
            "timer": {"label": info["label"], "due": info["due"]},
            "step": int(info.get("step", 0)),
            "notify": who,
            "office": names.get(
                case.department_id, {"zh": case.department_id, "en": case.department_id}
            ),
        }
        payload = canonical(
            {
                "template": template,
                "version": letters.latest(template),
                "event_seq": case.event_seq,
                "recipient_role": "staff",
                "action": action,
                "context": context,
            }
        )
        emails = self._staff_emails(tx, case, who)
        routes = [("email", e, f"timer:{timer_id}:{action}:{e}") for e in emails] or [
            ("log", f"{who}@{case.department_id}", f"timer:{timer_id}:{action}")
        ]
        tx.executemany(
            sql.OUTBOX_INSERT,
            [
                {
                    "case_id": case.id,
                    "record_id": case.record_id,
                    "kind": "staff",
                    "name": template,
                    "recipient": address,
                    "channel": channel,
                    "payload": payload,
                    "idempotency_key": key,
                    "now": eng.sql_ts(now),
                }
                for channel, address, key in routes
            ],
        )

    @staticmethod
    def _staff_emails(tx: Any, case: _Case, who: str) -> list[str]:
        if who == "assignee" and case.assignee_id is not None:
            rows = tx.all(sql.STAFF_EMAIL_OF_USER, {"id": case.assignee_id})
        else:
            # No assignee yet: the department's handlers hear of it.
            role = "handler" if who == "assignee" else who
            rows = tx.all(sql.STAFF_EMAILS_BY_ROLE, {"d": case.department_id, "r": role})
        return [str(r[0]) for r in rows]

    def _fire_record_timer(self, tx: Any, timer_id: int, record_id: int, now: datetime) -> str:
        eng = self.engine
        rec = eng.load_record(tx, record_id, lock=False)  # locked above
        tx.execute(sql.TIMER_EXPIRE, {"id": timer_id, "now": eng.sql_ts(now)})
        if rec.status != "published":
            return "done"
        change = RecordChange(
            reason="最长公示期届满，停止公示 / maximum publicity period ended", status="expired"
        )
        eng.apply_record_change(tx, rec, change, SYSTEM.name, None, now)
        return "publication_ended"

    # -- the calendar ----------------------------------------------------------------------------

    def refresh_calendar(self) -> WorkCalendar:
        """Rebuild the engine's calendar from the package plus the operators' data, when that
        data changed since the last time (a cheap check: every sweep calls this)."""
        official: dict[int, list[DayOverride]] = {}
        local: list[DayOverride] = []
        try:
            with self.db.tx(readonly=True) as tx:
                stamp = tx.one(CALENDAR_STAMP)
            if stamp is not None and stamp == getattr(self.engine, "calendar_stamp", None):
                return self.engine.calendar
            with self.db.read() as conn:
                years = [r[0] for r in conn.execute(sa.select(t.calendar_years.c.year))]
                rows = conn.execute(sa.select(t.calendar_days)).mappings().all()
                scoped = conn.execute(sa.select(t.jurisdiction_days)).mappings().all()
        except (sa.exc.DBAPIError, self.db.engine.dialect.loaded_dbapi.Error):
            return self.engine.calendar  # not migrated yet: the package alone
        for y in years:
            official[int(y)] = []
        for r in rows:
            day = t.to_date(r["day"])
            assert day is not None
            o = DayOverride(day, r["kind"], r["name"])
            if r["source"] == "official":
                official.setdefault(day.year, []).append(o)
            else:
                local.append(o)
        cal = WorkCalendar(tz=self.engine.settings.timezone, official=official, local=local)
        this_year = self.engine.now().year
        cal.warm(this_year, this_year + 1)  # here (startup, a sweep), not in a user's request
        by_jurisdiction: dict[str, list[DayOverride]] = {}
        for r in scoped:
            day = t.to_date(r["day"])
            assert day is not None
            by_jurisdiction.setdefault(r["jurisdiction"], []).append(
                DayOverride(day, r["kind"], r["name"])
            )
        calendars = {}
        for j, days in by_jurisdiction.items():
            calendars[j] = cal.with_local(days)
            calendars[j].warm(this_year, this_year + 1)
        self.engine.calendar = cal
        self.engine.calendars = calendars
        self.engine.calendar_stamp = stamp
        return cal

    def load_calendar(self, data: Mapping[str, Any], source: str) -> CalendarLoad:
        """Load a year's official notice, or local days, then recompute affected deadlines.

        data: {"kind": "official", "year": 2027, "days": [{"date", "kind", "name"}, ...]}
              or {"kind": "local", "days": [...]}
        """
        kind, year, days = _parse_calendar(data)
        jurisdiction = _parse_jurisdiction(data, kind)
        eng = self.engine
        now = eng.now()
        with self.db.tx() as tx:
            if jurisdiction is not None:
                # A jurisdiction's own days: its cases only (engine.calendar_of).
                tx.executemany(
                    "DELETE FROM jurisdiction_days WHERE jurisdiction = :j AND day = :d",
                    [{"j": jurisdiction, "d": eng.sql_date(d.day)} for d in days],
                )
                tx.executemany(
                    "INSERT INTO jurisdiction_days (jurisdiction, day, kind, name, loaded_at) "
                    "VALUES (:j, :d, :k, :n, :now)",
                    [
                        {
                            "j": jurisdiction,
                            "d": eng.sql_date(d.day),
                            "k": d.kind,
                            "n": d.name[:100],
                            "now": eng.sql_ts(now),
                        }
                        for d in days
                    ],
                )
            elif kind == "official":
                tx.execute(
                    "DELETE FROM calendar_days WHERE source = 'official' AND day >= :a "
                    "AND day <= :b",
                    {"a": eng.sql_date(date(year, 1, 1)), "b": eng.sql_date(date(year, 12, 31))},
                )
                tx.execute("DELETE FROM calendar_years WHERE year = :y", {"y": year})
                tx.execute(
                    "INSERT INTO calendar_years (year, source, loaded_at) VALUES (:y, :s, :now)",
                    {"y": year, "s": source[:200], "now": eng.sql_ts(now)},
                )
            else:
                tx.executemany(
                    "DELETE FROM calendar_days WHERE source = 'local' AND day = :d",
                    [{"d": eng.sql_date(d.day)} for d in days],
                )
            if jurisdiction is None:
                tx.executemany(
                    "INSERT INTO calendar_days (day, source, kind, name, loaded_at) "
                    "VALUES (:d, :s, :k, :n, :now)",
                    [
                        {
                            "d": eng.sql_date(d.day),
                            "s": kind,
                            "k": d.kind,
                            "n": d.name[:100],
                            "now": eng.sql_ts(now),
                        }
                        for d in days
                    ],
                )
        self.refresh_calendar()
        earliest = date(year, 1, 1) if kind == "official" else min(d.day for d in days)
        reason = (
            f"{year}年节假日安排已载入（{source}） / {year} holiday notice loaded"
            if kind == "official"
            else f"地方调整已载入（{source}{'，' + jurisdiction if jurisdiction else ''}） / "
            "local days loaded"
        )
        return CalendarLoad(
            year if kind == "official" else None,
            kind,
            len(days),
            self.recompute_deadlines(earliest, reason),
        )

    def recompute_deadlines(self, earliest: date, reason: str) -> int:
        """Recompute every running deadline due on or after `earliest`; one event per change."""
        eng = self.engine
        with self.db.tx(readonly=True) as tx:
            rows = tx.all(
                "SELECT id, case_id FROM timers WHERE status = 'active' AND due_day >= :d "
                "AND anchor_day IS NOT NULL ORDER BY case_id, id",
                {"d": eng.sql_date(earliest)},
            )
        changed = 0
        by_case: dict[int | None, list[int]] = {}
        for tid, cid in rows:
            by_case.setdefault(cid, []).append(int(tid))
        for cid, tids in by_case.items():
            changed += self._recompute(cid, tids, reason)
        return changed

    def _recompute(self, case_id: int | None, timer_ids: Iterable[int], reason: str) -> int:
        eng = self.engine
        now = eng.now()
        changes: list[dict[str, Any]] = []
        with self.db.tx() as tx:
            case = None
            cal = eng.calendar
            if case_id is not None:
                row = eng.case_row(tx, case_id, lock=True)
                assert row is not None
                case = eng.case_from_row(row)
                proc = eng.procedures.by_id(case.definition_id)
                cal = eng.calendar_of(case)
            for tid in timer_ids:
                r = tx.one(
                    "SELECT name, period, anchor_day, amount, due_day, provisional, "
                    "extended_days, status FROM timers WHERE id = :id",
                    {"id": tid},
                )
                if r is None or r[7] != "active":
                    continue
                period = Period.parse(r[1])
                anchor, old_day = t.to_date(r[2]), t.to_date(r[4])
                assert anchor is not None
                due = cal.add(anchor, Period(int(r[3]), period.unit))
                if due.day == old_day and due.provisional == bool(r[5]):
                    continue
                reminder = proc.timers[r[0]].reminder_before if case is not None else None
                changes.append(
                    eng.set_due(
                        tx,
                        tid,
                        r[0],
                        reminder,
                        anchor,
                        int(r[3]),
                        period.unit,
                        int(r[6]),
                        now,
                        reason,
                        old_day,
                        cal=cal,
                    )
                )
            if case is not None and changes:
                eng.append_system_event(
                    tx, case, "deadline_recomputed", {"deadlines": changes}, now
                )
        return len(changes)


def _parse_calendar(data: Mapping[str, Any]) -> tuple[str, int, list[DayOverride]]:
    errors: list[FieldError] = []
    kind = data.get("kind", "official") if isinstance(data, Mapping) else None
    if kind not in ("official", "local"):
        raise InvalidPayload(
            [FieldError("kind", "choice", "must be 'official' or 'local'", "须为official或local")]
        )
    year = data.get("year")
    if kind == "official" and not (isinstance(year, int) and 1990 <= year <= 2200):
        errors.append(
            FieldError(
                "year", "required", "an official notice needs its year", "官方通知须注明年份"
            )
        )
    raw_days = data.get("days")
    if not isinstance(raw_days, list) or not raw_days:
        errors.append(
            FieldError("days", "required", "a non-empty list of days is needed", "须提供日期列表")
        )
        raw_days = []
    days: list[DayOverride] = []
    for i, item in enumerate(raw_days):
        where = f"days[{i}]"
        try:
            d = date.fromisoformat(str(item["date"]))
            k = item["kind"]
            if k not in ("holiday", "workday"):
                raise ValueError(f"kind {k!r} is not 'holiday' or 'workday'")
            if kind == "official" and isinstance(year, int) and abs(d.year - year) > 1:
                raise ValueError(f"{d} is far from the notice's year {year}")
            days.append(DayOverride(d, k, str(item.get("name", ""))))
        except (KeyError, TypeError, ValueError) as exc:
            errors.append(
                FieldError(
                    where,
                    "invalid",
                    f"{exc}; expected "
                    '{"date": "YYYY-MM-DD", "kind": "holiday"|"workday", '
                    '"name": "..."}',
                    f"格式错误：{exc}",
                )
            )
    if errors:
        raise InvalidPayload(errors)
    return str(kind), int(year or 0), days


def _parse_jurisdiction(data: Mapping[str, Any], kind: str) -> str | None:
    """Local days may name the jurisdiction they belong to; official notices are national."""
    j = data.get("jurisdiction")
    if j is None or j == "default":
        return None
    if kind != "local" or not isinstance(j, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", j):
        raise InvalidPayload(
            [
                FieldError(
                    "jurisdiction",
                    "invalid",
                    "only local days belong to a jurisdiction, named like 'shanghai'",
                    "只有地方调整可以指定辖区，辖区名称如“shanghai”",
                )
            ]
        )
    return j


def read_calendar_file(text: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            [FieldError("file", "json", f"not JSON: {exc}", f"不是有效的JSON：{exc}")]
        ) from None
    if not isinstance(data, dict):
        raise InvalidPayload([FieldError("file", "type", "must be a JSON object", "须为JSON对象")])
    return data
