"""Procedure definitions as data: the schema, and the checks a definition must pass to load.

A procedure (objection, credit repair, ...) is a versioned, effective-dated piece of data:
states, triggers, timers, notices and the effect each trigger has on the credit record.
Nothing here does I/O; `load_procedure` turns a plain mapping into a validated, frozen
`ProcedureSpec` or raises one `DefinitionError` that names the definition, its version and
every problem found.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from states.calendar import Period

ROLES: tuple[str, ...] = (
    "applicant",
    "handler",
    "reviewer",
    "head",
    "credit_office",
    "admin",
    "system",
)
# Who may be the target of a staff escalation or a notice.
RECIPIENTS: tuple[str, ...] = ("applicant", "assignee", "reviewer", "head", "determining_unit")
FIELD_TYPES = Literal["text", "choice", "int", "date", "list", "bool"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Label(_Frozen):
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang.startswith("en") else self.zh


class FieldSpec(_Frozen):
    """A payload field a trigger may require or accept."""

    name: str
    type: FIELD_TYPES = "text"
    label: Label
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 4000


class StateSpec(_Frozen):
    name: str
    label: Label
    # What the applicant reads on the status page: where the case stands, in plain words.
    summary: Label
    # What the applicant must do now, if anything.
    applicant_todo: Label | None = None
    initial: bool = False
    terminal: bool = False
    # A settled state is not terminal (a later act such as revoking a repair can still follow)
    # but the case counts as decided: its deadlines stop and it leaves the work queue.
    settled: bool = False
    starts: tuple[str, ...] = ()
    stops: tuple[str, ...] = ()
    pauses: tuple[str, ...] = ()


class EscalationStep(_Frozen):
    notify: str  # a recipient, see RECIPIENTS
    after: str  # period after the due moment (or after the previous step)


class ExtensionSpec(_Frozen):
    request_trigger: str
    approve_trigger: str
    max_total: str  # the total period, original plus extensions, may not exceed this
    # How many extensions may be approved in all (the default rule sets: one).
    max_count: int = Field(default=1, ge=1)
    # A timer whose due day an extended one may not pass (repair: the overall deadline).
    within: str | None = None


class TimerSpec(_Frozen):
    name: str
    label: Label
    period: str
    # Where the period comes from: the rule's citation, or "(default) ..." where the figure is
    # ours to choose (every timer says which; a test holds every definition to it).
    basis: str = ""
    # "state": stops when the case leaves the state that started it;
    # "case": runs until a state stops it or the case settles;
    # "sync": started only when the entering transition changed the record, and runs, whatever
    # the case does next, until the platform has received that change (withdrawal of wrong
    # published information).
    scope: Literal["state", "case", "sync"] = "state"
    # Counted from the day this notice is delivered to its recipient (送达), not from the day
    # the state is entered: the timer waits until the outbox delivers the notice by mail or
    # SMS, or staff record a delivery by post or in person with `delivery_trigger`.
    starts_on_delivery: str | None = None
    delivery_trigger: str | None = None
    # While it waits, the assignee is told every so often that the notice is still undelivered.
    undelivered_after: str = "3 working days"
    # Whether the applicant's status page lists it (an office's internal stage, such as
    # forwarding within verification, is not the applicant's next step).
    applicant_visible: bool = True
    # A guard that must hold, on the case's data as the entering transition leaves it, for
    # the timer to start at all (withdrawal: only when the decision found the information
    # wrong).
    when: str | None = None
    reminder_before: str | None = "1 working day"
    # On expiry: fire a trigger as the system (deemed withdrawal, closing a review window)...
    expiry_trigger: str | None = None
    # ...or escalate along a chain of recipients.
    escalation: tuple[EscalationStep, ...] = ()
    extension: ExtensionSpec | None = None


class NoticeSpec(_Frozen):
    name: str
    label: Label
    template: str
    recipient: str


class TriggerSpec(_Frozen):
    """One transition. Several specs may share a name (branches chosen by their guards)."""

    name: str
    label: Label
    sources: tuple[str, ...]
    dest: str
    roles: tuple[str, ...]
    # Whose staff may fire it: the department handling the case, the unit that made the
    # original finding (谁认定、谁修复), or either.
    scope: Literal["handling", "determining_unit", "any"] = "handling"
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    effect: str | None = None
    # Values written into the case's data when the trigger fires (flags for guards).
    sets: Mapping[str, Any] = Field(default_factory=dict)
    # Keep who fired it in the case's data under this key ({"name", "role"}), for guards that
    # must tell people apart (a review is not decided by the person who made the decision).
    records_actor: str | None = None


class ProcedureSpec(_Frozen):
    name: str
    version: int
    title: Label
    effective_from: date
    effective_until: date | None = None
    jurisdiction: str
    legal_basis: str
    fields: tuple[FieldSpec, ...]
    states: tuple[StateSpec, ...]
    triggers: tuple[TriggerSpec, ...]
    timers: tuple[TimerSpec, ...] = ()
    notices: tuple[NoticeSpec, ...] = ()
    # Fields of the application itself (grounds, commitments), checked when a case is opened.
    intake_required: tuple[str, ...] = ()
    intake_optional: tuple[str, ...] = ()
    # Checked when a case is opened (e.g. repair eligibility); refusal opens nothing.
    intake_guards: tuple[str, ...] = ()
    # Emitted when a case is opened (e.g. an acknowledgement of receipt).
    intake_notices: tuple[str, ...] = ()
    # Procedure parameters read by guards and effects (periods, bars, ...).
    rules: Mapping[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    def state(self, name: str) -> StateSpec:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def initial_state(self) -> StateSpec:
        return next(s for s in self.states if s.initial)


class DefinitionError(ValueError):
    """A procedure definition that cannot be loaded; the message lists every problem."""

    def __init__(self, name: str, version: object, problems: list[str]) -> None:
        self.name = name
        self.version = version
        self.problems = problems
        head = f"procedure {name!r} version {version}: {len(problems)} problem(s) in definition"
        super().__init__(head + "".join(f"\n  - {p}" for p in problems))


def load_procedure(
    data: Mapping[str, Any],
    *,
    guards: Mapping[str, object],
    effects: Mapping[str, object],
) -> ProcedureSpec:
    """Validate a definition given as plain data against the known guards and effects."""
    name = str(data.get("name", "<unnamed>"))
    version = data.get("version", "<no version>")
    try:
        spec = ProcedureSpec.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise DefinitionError(name, version, problems) from None
    problems = _semantic_problems(spec, guards, effects)
    if problems:
        raise DefinitionError(spec.name, spec.version, problems)
    return spec


def _semantic_problems(
    spec: ProcedureSpec, guards: Mapping[str, object], effects: Mapping[str, object]
) -> list[str]:
    out: list[str] = []
    state_names = [s.name for s in spec.states]
    states = set(state_names)
    timers = {t.name for t in spec.timers}
    notices = {n.name for n in spec.notices}
    fields = {f.name for f in spec.fields}
    trigger_names = {t.name for t in spec.triggers}

    for dup in {n for n in state_names if state_names.count(n) > 1}:
        out.append(f"state {dup!r} is defined more than once")
    initials = [s.name for s in spec.states if s.initial]
    if len(initials) != 1:
        out.append(f"exactly one initial state is needed, found {initials or 'none'}")

    for fs in spec.fields:
        if fs.type == "choice" and not fs.choices:
            out.append(f"field {fs.name!r} is a choice without choices")

    for t in spec.triggers:
        where = f"trigger {t.name!r}"
        for src in t.sources:
            if src not in states:
                out.append(f"{where}: unknown source state {src!r}")
        if t.dest not in states and t.dest != "=":  # "=": stays where it is (reflexive)
            out.append(f"{where}: unknown destination state {t.dest!r}")
        if not t.roles:
            out.append(f"{where}: no role may fire it")
        for r in t.roles:
            if r not in ROLES:
                out.append(f"{where}: unknown role {r!r} (known: {', '.join(ROLES)})")
        for fname in (*t.required, *t.optional):
            if fname not in fields:
                out.append(f"{where}: unknown field {fname!r}")
        for g in (*t.guards, *t.unless):
            if g not in guards:
                out.append(f"{where}: unknown guard {g!r}")
        for n in t.notices:
            if n not in notices:
                out.append(f"{where}: unknown notice {n!r}")
        if t.effect is not None and t.effect not in effects:
            out.append(f"{where}: unknown effect {t.effect!r}")

    # Branches of one trigger must agree on who fires them and with what, and must be
    # distinguishable by (source, destination) so the engine knows which one fired.
    seen: dict[tuple[str, str, str], int] = {}
    by_name: dict[str, TriggerSpec] = {}
    for t in spec.triggers:
        first = by_name.setdefault(t.name, t)
        if (first.roles, first.required, first.scope) != (t.roles, t.required, t.scope):
            out.append(f"trigger {t.name!r}: branches differ in roles, required fields or scope")
        for src in t.sources:
            k = (t.name, src, t.dest)
            seen[k] = seen.get(k, 0) + 1
            if seen[k] == 2:
                out.append(f"trigger {t.name!r}: two branches from {src!r} to {t.dest!r}")

    for s in spec.states:
        for kind, names in (("starts", s.starts), ("stops", s.stops), ("pauses", s.pauses)):
            for n in names:
                if n not in timers:
                    out.append(f"state {s.name!r} {kind} unknown timer {n!r}")
        exits = [t for t in spec.triggers if s.name in t.sources]
        if s.terminal and exits:
            out.append(f"terminal state {s.name!r} has exits: {sorted({t.name for t in exits})}")
        if not s.terminal and not exits:
            out.append(f"state {s.name!r} is not terminal but has no exit")
        if s.terminal and (s.starts or s.pauses):
            out.append(f"terminal state {s.name!r} starts or pauses timers")

    for tm in spec.timers:
        where = f"timer {tm.name!r}"
        for label, text in (("period", tm.period), ("reminder_before", tm.reminder_before)):
            if text is not None:
                try:
                    Period.parse(text)
                except ValueError as exc:
                    out.append(f"{where}: bad {label}: {exc}")
        if tm.expiry_trigger is not None:
            if tm.expiry_trigger not in trigger_names:
                out.append(f"{where}: unknown expiry trigger {tm.expiry_trigger!r}")
            elif not any("system" in t.roles for t in spec.triggers if t.name == tm.expiry_trigger):
                out.append(f"{where}: expiry trigger {tm.expiry_trigger!r} lacks role 'system'")
        if tm.expiry_trigger is None and not tm.escalation:
            out.append(f"{where}: neither an expiry trigger nor an escalation chain")
        for step in tm.escalation:
            if step.notify not in RECIPIENTS:
                out.append(f"{where}: unknown escalation recipient {step.notify!r}")
            try:
                Period.parse(step.after)
            except ValueError as exc:
                out.append(f"{where}: bad escalation delay: {exc}")
        if tm.extension is not None:
            for trig in (tm.extension.request_trigger, tm.extension.approve_trigger):
                if trig not in trigger_names:
                    out.append(f"{where}: unknown extension trigger {trig!r}")
            try:
                Period.parse(tm.extension.max_total)
            except ValueError as exc:
                out.append(f"{where}: bad extension max_total: {exc}")
            if tm.extension.within is not None and tm.extension.within not in timers:
                out.append(f"{where}: extension within unknown timer {tm.extension.within!r}")
        if not any(tm.name in s.starts for s in spec.states):
            out.append(f"{where}: no state starts it")
        if tm.when is not None and tm.when not in guards:
            out.append(f"{where}: unknown guard {tm.when!r} in 'when'")
        if tm.starts_on_delivery is not None and tm.starts_on_delivery not in notices:
            out.append(f"{where}: starts on delivery of unknown notice {tm.starts_on_delivery!r}")
        if tm.delivery_trigger is not None and tm.delivery_trigger not in trigger_names:
            out.append(f"{where}: unknown delivery trigger {tm.delivery_trigger!r}")
        if tm.starts_on_delivery is not None and tm.scope == "sync":
            out.append(f"{where}: a sync timer cannot wait for a notice's delivery")
        try:
            Period.parse(tm.undelivered_after)
        except ValueError as exc:
            out.append(f"{where}: bad undelivered_after: {exc}")

    for ns in spec.notices:
        if ns.recipient not in RECIPIENTS:
            out.append(f"notice {ns.name!r}: unknown recipient {ns.recipient!r}")
    for notice_name in spec.intake_notices:
        if notice_name not in notices:
            out.append(f"intake notice {notice_name!r} is not defined")
    for field_name in (*spec.intake_required, *spec.intake_optional):
        if field_name not in fields:
            out.append(f"intake field {field_name!r} is not defined")
    for g in spec.intake_guards:
        if g not in guards:
            out.append(f"unknown intake guard {g!r}")

    if len(initials) == 1:
        reach = _reachable(spec, initials[0])
        for st in spec.states:
            if st.name not in reach:
                out.append(f"state {st.name!r} is unreachable from {initials[0]!r}")
    return out


def _reachable(spec: ProcedureSpec, start: str) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        cur = todo.popleft()
        for t in spec.triggers:
            if cur in t.sources and t.dest != "=" and t.dest not in seen:
                seen.add(t.dest)
                todo.append(t.dest)
    return seen
