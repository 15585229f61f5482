"""Notices: which letters a step sends, to whom and by which channels, with the values each
letter needs taken at the moment of the step.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import notices as letters
from engine import schema as t
from engine import sql
from engine.core import (
    _Case,
    canonical,
    loads,
)
from engine.db import Tx
from states.machine import Procedure
from states.records import (
    SOURCE_LABELS,
    RecordState,
)

if TYPE_CHECKING:
    from engine.service import Engine


class Notifying:
    def _queue_notices(
        self: Engine,
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
        access_code: str | None = None,
        data: Mapping[str, Any] | None = None,
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
            data,
        )
        # Only the letter that tells a party of a case they did not file carries a code.
        context["access_code"] = access_code
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

    def _routes(self: Engine, tx: Tx, case: _Case, recipient: str) -> list[tuple[str, str]]:
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
        self: Engine,
        proc: Procedure,
        case: _Case,
        rec: RecordState | None,
        trigger: str,
        fields: Mapping[str, Any],
        detail: Mapping[str, Any],
        seq: int,
        now: datetime,
        running: Mapping[str, Mapping[str, Any]] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`after`: the case's data as the step leaves it (with what the trigger sets), when
        the caller has it; otherwise the stored data with the step's fields."""
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
        data = {**case.data, **fields} if after is None else dict(after)
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
            "applicant": {
                "name": person.get("name", ""),
                "kind": person.get("kind", ""),
                "anonymous": bool(person.get("anonymous")),
            },
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
                case.determining_unit or "",
                {"zh": case.determining_unit or "", "en": case.determining_unit or ""},
            ),
            "trigger": trigger,
            "fields": dict(fields),
            "data": data,
            "rules": dict(proc.spec.rules),
            "outcome": proc.choice_label("outcome", outcome),
            # Every choice in words: a letter never prints a stored code.
            "choices": {
                name: proc.choice_label(name, data[name])
                for name, fs in proc.fields.items()
                if fs.type == "choice" and data.get(name) is not None
            },
            "access_code": None,
            "deadlines": deadlines,
            "remedies": {
                "review_period": review.period if review else "15 calendar days",
                "reconsideration_days": letters.RECONSIDERATION_DAYS,
                "litigation_months": letters.LITIGATION_MONTHS,
            },
        }
