"""What changed between two procedure versions: states, triggers, timers and their periods.

Pure: two specs in, a list of changes out (`redress procedures diff`, the migration plan).
"""

from __future__ import annotations

from dataclasses import dataclass

from states.spec import ProcedureSpec, TimerSpec


@dataclass(frozen=True)
class Change:
    kind: str  # "+" added, "-" removed, "~" changed
    what: str  # state, trigger, timer, field, notice, rules
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.what} {self.name}" + (f": {self.detail}" if self.detail else "")


def _timer_facts(t: TimerSpec) -> dict[str, object]:
    return {
        "period": t.period,
        "scope": t.scope,
        "expiry_trigger": t.expiry_trigger,
        "starts_on_delivery": t.starts_on_delivery,
        "extension": t.extension.max_total if t.extension else None,
        "escalation": [f"{s.notify}+{s.after}" for s in t.escalation],
        "when": t.when,
    }


def _changed(a: dict[str, object], b: dict[str, object]) -> str:
    return "; ".join(f"{k} {a[k]!s} → {b[k]!s}" for k in a if a[k] != b[k])


def diff(old: ProcedureSpec, new: ProcedureSpec) -> list[Change]:
    out: list[Change] = []

    def compare(
        what: str, a: dict[str, dict[str, object]], b: dict[str, dict[str, object]]
    ) -> None:
        for name in sorted(a.keys() - b.keys()):
            out.append(Change("-", what, name))
        for name in sorted(b.keys() - a.keys()):
            out.append(Change("+", what, name, _brief(b[name])))
        for name in sorted(a.keys() & b.keys()):
            if a[name] != b[name]:
                out.append(Change("~", what, name, _changed(a[name], b[name])))

    compare(
        "state",
        {
            s.name: {
                "terminal": s.terminal,
                "settled": s.settled,
                "starts": list(s.starts),
                "stops": list(s.stops),
                "pauses": list(s.pauses),
            }
            for s in old.states
        },
        {
            s.name: {
                "terminal": s.terminal,
                "settled": s.settled,
                "starts": list(s.starts),
                "stops": list(s.stops),
                "pauses": list(s.pauses),
            }
            for s in new.states
        },
    )

    def triggers(spec: ProcedureSpec) -> dict[str, dict[str, object]]:
        return {
            f"{t.name} ({', '.join(t.sources)} → {t.dest})": {
                "roles": list(t.roles),
                "required": list(t.required),
                "guards": list(t.guards),
                "unless": list(t.unless),
                "notices": list(t.notices),
                "effect": t.effect,
            }
            for t in spec.triggers
        }

    compare("trigger", triggers(old), triggers(new))
    compare(
        "timer",
        {t.name: _timer_facts(t) for t in old.timers},
        {t.name: _timer_facts(t) for t in new.timers},
    )
    compare(
        "field",
        {f.name: {"type": f.type, "choices": list(f.choices)} for f in old.fields},
        {f.name: {"type": f.type, "choices": list(f.choices)} for f in new.fields},
    )
    compare(
        "notice",
        {n.name: {"template": n.template, "recipient": n.recipient} for n in old.notices},
        {n.name: {"template": n.template, "recipient": n.recipient} for n in new.notices},
    )
    for key in ("effective_from", "effective_until", "jurisdiction", "legal_basis"):
        a, b = getattr(old, key), getattr(new, key)
        if a != b:
            out.append(Change("~", "procedure", key, f"{a} → {b}"))
    if dict(old.rules) != dict(new.rules):
        out.append(Change("~", "procedure", "rules", f"{dict(old.rules)} → {dict(new.rules)}"))
    return out


def _brief(facts: dict[str, object]) -> str:
    if "period" in facts:
        return str(facts["period"])
    return ""
