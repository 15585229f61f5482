"""Procedure definitions as data: the schema, and the checks a definition must pass to load.

A procedure (objection, credit repair, ...) is a versioned, effective-dated piece of data:
states, triggers, timers, notices and the effect each trigger has on the credit record.
Nothing here does I/O; `load_procedure` turns a plain mapping into a validated, frozen
`ProcedureSpec`, or lists every problem found, each at its path inside the document
(`states/document.py` adds the line and column from the YAML text).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
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
# "department": the id of a department of the installation (checked by the engine, offered
# as a list on the console).
FIELD_TYPES = Literal["text", "choice", "int", "date", "list", "bool", "department"]
# Who a case is about (states.records.SUBJECT_KINDS, repeated: this module imports nothing).
ApplicantKind = Literal["enterprise", "government", "civil_servant", "person"]
APPLICANT_KINDS: tuple[ApplicantKind, ...] = ("enterprise", "government", "civil_servant", "person")


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
    # Each choice in words (a page or a letter never shows the stored code).
    choice_labels: Mapping[str, Label] = Field(default_factory=dict)
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


class OpensSpec(_Frozen):
    """A trigger that opens a case of another procedure about the same subject (a complaint
    found substantiated opens an identification); the two cases are linked both ways."""

    procedure: str
    # The field of this trigger naming the department that handles the new case (else this
    # case's department).
    department: str | None = None
    # The new case's intake fields, each taken from a field of this case (its data or the
    # trigger's fields): {target field: source field}.
    fields: Mapping[str, str] = Field(default_factory=dict)
    # The new case's applicant (kind, name, identifier), each from a field of this case.
    applicant: Mapping[Literal["kind", "name", "identifier"], str] = Field(default_factory=dict)


class TriggerSpec(_Frozen):
    """One transition. Several specs may share a name (branches chosen by their guards)."""

    name: str
    label: Label
    sources: tuple[str, ...]
    dest: str
    roles: tuple[str, ...]
    # Whose staff may fire it: the department handling the case, the unit that made the
    # original finding (谁认定、谁修复), or either.
    # "role": anyone holding one of the roles, in whatever department (a city-wide special
    # task group); they see every case of the procedure.
    scope: Literal["handling", "determining_unit", "any", "role"] = "handling"
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
    # Whether the applicant's status page lists it (an office's own bookkeeping, such as
    # asking for an extension, is not).
    applicant_visible: bool = True
    # A fresh access code for the applicant, carried by this trigger's notices (a party who
    # did not file the case learns how to follow it from the letter that tells them of it).
    issues_access_code: bool = False
    opens: OpensSpec | None = None


class ApplicantSpec(_Frozen):
    """Who files or is party to a case of this procedure."""

    label: Label = Label(zh="申请人", en="applicant")
    kinds: tuple[ApplicantKind, ...] = APPLICANT_KINDS
    # A complainant need not give an identifier; an applicant about their own record must.
    identifier: Literal["required", "optional"] = "required"
    # Whether a case may be filed without a name or contact details (anonymous complaints).
    anonymous: bool = False


class PortalSpec(_Frozen):
    """How the public files this procedure on the applicants' portal (absent: staff only)."""

    label: Label  # what the applicant files, e.g. 异议申诉
    action: Label  # the button that starts it on a record, e.g. 提出异议
    grounds_label: Label  # the form's label for the `grounds` field
    commitment_title: Label
    commitment_text: Label
    # Bool intake fields the applicant declares by ticking them (each must be ticked).
    declarations: tuple[str, ...] = ()


class ProcedureSpec(_Frozen):
    name: str
    version: int
    title: Label
    effective_from: date
    effective_until: date | None = None
    jurisdiction: str = Field(pattern="^[a-z][a-z0-9_-]{0,39}$")
    # Case numbers start with it, then the filing day (YY20260407…).
    case_prefix: str = Field(pattern="^[A-Z]{2,4}$")
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
    portal: PortalSpec | None = None
    # "required": a case is about a published credit record (objection, repair); "none": it
    # is about a subject without one (a complaint; an identification, whose decision creates
    # the record).
    record: Literal["required", "none"] = "required"
    applicant: ApplicantSpec = ApplicantSpec()

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


