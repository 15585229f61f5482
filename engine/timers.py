"""Deadlines: starting, stopping, pausing, resuming and extending a case's timers as its states
say, and the deliveries that start or meet them.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from engine import schema as t
from engine import sql
from engine.core import (
    REMINDER_TIME,
    _Case,
)
from engine.db import Tx
from states.calendar import Due, Period, WorkCalendar
from states.errors import (
    TransitionNotAllowed,
)
from states.guards import GUARDS, Context
from states.machine import Procedure
from states.spec import TimerSpec

if TYPE_CHECKING:
    from engine.service import Engine


class Timers:
    def start_timers(
        self: Engine,
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
        self: Engine, reminder_before: str | None, due: Due, now: datetime, cal: WorkCalendar
    ) -> tuple[str, datetime]:
        if reminder_before:
            day = cal.reminder_day(due.day, Period.parse(reminder_before))
            at = datetime.combine(day, REMINDER_TIME, tzinfo=cal.tz)
            if at > now:
                return "reminder", at
        return "due", due.at

    def _apply_timer_plan(
        self: Engine,
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
        self: Engine,
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
        self: Engine,
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
        self: Engine, tx: Tx, case_id: int, names: tuple[str, ...] | None, now: datetime
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
        self: Engine,
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
        self: Engine,
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
        self: Engine,
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

    def on_delivered(
        self: Engine,
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
        self: Engine, tx: Tx, case_id: int, notice: str, channel: str, now: datetime
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
        self: Engine, tx: Tx, record_id: int, queued_at: datetime, now: datetime
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
