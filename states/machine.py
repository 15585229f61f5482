"""A procedure definition compiled once into one shared `transitions` machine, plus its indexes.

One static machine per (name, version): `model=None`, `auto_transitions=False`, and each
command fires `machine.events[trigger].trigger(case)` on a throwaway object carrying only the
state. Never a machine per case and never `add_model` per case (quadratic, and it leaks).
Guards run as the machine's conditions; nothing here has side effects, so a refused or failed
command leaves nothing behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from transitions import Machine, MachineError

from states.effects import CREATIONS, EFFECTS, Creation, Effect
from states.errors import FieldError, InvalidPayload, TransitionNotAllowed
from states.guards import GUARDS, Context, Verdict
from states.spec import (
    Catalog,
    FieldSpec,
    ProcedureSpec,
    StateSpec,
    TimerSpec,
    TriggerSpec,
    load_procedure,
)


class _Subject:
    """What the shared machine moves: just a state. The case itself never enters the machine."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(frozen=True)
class Fired:
    """The outcome of firing a trigger: which branch ran and where the case now stands."""

    trigger: TriggerSpec
    source: str
    dest: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class TimerPlan:
    """What a transition does to the case's timers, in the order the engine applies it."""

    stop: tuple[str, ...] = ()
    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    stop_all: bool = False
    # Whether applying it needs the live timers' rows: pausing and resuming do (the days
    # left), and so does starting a case-wide timer (it keeps running if it already is).
    # Otherwise stopping by name and inserting are enough.
    reads_live: bool = False


def _check_guard(name: str, negate: bool) -> Any:
    guard = GUARDS[name]

    def cond(event: Any) -> bool:
        ok = guard(event.kwargs["ctx"]).ok
        return not ok if negate else ok

    cond.__name__ = f"{'unless' if negate else 'if'}_{name}"
    return cond


