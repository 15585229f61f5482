"""Moving running cases from one deployed version of a procedure to another.

Camunda's migration moves tokens and leaves timers as they were. Here each live deadline is
re-evaluated under the target version: a timer the target keeps is kept with its anchor (the
day counting started) and its extensions, and its due day recomputed under the new period; a
timer the target lacks is stopped; a timer the target's state starts and the case lacks is
started, counted from the day the case entered that state.

The plan is computed first (`plan`, also the dry run). A state that has cases and no
counterpart in the target (and no `--map`) refuses the whole migration, naming the state, so no
case is moved at all. The run (`run`) migrates each case in its own transaction, with a
`migrated` event in its hash chain; a case already on the target is skipped, so a rerun after a
crash migrates exactly what is left and no case is ever half-moved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine import schema as t
from engine import sql
from engine.core import _Case
from engine.definitions import StoredVersion
from engine.service import Actor, Engine, canonical
from states.calendar import Period, WorkCalendar
from states.errors import Conflict, FieldError, Forbidden, InvalidPayload
from states.machine import Procedure


@dataclass(frozen=True)
class TimerPlan:
    name: str
    change: str  # recomputed | kept | stopped | started
    old_period: str | None
    new_period: str | None
    cases: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "timer": self.name,
            "change": self.change,
            "old_period": self.old_period,
            "new_period": self.new_period,
            "cases": self.cases,
        }


@dataclass
class MigrationPlan:
    procedure: str
    jurisdiction: str
    source: StoredVersion
    target: StoredVersion
    mapping: dict[str, str]
    states: dict[str, tuple[str, int]] = field(default_factory=dict)  # old → (new, cases)
    timers: list[TimerPlan] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # states with cases and no counterpart
    case_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def as_dict(self) -> dict[str, Any]:
        return {
            "procedure": self.procedure,
            "jurisdiction": self.jurisdiction,
            "from_version": self.source.version,
            "to_version": self.target.version,
            "mapping": self.mapping,
            "states": [
                {"from": old, "to": new, "cases": n} for old, (new, n) in self.states.items()
            ],
            "timers": [tp.as_dict() for tp in self.timers],
            "refused": self.refused,
            "cases": len(self.case_ids),
        }


@dataclass
class MigrationResult:
    plan: MigrationPlan
    migrated: int = 0
    skipped: int = 0  # already on the target (an earlier, interrupted run), or closed since


class Migrations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.db = engine.db

    def plan(
        self,
        procedure: str,
        jurisdiction: str,
        from_version: int,
        to_version: int,
        mapping: Mapping[str, str] | None = None,
    ) -> MigrationPlan:
        defs = self.engine.procedures
        source = defs.find(procedure, from_version, jurisdiction)
        target = defs.find(procedure, to_version, jurisdiction)
        old, new = defs.by_id(source.id), defs.by_id(target.id)
        mapping = dict(mapping or {})
        for a, b in mapping.items():
            problems = []
            if a not in old.states:
                problems.append(
                    FieldError(
                        f"map.{a}",
                        "unknown",
                        f"version {from_version} has no state {a!r}",
                        f"第{from_version}版没有状态“{a}”",
                    )
                )
            if b not in new.states:
                problems.append(
                    FieldError(
                        f"map.{a}",
                        "unknown",
                        f"version {to_version} has no state {b!r}",
                        f"第{to_version}版没有状态“{b}”",
                    )
                )
            if problems:
                raise InvalidPayload(problems)
        plan = MigrationPlan(procedure, jurisdiction, source, target, mapping)
        with self.db.tx(readonly=True) as tx:
            rows = tx.all(
                "SELECT id, state FROM cases WHERE definition_id = :d AND closed_at IS NULL "
                "ORDER BY id",
                {"d": source.id},
            )
            live = tx.all(
                "SELECT tm.name, count(*) FROM timers tm JOIN cases c ON c.id = tm.case_id "
                "WHERE c.definition_id = :d AND c.closed_at IS NULL "
                "AND tm.status IN ('active', 'paused', 'waiting') "
                "GROUP BY tm.name ORDER BY tm.name",
                {"d": source.id},
            )
        counts: dict[str, int] = {}
        for cid, state in rows:
            counts[state] = counts.get(state, 0) + 1
            plan.case_ids.append(int(cid))
        for state, n in sorted(counts.items()):
            dest = mapping.get(state, state)
            if dest not in new.states:
                plan.refused.append(state)
            plan.states[state] = (dest, n)
        running = {name: int(n) for name, n in live}
        for name, n in running.items():
            spec_old, spec_new = old.timers.get(name), new.timers.get(name)
            before = spec_old.period if spec_old else None
            if spec_new is None:
                plan.timers.append(TimerPlan(name, "stopped", before, None, n))
            else:
                change = "kept" if before == spec_new.period else "recomputed"
                plan.timers.append(TimerPlan(name, change, before, spec_new.period, n))
        started: dict[str, int] = {}
        for state, (dest, n) in plan.states.items():
            if dest not in new.states:
                continue
            for name in new.spec.state(dest).starts:
                if name not in running and name not in old.spec.state(state).starts:
                    started[name] = started.get(name, 0) + n
        for name, n in sorted(started.items()):
            plan.timers.append(TimerPlan(name, "started", None, new.timers[name].period, n))
        return plan

    def run(
        self,
        plan: MigrationPlan,
        actor: Actor,
        progress: Callable[[int], None] | None = None,
    ) -> MigrationResult:
        if actor.role not in ("admin", "system"):
            raise Forbidden("only an administrator migrates cases", "只有管理员可以迁移案件")
        if not plan.ok:
            raise Conflict(
                "no counterpart in version "
                f"{plan.target.version} for state(s) {', '.join(plan.refused)}: map each with "
                "--map OLD=NEW; nothing was migrated",
                f"第{plan.target.version}版中没有对应状态：{'、'.join(plan.refused)}；"
                "请用 --map 旧=新 指定对应关系；未迁移任何案件",
            )
        defs = self.engine.procedures
        old, new = defs.by_id(plan.source.id), defs.by_id(plan.target.id)
        result = MigrationResult(plan)
        for cid in plan.case_ids:
            if self._one(cid, plan, old, new, actor):
                result.migrated += 1
            else:
                result.skipped += 1
            if progress is not None:
                progress(1)
        return result

    def _one(
        self, case_id: int, plan: MigrationPlan, old: Procedure, new: Procedure, actor: Actor
    ) -> bool:
        eng = self.engine
        now = eng.now()
        with self.db.tx() as tx:
            case = eng.locked_case(tx, case_id)
            if case is None or case.definition_id != plan.source.id:
                return False  # migrated by an earlier run, or not ours
            if case.row[sql.CASE_CLOSED_AT] is not None:
                return False
            dest = plan.mapping.get(case.state, case.state)
            cal = eng.calendar_of(case)
            today = cal.local_date(now)
            changes: list[dict[str, Any]] = []
            live = tx.all(sql.TIMERS_LIVE, {"case_id": case.id})
            names = set()
            for (
                tid,
                name,
                status,
                period_text,
                due_day,
                remaining,
                extended,
                anchor,
                _amount,
            ) in live:
                names.add(name)
                spec = new.timers.get(name)
                old_due = t.to_date(due_day)
                if spec is None:
                    tx.execute(sql.TIMER_STOP, {"id": tid, "now": eng.sql_ts(now)})
                    changes.append({"timer": name, "change": "stopped", "old_due": _iso(old_due)})
                    continue
                before, after = Period.parse(period_text), Period.parse(spec.period)
                tx.execute(
                    "UPDATE timers SET period = :p WHERE id = :id", {"p": spec.period, "id": tid}
                )
                item: dict[str, Any] = {
                    "timer": name,
                    "old_period": period_text,
                    "new_period": spec.period,
                    "old_due": _iso(old_due),
                }
                if status == "active" and anchor is not None:
                    total = after.amount + int(extended or 0)
                    change = eng.set_due(
                        tx,
                        int(tid),
                        name,
                        spec.reminder_before,
                        t.to_date(anchor) or today,
                        total,
                        after.unit,
                        int(extended or 0),
                        now,
                        f"migrated to version {new.version}",
                        old_due,
                        cal=cal,
                    )
                    item.update(change="recomputed", new_due=change["due"])
                elif status == "paused":
                    left = max(int(remaining or 0) + after.amount - before.amount, 1)
                    tx.execute(
                        "UPDATE timers SET remaining = :r WHERE id = :id", {"r": left, "id": tid}
                    )
                    item.update(change="recomputed", remaining=left)
                else:  # waiting for a delivery: its due day comes with the delivery
                    item.update(change="kept")
                changes.append(item)
            entered = self._entered(tx, case.id, case.state, cal)
            start = [
                n
                for n in new.spec.state(dest).starts
                if n not in names and n not in old.spec.state(case.state).starts
            ]
            if start:
                case_view = _Case(**{**case.__dict__, "state": dest})
                started = eng.start_timers(tx, new, case_view, tuple(start), now, anchor=entered)
                changes += [{**c, "change": "started", "new_due": c.get("due")} for c in started]
            detail = {
                "from": {
                    "version": old.version,
                    "definition_id": plan.source.id,
                    "sha256": plan.source.sha256,
                },
                "to": {
                    "version": new.version,
                    "definition_id": plan.target.id,
                    "sha256": plan.target.sha256,
                },
                "mapping": {case.state: dest} if dest != case.state else {},
                "deadlines": changes,
            }
            row = eng.event_row(
                case,
                "migrated",
                case.state,
                dest,
                case.version + 1,
                actor,
                now,
                canonical({}),
                detail,
            )
            eng.append_event(tx, case, row)
            n = tx.execute(
                "UPDATE cases SET definition_id = :d, definition_version = :v, state = :s, "
                "version = version + 1, event_seq = :seq, last_hash = :h, updated_at = :now "
                "WHERE id = :id AND definition_id = :old",
                {
                    "d": plan.target.id,
                    "v": new.version,
                    "s": dest,
                    "seq": case.event_seq,
                    "h": case.last_hash,
                    "now": eng.sql_ts(now),
                    "id": case.id,
                    "old": plan.source.id,
                },
            )
            assert n == 1
        return True

    @staticmethod
    def _entered(tx: Any, case_id: int, state: str, cal: WorkCalendar) -> date | None:
        """The day the case entered its current state (the anchor for a timer it starts)."""
        at = tx.scalar(
            "SELECT max(at) FROM case_events WHERE case_id = :c AND to_state = :s "
            "AND (from_state IS NULL OR from_state <> :s)",
            {"c": case_id, "s": state},
        )
        ts = t.to_ts(at)
        return None if ts is None else cal.local_date(ts)


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None