Path = tuple[str | int, ...]
LANGUAGES: tuple[str, ...] = ("zh", "en")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (a path inside the document, and once the
    document's text is known its line and column) and what, in both languages."""

    path: Path
    en: str
    zh: str
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "(document)"

    def message(self, lang: str = "en") -> str:
        return self.en if lang.startswith("en") else self.zh

    def at(self, line: int | None, column: int | None) -> Problem:
        return Problem(self.path, self.en, self.zh, line, column)


@dataclass(frozen=True)
class Catalog:
    """What a definition may name that lives in code or in the installation: guards and record
    effects (the delegates), the roles the installation declares, and the notice templates on
    disk with the languages each is written in (None: not checked, for pure unit tests)."""

    guards: Mapping[str, object]
    effects: Mapping[str, object]
    roles: tuple[str, ...] = ROLES
    templates: Mapping[str, frozenset[str]] | None = None


def procedure_json_schema() -> dict[str, Any]:
    """The schema of a procedure file, for editors (`redress procedures schema`). The names a
    file refers to (guards, roles, templates) are checked on validation, not by the schema."""
    schema = ProcedureSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "redress procedure definition"
    return schema


class DefinitionError(ValueError):
    """A procedure definition that cannot be loaded; it lists every problem found."""

    def __init__(self, name: str, version: object, problems: list[Problem]) -> None:
        self.name = name
        self.version = version
        self.problems = problems
        head = f"procedure {name!r} version {version}: {len(problems)} problem(s) in definition"
        super().__init__(head + "".join(f"\n  - {p.where}: {p.en}" for p in problems))


# Pydantic's messages are English; the zh-CN reading of the common kinds.
_PYDANTIC_ZH = {
    "missing": "缺少必填项",
    "extra_forbidden": "不允许的键（拼写错误？）",
    "string_type": "应为文字",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_type": "应为日期（YYYY-MM-DD）",
    "literal_error": "不是允许的取值",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "dict_type": "应为键值映射",
    "model_type": "应为键值映射",
    "greater_than_equal": "数值过小",
}


def validate_definition(data: Any, catalog: Catalog) -> tuple[ProcedureSpec | None, list[Problem]]:
    """Check a definition given as plain data; every problem is returned, none is raised."""
    if not isinstance(data, Mapping):
        return None, [Problem((), "a procedure definition is a mapping", "程序定义应为键值映射")]
    try:
        spec = ProcedureSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
            zh = _PYDANTIC_ZH.get(err["type"], "取值无效")
            problems.append(Problem(loc, err["msg"], f"{zh}（{err['msg']}）"))
        return None, problems
    return spec, _semantic_problems(spec, catalog)


def load_procedure(data: Mapping[str, Any], *, catalog: Catalog) -> ProcedureSpec:
    """Validate a definition given as plain data, or raise one DefinitionError listing all."""
    spec, problems = validate_definition(data, catalog)
    if problems or spec is None:
        raise DefinitionError(
            str(data.get("name", "<unnamed>")), data.get("version", "<no version>"), problems
        )
    return spec


class _Problems(list[Problem]):
    def add(self, path: Path, en: str, zh: str) -> None:
        self.append(Problem(path, en, zh))


def _period_problem(text: str) -> str | None:
    try:
        Period.parse(text)
    except ValueError as exc:
        return str(exc)
    return None


def _semantic_problems(spec: ProcedureSpec, catalog: Catalog) -> list[Problem]:
    out = _Problems()
    guards, effects, roles = catalog.guards, catalog.effects, catalog.roles
    states = {s.name for s in spec.states}
    timers = {t.name for t in spec.timers}
    notices = {n.name for n in spec.notices}
    fields = {f.name for f in spec.fields}
    trigger_names = {t.name for t in spec.triggers}

    for section, names in (
        ("states", [s.name for s in spec.states]),
        ("timers", [t.name for t in spec.timers]),
        ("notices", [n.name for n in spec.notices]),
        ("fields", [f.name for f in spec.fields]),
    ):
        seen_at: dict[str, int] = {}
        for i, n in enumerate(names):
            if n in seen_at:
                out.add(
                    (section, i, "name"),
                    f"{n!r} is defined more than once (first at {section}[{seen_at[n]}])",
                    f"“{n}”重复定义（首次见于 {section}[{seen_at[n]}]）",
                )
            seen_at.setdefault(n, i)
    initials = [s.name for s in spec.states if s.initial]
    if len(initials) != 1:
        out.add(
            ("states",),
            f"exactly one initial state is needed, found {initials or 'none'}",
            f"应有且只有一个初始状态，现有 {len(initials)} 个",
        )

    for i, fs in enumerate(spec.fields):
        if fs.type == "choice" and not fs.choices:
            out.add(("fields", i, "choices"), "a choice field without choices", "选择字段没有选项")
        for c in fs.choices:
            if c not in fs.choice_labels:
                out.add(
                    ("fields", i, "choice_labels"),
                    f"choice {c!r} of field {fs.name!r} has no label in choice_labels",
                    f"字段“{fs.name}”的选项“{c}”在 choice_labels 中没有中英文名称",
                )
        for c in fs.choice_labels:
            if c not in fs.choices:
                out.add(
                    ("fields", i, "choice_labels", c),
                    f"{c!r} is labelled but is not one of the choices",
                    f"“{c}”有名称但不是选项之一",
                )

    def field_refs(base: Path, key: str, names: tuple[str, ...]) -> None:
        for j, fname in enumerate(names):
            if fname not in fields:
                out.add(
                    (*base, key, j),
                    f"field {fname!r} has no definition under 'fields'",
                    f"字段“{fname}”未在 fields 中定义",
                )

    def guard_refs(base: Path, key: str, names: tuple[str, ...]) -> None:
        for j, g in enumerate(names):
            if g not in guards:
                out.add((*base, key, j), f"unknown guard {g!r}", f"未知的条件（guard）“{g}”")

    for i, t in enumerate(spec.triggers):
        at: Path = ("triggers", i)
        for j, src in enumerate(t.sources):
            if src not in states:
                out.add((*at, "sources", j), f"unknown state {src!r}", f"未知的状态“{src}”")
        if t.dest not in states and t.dest != "=":  # "=": stays where it is (reflexive)
            out.add((*at, "dest"), f"unknown state {t.dest!r}", f"未知的状态“{t.dest}”")
        if not t.roles:
            out.add((*at, "roles"), "no role may fire it", "没有可执行该操作的角色")
        for j, r in enumerate(t.roles):
            if r not in roles:
                out.add(
                    (*at, "roles", j),
                    f"unknown role {r!r} (declared: {', '.join(roles)})",
                    f"未声明的角色“{r}”（已声明：{'、'.join(roles)}）",
                )
        field_refs(at, "required", t.required)
        field_refs(at, "optional", t.optional)
        guard_refs(at, "guards", t.guards)
        guard_refs(at, "unless", t.unless)
        for j, n in enumerate(t.notices):
            if n not in notices:
                out.add((*at, "notices", j), f"unknown notice {n!r}", f"未知的通知“{n}”")
        if t.effect is not None and t.effect not in effects:
            out.add((*at, "effect"), f"unknown effect {t.effect!r}", f"未知的记录处理“{t.effect}”")
        if t.opens is not None:
            sources = {
                **{f"fields.{k}": v for k, v in t.opens.fields.items()},
                **{f"applicant.{k}": v for k, v in t.opens.applicant.items()},
                **({"department": t.opens.department} if t.opens.department else {}),
            }
            for key, src in sources.items():
                if src not in fields:
                    out.add(
                        (*at, "opens", *key.split(".")),
                        f"field {src!r} has no definition under 'fields'",
                        f"字段“{src}”未在 fields 中定义",
                    )
            if t.opens.department and t.opens.department not in t.required:
                out.add(
                    (*at, "opens", "department"),
                    f"the department field {t.opens.department!r} must be a required field "
                    "of the trigger",
                    f"部门字段“{t.opens.department}”须为该操作的必填字段",
                )

    # Branches of one trigger must agree on who fires them and with what, and must be
    # distinguishable by (source, destination) so the engine knows which one fired.
    seen: dict[tuple[str, str, str], int] = {}
    by_name: dict[str, TriggerSpec] = {}
    for i, t in enumerate(spec.triggers):
        first = by_name.setdefault(t.name, t)
        if (first.roles, first.required, first.scope) != (t.roles, t.required, t.scope):
            out.add(
                ("triggers", i),
                f"branches of {t.name!r} differ in roles, required fields or scope",
                f"操作“{t.name}”的各分支在角色、必填字段或范围上不一致",
            )
        for src in t.sources:
            k = (t.name, src, t.dest)
            seen[k] = seen.get(k, 0) + 1
            if seen[k] == 2:
                out.add(
                    ("triggers", i, "name"),
                    f"duplicate: a second branch of {t.name!r} from {src!r} to {t.dest!r}",
                    f"重复：操作“{t.name}”从“{src}”到“{t.dest}”的第二个分支",
                )

    for i, s in enumerate(spec.states):
        at = ("states", i)
        for kind, timer_names in (("starts", s.starts), ("stops", s.stops), ("pauses", s.pauses)):
            for j, n in enumerate(timer_names):
                if n not in timers:
                    out.add((*at, kind, j), f"unknown timer {n!r}", f"未知的期限“{n}”")
        exits = sorted({t.name for t in spec.triggers if s.name in t.sources})
        if s.terminal and exits:
            out.add(
                (*at, "terminal"),
                f"terminal state {s.name!r} has exits: {', '.join(exits)}",
                f"终结状态“{s.name}”仍有出口：{'、'.join(exits)}",
            )
        if not s.terminal and not exits:
            out.add(
                (*at, "name"),
                f"state {s.name!r} is not terminal but has no exit",
                f"状态“{s.name}”不是终结状态，却没有任何出口",
            )
        if s.terminal and (s.starts or s.pauses):
            out.add(
                (*at, "terminal"),
                f"terminal state {s.name!r} starts or pauses timers",
                f"终结状态“{s.name}”不能启动或暂停期限",
            )

    for i, tm in enumerate(spec.timers):
        at = ("timers", i)
        for key, text in (
            ("period", tm.period),
            ("reminder_before", tm.reminder_before),
            ("undelivered_after", tm.undelivered_after),
        ):
            if text is not None and (why := _period_problem(text)):
                out.add(
                    (*at, key),
                    f"period {text!r} does not parse: {why}",
                    f"期限“{text}”无法解析（应如“5 working days”“15 calendar days”“6 months”）",
                )
        starters = [s.name for s in spec.states if tm.name in s.starts]
        if not starters:
            out.add(
                (*at, "name"), f"no state starts timer {tm.name!r}", f"没有状态启动期限“{tm.name}”"
            )
        if tm.expiry_trigger is not None:
            branches = [t for t in spec.triggers if t.name == tm.expiry_trigger]
            if not branches:
                out.add(
                    (*at, "expiry_trigger"),
                    f"unknown trigger {tm.expiry_trigger!r}",
                    f"未知的操作“{tm.expiry_trigger}”",
                )
            elif not any("system" in t.roles for t in branches):
                out.add(
                    (*at, "expiry_trigger"),
                    f"trigger {tm.expiry_trigger!r} lacks role 'system': the clock cannot fire it",
                    f"操作“{tm.expiry_trigger}”没有 system 角色，期限届满时系统无法执行",
                )
            elif tm.scope == "state":
                # The timer only runs in the states that start it: the trigger must leave each.
                allowed = {src for t in branches for src in t.sources}
                for st in starters:
                    if st not in allowed:
                        out.add(
                            (*at, "expiry_trigger"),
                            f"trigger {tm.expiry_trigger!r} is not allowed in state {st!r}, "
                            "where this timer runs",
                            f"期限在状态“{st}”中计算，但操作“{tm.expiry_trigger}”在该状态下不可执行",
                        )
        if tm.expiry_trigger is None and not tm.escalation:
            out.add(
                at,
                "neither an expiry trigger nor an escalation chain",
                "既没有届满操作（expiry_trigger），也没有督办链（escalation）",
            )
        for j, step in enumerate(tm.escalation):
            if step.notify not in RECIPIENTS:
                out.add(
                    (*at, "escalation", j, "notify"),
                    f"unknown recipient {step.notify!r} (known: {', '.join(RECIPIENTS)})",
                    f"未知的接收人“{step.notify}”",
                )
            if why := _period_problem(step.after):
                out.add(
                    (*at, "escalation", j, "after"),
                    f"period {step.after!r} does not parse: {why}",
                    f"期限“{step.after}”无法解析",
                )
        if tm.extension is not None:
            ext = tm.extension
            for key, trig in (
                ("request_trigger", ext.request_trigger),
                ("approve_trigger", ext.approve_trigger),
            ):
                if trig not in trigger_names:
                    out.add(
                        (*at, "extension", key), f"unknown trigger {trig!r}", f"未知的操作“{trig}”"
                    )
            if why := _period_problem(ext.max_total):
                out.add(
                    (*at, "extension", "max_total"),
                    f"period {ext.max_total!r} does not parse: {why}",
                    f"期限“{ext.max_total}”无法解析",
                )
            if ext.within is not None and ext.within not in timers:
                out.add(
                    (*at, "extension", "within"),
                    f"unknown timer {ext.within!r}",
                    f"未知的期限“{ext.within}”",
                )
        if tm.when is not None and tm.when not in guards:
            out.add((*at, "when"), f"unknown guard {tm.when!r}", f"未知的条件（guard）“{tm.when}”")
        if tm.starts_on_delivery is not None and tm.starts_on_delivery not in notices:
            out.add(
                (*at, "starts_on_delivery"),
                f"unknown notice {tm.starts_on_delivery!r}",
                f"未知的通知“{tm.starts_on_delivery}”",
            )
        if tm.delivery_trigger is not None and tm.delivery_trigger not in trigger_names:
            out.add(
                (*at, "delivery_trigger"),
                f"unknown trigger {tm.delivery_trigger!r}",
                f"未知的操作“{tm.delivery_trigger}”",
            )
        if tm.starts_on_delivery is not None and tm.scope == "sync":
            out.add(
                (*at, "starts_on_delivery"),
                "a sync timer cannot wait for a notice's delivery",
                "同步期限不能等待通知送达后起算",
            )

    for i, ns in enumerate(spec.notices):
        if ns.recipient not in RECIPIENTS:
            out.add(
                ("notices", i, "recipient"),
                f"unknown recipient {ns.recipient!r} (known: {', '.join(RECIPIENTS)})",
                f"未知的接收人“{ns.recipient}”",
            )
        if catalog.templates is not None:
            have = catalog.templates.get(ns.template, frozenset())
            if not have:
                out.add(
                    ("notices", i, "template"),
                    f"unknown notice template {ns.template!r}",
                    f"未知的通知模板“{ns.template}”",
                )
            else:
                for lang in LANGUAGES:
                    if lang not in have:
                        out.add(
                            ("notices", i, "template"),
                            f"notice template {ns.template!r} has no {lang} version",
                            f"通知模板“{ns.template}”缺少 {lang} 语言版本",
                        )
    for j, notice_name in enumerate(spec.intake_notices):
        if notice_name not in notices:
            out.add(
                ("intake_notices", j),
                f"unknown notice {notice_name!r}",
                f"未知的通知“{notice_name}”",
            )
    if spec.portal is not None:
        for j, name in enumerate(spec.portal.declarations):
            declared = next((f for f in spec.fields if f.name == name), None)
            if name not in spec.intake_required or declared is None or declared.type != "bool":
                out.add(
                    ("portal", "declarations", j),
                    f"{name!r} is not a required yes/no field of the application",
                    f"“{name}”不是申请的必填是否字段",
                )
        if "grounds" not in (*spec.intake_required, *spec.intake_optional):
            out.add(
                ("portal",),
                "a portal application needs a 'grounds' field",
                "门户申请须有 grounds 字段",
            )
    field_refs((), "intake_required", spec.intake_required)
    field_refs((), "intake_optional", spec.intake_optional)
    guard_refs((), "intake_guards", spec.intake_guards)

    if len(initials) == 1:
        reach = _reachable(spec, initials[0])
        for i, state in enumerate(spec.states):
            if state.name not in reach:
                out.add(
                    ("states", i, "name"),
                    f"state {state.name!r} is unreachable from {initials[0]!r}",
                    f"状态“{state.name}”从初始状态“{initials[0]}”无法到达",
                )
    return list(out)


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