class Procedure:
    """A loaded, validated, compiled procedure version."""

    def __init__(self, spec: ProcedureSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.version = spec.version
        self.states: dict[str, StateSpec] = {s.name: s for s in spec.states}
        self.timers: dict[str, TimerSpec] = {t.name: t for t in spec.timers}
        self.fields: dict[str, FieldSpec] = {f.name: f for f in spec.fields}
        self.notices = {n.name: n for n in spec.notices}
        self.initial = spec.initial_state.name
        self.branches: dict[str, list[TriggerSpec]] = {}
        for t in spec.triggers:
            self.branches.setdefault(t.name, []).append(t)
        self._from_state: dict[str, tuple[str, ...]] = {
            s: tuple(dict.fromkeys(t.name for t in spec.triggers if s in t.sources))
            for s in self.states
        }
        self._plans: dict[tuple[str, str], TimerPlan] = {}
        # The timers whose extension a trigger approves (most triggers: none).
        self.extended_by: dict[str, tuple[TimerSpec, ...]] = {}
        for tm in spec.timers:
            if tm.extension:
                key = tm.extension.approve_trigger
                self.extended_by[key] = (*self.extended_by.get(key, ()), tm)
        # The timer whose extensions a request trigger asks for (bounded by max_count).
        self.extension_requests: dict[str, TimerSpec] = {
            tm.extension.request_trigger: tm for tm in spec.timers if tm.extension
        }
        # Timers that wait for a notice's delivery, by the notice, and by the trigger with
        # which staff record a delivery by hand.
        self.on_delivery: dict[str, tuple[TimerSpec, ...]] = {}
        self.delivery_triggers: dict[str, tuple[TimerSpec, ...]] = {}
        for tm in spec.timers:
            if tm.starts_on_delivery:
                key = tm.starts_on_delivery
                self.on_delivery[key] = (*self.on_delivery.get(key, ()), tm)
            if tm.delivery_trigger:
                key = tm.delivery_trigger
                self.delivery_triggers[key] = (*self.delivery_triggers.get(key, ()), tm)
        self.sync_timers: frozenset[str] = frozenset(
            tm.name for tm in spec.timers if tm.scope == "sync"
        )
        # What closing a case stops: every live timer (None), or all but the sync timers,
        # which outlive the case until the platform has the change.
        self.closing_stops: tuple[str, ...] | None = (
            tuple(tm.name for tm in spec.timers if tm.scope != "sync") if self.sync_timers else None
        )
        # Roles that act on every case of the procedure, whatever their department.
        self.role_scoped: frozenset[str] = frozenset(
            r for t in spec.triggers if t.scope == "role" for r in t.roles
        )
        # Labels as letters and views use them, made once.
        self.title_labels: dict[str, str] = spec.title.model_dump()
        self.timer_labels: dict[str, dict[str, str]] = {
            tm.name: tm.label.model_dump() for tm in spec.timers
        }
        self._branch_at: dict[tuple[str, str, str], TriggerSpec] = {}
        for t in spec.triggers:
            for src in t.sources:
                dest = src if t.dest == "=" else t.dest
                self._branch_at[(t.name, src, dest)] = t
        self.machine = Machine(
            model=None,
            states=list(self.states),
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in spec.triggers:
            conditions = [_check_guard(g, False) for g in t.guards]
            conditions += [_check_guard(g, True) for g in t.unless]
            self.machine.add_transition(
                t.name, list(t.sources), t.dest, conditions=conditions or None
            )

    # -- queries ---------------------------------------------------------------------------

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """Triggers with a branch leaving `state`, whatever the role or guards."""
        return self._from_state.get(state, ())

    def roles_for(self, trigger: str) -> tuple[str, ...]:
        return self.branches[trigger][0].roles

    def is_closed(self, state: str) -> bool:
        s = self.states[state]
        return s.terminal or s.settled

    def guard_verdicts(self, state: str, trigger: str, ctx: Context) -> list[Verdict]:
        """The refusals of every branch of `trigger` leaving `state` (empty if one passes)."""
        refusals: list[Verdict] = []
        for t in self.branches.get(trigger, ()):
            if state not in t.sources:
                continue
            failed = [v for v in (GUARDS[g](ctx) for g in t.guards) if not v.ok]
            failed += [
                Verdict(False, f"条件“{g}”成立时不可执行", f"not possible while {g} holds")
                for g in t.unless
                if GUARDS[g](ctx).ok
            ]
            if not failed:
                return []
            refusals.extend(failed)
        return refusals

    def effect(self, trigger: TriggerSpec) -> Effect | None:
        return EFFECTS.get(trigger.effect) if trigger.effect else None

    def creation(self, trigger: TriggerSpec) -> Creation | None:
        """The effect that creates the case's record (an identification's decision)."""
        return CREATIONS.get(trigger.effect) if trigger.effect else None

    # -- commands --------------------------------------------------------------------------

    def validate_payload(self, trigger: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a command's fields against the trigger; return them cleaned or raise."""
        spec = self.branches[trigger][0]
        return self._validate(spec.required, spec.optional, payload, trigger)

    def validate_intake(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check the fields of a new application (grounds, commitments)."""
        s = self.spec
        return self._validate(s.intake_required, s.intake_optional, payload, "application")

    def _validate(
        self,
        required: tuple[str, ...],
        optional: tuple[str, ...],
        payload: Mapping[str, Any],
        what: str,
    ) -> dict[str, Any]:
        allowed = (*required, *optional)
        if not isinstance(payload, Mapping):
            raise InvalidPayload(
                [FieldError("payload", "type", "must be an object", "须为对象（键值对）")]
            )
        errors = [
            FieldError(
                str(key),
                "unknown",
                f"not a field of {what!r}; allowed: {', '.join(allowed) or 'none'}",
                f"“{what}”没有此字段；可用字段：{'、'.join(allowed) or '无'}",
            )
            for key in payload
            if key not in allowed
        ]
        clean: dict[str, Any] = {}
        for name in allowed:
            value = payload.get(name)
            if value is None or (isinstance(value, str | list) and not value):
                if name in required:
                    errors.append(FieldError(name, "required", "is required", "必填"))
                continue
            err, cleaned = _check_field(self.fields[name], value)
            if err is not None:
                errors.append(err)
            else:
                clean[name] = cleaned
        if errors:
            raise InvalidPayload(errors)
        return clean

    def fire(self, state: str, trigger: str, ctx: Context) -> Fired:
        """Run the shared machine from `state`; raise TransitionNotAllowed when it refuses."""
        if state not in self.states:
            raise TransitionNotAllowed(trigger, state, [], f"unknown state {state!r}")
        event = self.machine.events.get(trigger)
        if event is None or trigger not in self._from_state[state]:
            raise TransitionNotAllowed(trigger, state, list(self.triggers_from(state)))
        subject = _Subject(state)
        try:
            moved = event.trigger(subject, ctx=ctx)
        except MachineError:  # pragma: no cover - excluded by the index check above
            raise TransitionNotAllowed(trigger, state, list(self.triggers_from(state))) from None
        if not moved:
            refusals = self.guard_verdicts(state, trigger, ctx)
            raise TransitionNotAllowed(
                trigger,
                state,
                list(self.triggers_from(state)),
                "; ".join(v.reason_en for v in refusals) or None,
                "；".join(v.reason_zh for v in refusals) or None,
            )
        branch = self._branch_at[(trigger, state, subject.state)]
        return Fired(branch, state, subject.state, ctx.payload)

    def timer_plan(self, source: str, dest: str) -> TimerPlan:
        plan = self._plans.get((source, dest))
        if plan is None:  # a procedure is immutable once loaded: work each pair out once
            plan = self._plans[(source, dest)] = self._timer_plan(source, dest)
        return plan

    def _timer_plan(self, source: str, dest: str) -> TimerPlan:
        if source == dest:
            return TimerPlan()
        src, dst = self.states[source], self.states[dest]
        stop = [n for n in src.starts if self.timers[n].scope == "state"]
        resume = [n for n in src.pauses if n not in dst.pauses]
        if dst.terminal or dst.settled:
            return TimerPlan(stop_all=True)
        stop += [n for n in dst.stops if n not in stop]
        pause = [n for n in dst.pauses if n not in src.pauses]
        resume = [n for n in resume if n not in stop]
        case_wide = any(self.timers[n].scope != "state" for n in dst.starts)
        return TimerPlan(
            stop=tuple(stop),
            pause=tuple(pause),
            resume=tuple(resume),
            start=dst.starts,
            reads_live=bool(pause or resume or case_wide),
        )

    # -- export ----------------------------------------------------------------------------

    def choice_label(self, field: str, value: object) -> dict[str, str]:
        """A choice field's value in words, {"zh", "en"} (empty when unset or not a choice)."""
        spec = self.fields.get(field)
        if spec is None or value is None:
            return {"zh": "", "en": ""}
        lab = spec.choice_labels.get(str(value))
        return lab.model_dump() if lab else {"zh": str(value), "en": str(value)}

    def mermaid(self, lang: str = "zh", highlight: str | None = None) -> str:
        """A Mermaid state diagram, drawn by transitions' own diagram extension from the same
        states and triggers the machine runs; `highlight` marks a case's current state."""
        from transitions.extensions.diagrams import GraphMachine

        model = _DiagramModel()
        edges = [
            {"trigger": t.name, "source": src, "dest": src if t.dest == "=" else t.dest}
            for t in self.spec.triggers
            for src in t.sources
        ]
        graph = GraphMachine(
            model=model,
            states=[s.name for s in self.spec.states],
            transitions=edges,
            initial=self.initial,
            graph_engine="mermaid",
            auto_transitions=False,
            show_state_attributes=False,
        )
        if highlight is not None:
            graph.set_state(highlight, model=model)
        text: str = getattr(model, "get_graph")(force_new=True).draw(None)  # noqa: B009
        # From the diagram itself: the extension's front matter is not Mermaid's title syntax.
        text = text[text.index("stateDiagram-v2") :]
        lines = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith('state "') and " as " in stripped:
                # The extension labels a state with its name: put the words people read.
                name = stripped.rsplit(" as ", 1)[1]
                label = self.states[name].label.get(lang).replace('"', "'")
                line = line.replace(stripped, f'state "{label}" as {name}')
            elif highlight is None and stripped.endswith(" s_active"):
                line = line.replace(" s_active", " s_default")  # no case: nothing is current
            lines.append(line)
        return "\n".join(lines) + "\n"


class _DiagramModel:
    """A throwaway model for drawing (the running machine has none)."""


def _check_field(spec: FieldSpec, value: Any) -> tuple[FieldError | None, Any]:
    name = spec.name

    def bad(code: str, en: str, zh: str) -> tuple[FieldError, None]:
        return FieldError(name, code, en, zh), None

    if spec.type in ("text", "choice", "department"):
        if not isinstance(value, str):
            return bad("type", "must be text", "须为文本")
        value = value.strip()
        if not value:
            return bad("required", "is required", "必填")
        if not is_clean_text(value):
            return bad("text", "contains a NUL or an invalid character", "含有非法字符")
        if len(value) > spec.max_length:
            return bad(
                "too_long",
                f"is {len(value)} characters; at most {spec.max_length}",
                f"长度为{len(value)}，最多{spec.max_length}个字符",
            )
        if spec.type == "choice" and value not in spec.choices:
            return bad(
                "choice",
                f"{value!r} is not one of: {', '.join(spec.choices)}",
                f"“{value}”不是可选值之一：{'、'.join(spec.choices)}",
            )
        return None, value
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return bad("type", "must be a whole number", "须为整数")
        if spec.minimum is not None and value < spec.minimum:
            return bad("range", f"must be at least {spec.minimum}", f"不得小于{spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            return bad("range", f"must be at most {spec.maximum}", f"不得大于{spec.maximum}")
        return None, value
    if spec.type == "bool":
        if not isinstance(value, bool):
            return bad("type", "must be true or false", "须为是或否")
        return None, value
    if spec.type == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            return bad("type", "must be a list of non-empty texts", "须为非空文本列表")
        if not all(is_clean_text(v) for v in value):
            return bad("text", "contains a NUL or an invalid character", "含有非法字符")
        if sum(len(v) for v in value) > spec.max_length:
            return bad("too_long", f"at most {spec.max_length} characters", "内容过长")
        return None, [v.strip() for v in value]
    if spec.type == "date":
        try:
            return None, date.fromisoformat(str(value)).isoformat()
        except ValueError:
            return bad("date", "must be a date as YYYY-MM-DD", "须为日期（YYYY-MM-DD）")
    return bad("type", f"unsupported field type {spec.type}", "不支持的字段类型")


def is_clean_text(value: str) -> bool:
    """No NUL (PostgreSQL cannot store it) and valid UTF-8 (no lone surrogates)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Bounds on JSON a caller supplies (record content, command payloads): deep or huge values
# were stored, then broke every later read of them (a 500 on PostgreSQL at 300 levels), and
# integers beyond 2**53 are read wrongly by JavaScript and many JSON libraries.
MAX_JSON_DEPTH = 16
MAX_JSON_VALUES = 2000
MAX_JSON_TEXT = 64 * 1024  # characters, keys and strings together
MAX_JSON_INT = 2**53 - 1


def json_problem(value: Any, field: str) -> FieldError | None:
    """The first way a caller's JSON value breaks the bounds or cannot be stored, located
    (`content.a[2].b`), or None. Iterative, so no depth makes it fail itself."""
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    values = text = 0
    while stack:
        v, path, depth = stack.pop()
        values += 1
        if values > MAX_JSON_VALUES:
            return FieldError(
                field,
                "too_large",
                f"has more than {MAX_JSON_VALUES} values",
                f"包含的值超过{MAX_JSON_VALUES}个",
            )
        if depth > MAX_JSON_DEPTH:
            return FieldError(
                path,
                "too_deep",
                f"is nested more than {MAX_JSON_DEPTH} levels deep",
                f"嵌套超过{MAX_JSON_DEPTH}层",
            )
        if isinstance(v, str):
            text += len(v)
            if not is_clean_text(v):
                return FieldError(
                    path, "text", "contains a NUL or an invalid character", "含有非法字符"
                )
        elif isinstance(v, bool) or v is None:
            pass
        elif isinstance(v, int):
            if abs(v) > MAX_JSON_INT:
                return FieldError(
                    path,
                    "range",
                    "is an integer beyond ±2^53-1, which JSON readers elsewhere get wrong",
                    "整数超出±2^53-1，其他系统无法准确读取",
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                return FieldError(path, "range", "is not a finite number", "不是有限数值")
        elif isinstance(v, Mapping):
            for k, x in v.items():
                key = str(k)
                text += len(key)
                if not is_clean_text(key):
                    return FieldError(
                        path, "text", "has a key with an invalid character", "键名含有非法字符"
                    )
                stack.append((x, f"{path}.{key}", depth + 1))
        elif isinstance(v, list | tuple):
            stack.extend((x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v))
        else:
            return FieldError(path, "type", "is not a JSON value", "不是JSON值")
        if text > MAX_JSON_TEXT:
            return FieldError(
                field,
                "too_large",
                f"has more than {MAX_JSON_TEXT} characters of text",
                f"文本超过{MAX_JSON_TEXT}个字符",
            )
    return None


def check_json(value: Any, field: str) -> None:
    """Raise InvalidPayload naming the field if `value` breaks the bounds (`json_problem`)."""
    problem = json_problem(value, field)
    if problem is not None:
        raise InvalidPayload([problem])


CODE_CATALOG = Catalog(guards=GUARDS, effects={**EFFECTS, **CREATIONS})


def compile_procedure(data: Mapping[str, Any], catalog: Catalog = CODE_CATALOG) -> Procedure:
    return Procedure(load_procedure(data, catalog=catalog))
