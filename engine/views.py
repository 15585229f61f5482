"""What a caller reads of a case: its view, its deadlines, its events, what it allows now.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import schema as t
from engine import sql
from engine.core import (
    Actor,
    _Case,
)
from engine.db import Tx
from states import disclosure
from states.machine import Procedure

if TYPE_CHECKING:
    from engine.service import Engine


class CaseViews:
    def allowed_actions(self: Engine, case_id: int, actor: Actor) -> list[dict[str, Any]]:
        with self.db.tx(readonly=True) as tx:
            case = self.load_case(tx, case_id, actor)
            proc = self.procedures.by_id(case.definition_id)
            return self._allowed(proc, case, actor, case.record())

    def case_view(self: Engine, case_id: int, actor: Actor, lang: str = "zh") -> dict[str, Any]:
        with self.db.tx(readonly=True) as tx:
            return self.case_view_in(tx, self.load_case(tx, case_id, actor), actor, lang)

    def case_view_in(
        self: Engine, tx: Tx, case: _Case, actor: Actor, lang: str = "zh"
    ) -> dict[str, Any]:
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
            "links": self.links_in(tx, case_id, actor, lang),
        }

    def links_in(
        self: Engine, tx: Tx, case_id: int, actor: Actor, lang: str
    ) -> list[dict[str, Any]]:
        """The cases this one opened or was opened from (a complaint and its identification),
        each marked with whether `actor` may open it."""
        out = []
        for rel, oid, no, procedure, state, def_id, dept, unit in tx.all(
            sql.CASE_LINKS, {"id": case_id}
        ):
            other = self.procedures.by_id(int(def_id))
            out.append(
                {
                    "relation": rel,
                    "case_id": int(oid),
                    "case_no": no,
                    "procedure": procedure,
                    "procedure_title": other.spec.title.get(lang),
                    "state": state,
                    "state_label": other.states[state].label.get(lang),
                    "visible": self._can_see(actor, int(oid), dept, unit, procedure),
                }
            )
        return out

    def deadlines_in(
        self: Engine, tx: Tx, proc: Procedure, case_id: int, lang: str, now: datetime
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

    def events(self: Engine, case_id: int, actor: Actor) -> list[dict[str, Any]]:
        with self.db.tx(readonly=True) as tx:
            return self.events_in(tx, self.load_case(tx, case_id, actor), actor)

    def events_in(self: Engine, tx: Tx, case: _Case, actor: Actor) -> list[dict[str, Any]]:
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
