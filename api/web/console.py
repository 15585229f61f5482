"""The handlers' console: sign in, the work queue, a case, the dashboard.

Every page reads the engine the JSON API uses; forms post back and re-render with the errors
beside their fields. A case another department may not see answers the 404 page, a form without
its CSRF token the 403 page; expected errors (RedressError) never become a 500.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api.deps import client_key
from api.routers.notices import pdf_response
from api.security import attachment_response
from api.web.common import (
    CSRF_REFUSED,
    back_to,
    check_csrf,
    end_session,
    engine_of,
    field_errors,
    gettext_of,
    lang_of,
    render,
    sign_in_staff,
    staff,
    to_login,
)
from api.web.common import (
    error_text as _msg,
)
from api.web.i18n import N_, bilingual, gettext_for, translations
from api.web.labels import (
    DATA_LABELS,
    EVENT_LABELS,
    KIND_LABELS,
    RECTIFICATION_LABELS,
    ROLE_LABELS,
    label,
)
from engine import access
from engine import schema as t
from engine.attachments import Attachments
from engine.queries import (
    SORTS,
    CaseFilter,
    case_notices,
    dashboard_rows,
    get_record,
    list_cases,
    notice,
)
from engine.service import Actor, Engine
from states.calendar import Period
from states.errors import (
    FieldError,
    Forbidden,
    InvalidPayload,
    NotFound,
    RedressError,
    StaleVersion,
)
from states.machine import Procedure
from states.records import SUBJECT_KINDS

router = APIRouter(include_in_schema=False)
Page = HTMLResponse | RedirectResponse
NAME = re.compile(r"^[a-z_]{1,60}$")
PAGE_SIZE = 50


# -- small helpers ------------------------------------------------------------------------------


def _tz(engine: Engine) -> ZoneInfo:
    return ZoneInfo(engine.settings.timezone)


def _when(engine: Engine) -> Any:
    tz = _tz(engine)

    def when(value: Any) -> str:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return str(value)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.strftime("%Y-%m-%d %H:%M")
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, date):
            return value.isoformat()
        return "" if value is None else str(value)

    return when


def _page(request: Request, template: str, actor: Actor | None, **ctx: Any) -> HTMLResponse:
    engine = engine_of(request)
    status = int(ctx.pop("status", 200))
    return render(
        request,
        template,
        status=status,
        actor=actor,
        when=_when(engine),
        depts=engine.department_names(),
        **ctx,
    )


def _error_page(
    request: Request, actor: Actor | None, status: int, title: str, message: str
) -> HTMLResponse:
    return _page(request, "console/error.html", actor, status=status, title=title, message=message)


def _not_found(request: Request, actor: Actor | None, exc: RedressError | None = None) -> Page:
    _ = gettext_of(request)
    msg = _msg(exc, lang_of(request)) if exc else _("no such page")
    return _error_page(request, actor, 404, _("Not found"), msg)


def _forbidden(request: Request, actor: Actor | None, exc: RedressError) -> Page:
    _ = gettext_of(request)
    return _error_page(request, actor, 403, _("Not allowed"), _msg(exc, lang_of(request)))


def _csrf_ok(request: Request, form: FormData) -> bool:
    sent = form.get("csrf")
    try:
        check_csrf(request, sent if isinstance(sent, str) else None)
    except Forbidden:
        return False
    return True


def _csrf_refused(request: Request, actor: Actor | None) -> Page:
    return _forbidden(request, actor, Forbidden(*bilingual(CSRF_REFUSED)))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _safe_next(value: str) -> str:
    if (
        (value == "/console" or value.startswith(("/console/", "/console?")))
        and "\\" not in value
        and "//" not in value
        and value.isprintable()
        and len(value) <= 500
    ):
        return value
    return "/console"


def _due_day(engine: Engine, due_at: datetime | None) -> date | None:
    """The last day of a deadline: `due_at` is the exclusive end (00:00 the next day)."""
    if due_at is None:
        return None
    return engine.calendar.local_date(due_at - timedelta(seconds=1))


# -- sign in / out ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    nxt = _safe_next(request.query_params.get("next", "/console"))
    return _page(request, "console/login.html", staff(request), errors={}, next=nxt)


@router.post("/login", response_class=HTMLResponse, response_model=None)
async def login(request: Request) -> Page:
    form = await request.form()
    nxt = _safe_next(_text(form, "next"))
    if not _csrf_ok(request, form):
        return _csrf_refused(request, None)
    token = _text(form, "token")
    lang = lang_of(request)
    if not token:
        _ = gettext_for(lang)
        errors = {"token": _("enter your token")}
        return _page(request, "console/login.html", None, errors=errors, next=nxt, status=400)
    engine = engine_of(request)
    try:
        actor, token_id = await run_in_threadpool(engine.authenticate_token, token[:500])
        if not actor.is_staff:
            raise Forbidden(*bilingual(N_("staff only")))
    except RedressError as exc:
        return _page(
            request,
            "console/login.html",
            None,
            errors={"token": _msg(exc, lang)},
            next=nxt,
            status=401,
        )
    await run_in_threadpool(sign_in_staff, request, actor, token_id)
    return RedirectResponse(nxt, status_code=303)


@router.post("/logout", response_class=HTMLResponse, response_model=None)
async def logout(request: Request) -> Page:
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, staff(request))
    await run_in_threadpool(end_session, request, "sid")
    return RedirectResponse("/console/login", status_code=303)


# -- the work queue -----------------------------------------------------------------------------

FILTERS = (
    "view",
    "status",
    "sort",
    "procedure",
    "state",
    "overdue",
    "due_before",
    "subject_identifier",
    "case_no",
    "q",
    "assignee",
)


def _department_users(engine: Engine, actor: Actor) -> list[dict[str, Any]]:
    u = t.users
    q = sa.select(u.c.id, u.c.name, u.c.role).where(u.c.active).order_by(u.c.name)
    if actor.role != "admin":
        q = q.where(u.c.department_id == (actor.department_id or ""))
    with engine.db.read() as conn:
        return [dict(r) for r in conn.execute(q).mappings().all()]


def _parse_filters(
    engine: Engine, raw: dict[str, str], lang: str
) -> tuple[CaseFilter, dict[str, str]]:
    errors: dict[str, str] = {}
    _ = gettext_for(lang)

    def bad(name: str, message: str) -> None:
        errors[name] = message

    procedure = raw.get("procedure") or None
    if procedure is not None and procedure not in engine.procedures.names():
        bad("procedure", _("no such procedure"))
        procedure = None
    state = raw.get("state") or None
    if state is not None and not re.fullmatch(r"[a-z_]{1,40}", state):
        bad("state", _("no such state"))
        state = None
    overdue: bool | None = None
    if raw.get("overdue") == "yes":
        overdue = True
    elif raw.get("overdue") == "no":
        overdue = False
    elif raw.get("overdue"):
        bad("overdue", _("not an option"))
    due_before: datetime | None = None
    if raw.get("due_before"):
        try:
            day = date.fromisoformat(raw["due_before"])
            due_before = engine.calendar.end_of_day(day)
        except ValueError:
            bad("due_before", _("a date like 2026-04-20"))
    assignee: int | None = None
    if raw.get("assignee"):
        text = raw["assignee"]
        if text.isdigit() and len(text) <= 15:
            assignee = int(text)
        else:
            bad("assignee", _("not a user"))
    lengths = {"subject_identifier": 40, "case_no": 32, "q": 100}
    texts: dict[str, str | None] = {}
    for name, limit in lengths.items():
        value = raw.get(name) or None
        if value is not None and (len(value) > limit or not value.isprintable()):
            bad(name, _("at most %(n)s characters") % {"n": limit})
            value = None
        texts[name] = value
    # The queue is of open cases unless asked otherwise (closed and withdrawn ones were mixed
    # in), sorted by the next deadline across all pages, not within one.
    status = raw.get("status") or "open"
    if status not in ("open", "closed", "all"):
        bad("status", _("not an option"))
        status = "open"
    sort = raw.get("sort") or "due"
    if sort not in SORTS:
        bad("sort", _("not a sort order"))
        sort = "due"
    view = raw.get("view") or ""
    if view not in ("", "approval"):
        bad("view", _("not a view"))
        view = ""
    f = CaseFilter(
        procedure=procedure,
        state=state,
        assignee=assignee,
        overdue=overdue,
        due_before=due_before,
        subject_identifier=texts["subject_identifier"],
        case_no=texts["case_no"],
        q=texts["q"],
        closed={"open": False, "closed": True, "all": None}[status],
        sort=sort,
    )
    return f, errors


def awaiting_approval(
    engine: Engine, actor: Actor
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Where a case waits for `actor`'s level: (procedure, state) pairs with a step only the
    levels above the handler may take (approve a decision, decide a review), and the pairs
    where an extension request waits for their approval."""
    pairs: set[tuple[str, str]] = set()
    extensions: set[tuple[str, str]] = set()
    below = {"handler", "applicant", "system"}
    for proc in engine.procedures.all():
        for tm in proc.spec.timers:
            if tm.extension is not None:
                for b in proc.branches.get(tm.extension.approve_trigger, ()):
                    if actor.role in b.roles or actor.role == "admin":
                        extensions |= {(proc.name, src) for src in b.sources}
        approvals = {tm.extension.approve_trigger for tm in proc.spec.timers if tm.extension}
        for trig in proc.spec.triggers:
            if trig.name in approvals or trig.guards or below & set(trig.roles):
                continue
            if actor.role in trig.roles or actor.role == "admin":
                pairs |= {(proc.name, src) for src in trig.sources}
    return tuple(sorted(pairs)), tuple(sorted(extensions))


def _queue_context(
    request: Request, engine: Engine, actor: Actor, raw: dict[str, str], cursor: str | None
) -> dict[str, Any]:
    lang = lang_of(request)
    _ = gettext_for(lang)
    f, errors = _parse_filters(engine, raw, lang)
    if raw.get("view") == "approval":
        pairs, extensions = awaiting_approval(engine, actor)
        f = dataclasses.replace(f, states_in=pairs, extension_in=extensions)
    items: list[dict[str, Any]] = []
    nxt: str | None = None
    if cursor is not None and (len(cursor) > 200 or not cursor.isprintable()):
        errors["cursor"] = _("not a valid page link")
        cursor = None
    try:
        items, nxt = list_cases(engine, actor, f, cursor, PAGE_SIZE)
    except RedressError as exc:
        errors.update(field_errors(exc, lang))
    today = engine.today()
    soon = engine.calendar.add(today, Period(1, "working_days")).day
    users = _department_users(engine, actor)
    names = {u["id"]: u["name"] for u in users}
    for item in items:
        day = _due_day(engine, item["next_due_at"])
        item["due_day"] = day
        item["due_soon"] = bool(day is not None and not item["overdue"] and day <= soon)
        item["row_class"] = (
            "overdue" if item["overdue"] else ("due-soon" if item["due_soon"] else "")
        )
        label = item["state_label"]
        item["state_text"] = label.get(lang, item["state"]) if isinstance(label, dict) else label
        item["assignee_name"] = names.get(item["assignee_id"], item["assignee_id"] or "")
    states: list[tuple[str, str]] = []
    seen: set[str] = set()
    titles: dict[str, str] = {}
    for proc in engine.procedures.all():
        if proc.spec.jurisdiction == "default":
            titles[proc.name] = proc.spec.title.get(lang)  # the latest version's, by order
        for s in proc.spec.states:
            if s.name not in seen:
                seen.add(s.name)
                states.append((s.name, s.label.get(lang)))
    for item in items:  # the procedure by its title (its latest version's)
        item["procedure_text"] = titles.get(item["procedure"], item["procedure"])
    procedures = [("", _("All")), *sorted(titles.items())]
    query = {k: v for k, v in raw.items() if v}
    return {
        "procedure_options": procedures,
        "items": items,
        "next_cursor": nxt,
        "filters": raw,
        "query": query,
        "errors": errors,
        "users": users,
        "states": states,
        "today": today,
    }


def _raw_filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip()[:200] for k in FILTERS}


@router.get("", response_class=HTMLResponse, response_model=None)
def queue(request: Request) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    engine = engine_of(request)
    raw = _raw_filters(request)
    ctx = _queue_context(request, engine, actor, raw, request.query_params.get("cursor"))
    # A search by a person's identifier or name: whose cases were looked for is logged.
    looked_for = raw["subject_identifier"] or raw["q"]
    if looked_for and not ctx["errors"]:
        access.seen(
            engine, actor, "search", looked_for, channel="console", client=client_key(request)
        )
    return _page(request, "console/queue.html", actor, **ctx)


def _assign_all(
    engine: Engine, actor: Actor, case_ids: list[int], assignee: int | None, lang: str
) -> list[dict[str, Any]]:
    _ = gettext_for(lang)
    results = []
    for cid in dict.fromkeys(case_ids):
        try:
            out = engine.assign(cid, assignee, actor)
            who = out["assignee"] or _("(nobody)")
            results.append({"case_id": cid, "ok": True, "text": who})
        except RedressError as exc:
            results.append({"case_id": cid, "ok": False, "text": _msg(exc, lang)})
    return results


@router.post("/assign", response_class=HTMLResponse, response_model=None)
async def bulk_assign(request: Request) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    raw = {k: _text(form, "f_" + k)[:200] for k in FILTERS}
    ids = [
        int(v)
        for v in form.getlist("case_id")
        if isinstance(v, str) and v.isdigit() and len(v) <= 15
    ]
    who = _text(form, "assignee_id")
    errors: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    _ = gettext_for(lang)
    if not ids:
        errors["case_id"] = _("tick at least one case")
    assignee: int | None = None
    if who == "none":
        assignee = None
    elif who.isdigit() and len(who) <= 15:
        assignee = int(who)
    else:
        errors["assignee_id"] = _("choose a handler")
    if not errors:
        results = await run_in_threadpool(_assign_all, engine, actor, ids, assignee, lang)
    ctx = await run_in_threadpool(_queue_context, request, engine, actor, raw, None)
    ctx["assign_errors"] = errors
    ctx["assign_results"] = results
    ctx["assignee_value"] = who
    return _page(request, "console/queue.html", actor, status=422 if errors else 200, **ctx)


# -- a case -------------------------------------------------------------------------------------


def _case_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < len(text) <= 15 and int(text) > 0 else None


def _diagram(proc: Procedure, state: str, lang: str) -> list[dict[str, Any]]:
    """The procedure's states in order, each with where it may go; the current one marked."""
    out = []
    for s in proc.spec.states:
        moves = []
        for trig in proc.spec.triggers:
            if s.name in trig.sources:
                dest = s.name if trig.dest == "=" else trig.dest
                label = trig.label.get(lang)
                dest_label = proc.states[dest].label.get(lang) if dest in proc.states else dest
                move = {
                    "trigger": trig.name,
                    "label": label,
                    "dest": dest,
                    "dest_label": dest_label,
                }
                if move not in moves:
                    moves.append(move)
        out.append(
            {
                "name": s.name,
                "label": s.label.get(lang),
                "current": s.name == state,
                "terminal": s.terminal,
                "initial": s.initial,
                "moves": moves,
            }
        )
    return out


def _case_context(engine: Engine, actor: Actor, cid: int, lang: str) -> dict[str, Any]:
    view = engine.case_view(cid, actor, lang)
    proc = engine.procedures.by_id(view["definition_id"])
    events = engine.events(cid, actor)
    for e in events:
        branch = proc.branches.get(e["trigger"])
        own = branch[0].label.get(lang) if branch else None
        e["label"] = own or label(EVENT_LABELS, e["trigger"], lang)
        e["from_label"] = proc.states[e["from"]].label.get(lang) if e["from"] in proc.states else ""
        e["to_label"] = proc.states[e["to"]].label.get(lang) if e["to"] in proc.states else ""
    record = get_record(engine, view["record"]["id"], actor) if view["record"] else None
    notices = case_notices(engine, cid, actor)
    attachments = Attachments(engine).list(cid)
    for d in view["deadlines"]:
        d["remaining_text"] = ""
        if d.get("period"):
            try:  # a paused deadline's days left, in the unit of its period
                unit = Period.parse(str(d["period"])).unit
                if d.get("remaining") is not None:
                    d["remaining_text"] = period_words(Period(int(d["remaining"]), unit), lang)
            except ValueError:
                pass
            d["period"] = _period_text(str(d["period"]), lang)
    for a in view["allowed_actions"]:
        a["label_text"] = a["label"].get(lang, a["trigger"])
        a["confirm"] = _needs_confirmation(proc, a["trigger"])
        for f in a["fields"]:
            lab = f["label"]
            f["label_text"] = lab.get(lang, f["name"]) if isinstance(lab, dict) else str(lab)
            f["required"] = f["name"] in a["required"]
    data = view["data"]
    extension = None
    if data.get("extension_requested"):
        extension = {"days": data.get("days"), "reason": data.get("reason")}
    users = {u["id"]: u["name"] for u in _department_users(engine, actor)}
    # A field's own label for the case's data and the events' payloads; the engine's keys too.
    # A deadline by its label too: the extensions approved count per deadline ({"verify": 1}).
    field_labels = {name: tm.label.get(lang) for name, tm in proc.timers.items()}
    field_labels |= {k: label(DATA_LABELS, k, lang) for k in DATA_LABELS}
    field_labels |= {name: spec.label.get(lang) for name, spec in proc.fields.items()}
    return {
        "case": view,
        "events": events,
        "record": record,
        "notices": notices,
        "field_labels": field_labels,
        "attachments": attachments,
        "diagram": _diagram(proc, view["state"], lang),
        "mermaid": proc.mermaid(lang, highlight=view["state"]),
        "extension": extension,
        "assignee_name": users.get(view["assignee_id"], view["assignee_id"]),
        "title_text": proc.spec.title.get(lang),
        # Each choice and department field's stored value in words, for the data and the
        # timeline (a page never shows a stored code).
        "choice_words": {
            name: (
                {d: n.get(lang, d) for d, n in engine.department_names().items()}
                if spec.type == "department"
                else {c: lab.get(lang) for c, lab in spec.choice_labels.items()}
            )
            for name, spec in proc.fields.items()
            if spec.type in ("choice", "department")
        }
        | {
            "kind": {k: label(KIND_LABELS, k, lang) for k in SUBJECT_KINDS},
            "role": {r: label(ROLE_LABELS, r, lang) for r in ROLE_LABELS},
            # A record's rectification (content.rectification.status).
            "status": {c: label(RECTIFICATION_LABELS, c, lang) for c in RECTIFICATION_LABELS},
        },
        # For a field naming a department (the lead department a complaint is referred to).
        "departments": sorted(
            (dept_id, names.get(lang, dept_id))
            for dept_id, names in engine.department_names().items()
        ),
    }


def _case_page(
    request: Request,
    actor: Actor,
    cid: int,
    *,
    status: int = 200,
    error: str | None = None,
    notice_text: str | None = None,
    action_errors: dict[str, dict[str, str]] | None = None,
    action_values: dict[str, dict[str, Any]] | None = None,
    upload_errors: dict[str, str] | None = None,
) -> Page:
    engine = engine_of(request)
    lang = lang_of(request)
    try:
        ctx = _case_context(engine, actor, cid, lang)
        # Logged before the page is rendered: what was shown is always in the log.
        record = ctx["record"]
        access.seen(
            engine,
            actor,
            "case",
            "",
            channel="console",
            client=client_key(request),
            case_id=cid,
            record_id=record["id"] if record else None,
        )
        ctx["access_log"] = access.entries(engine, actor, case_id=cid, limit=50)
    except NotFound as exc:
        return _not_found(request, actor, exc)
    except RedressError as exc:
        return _forbidden(request, actor, exc)
    return _page(
        request,
        "console/case.html",
        actor,
        status=status,
        error=error,
        notice=notice_text,
        action_errors=action_errors or {},
        action_values=action_values or {},
        upload_errors=upload_errors or {},
        **ctx,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def case_page(request: Request, case_id: str) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    cid = _case_id(case_id)
    if cid is None:
        return _not_found(request, actor)
    done = request.query_params.get("done", "")
    notice_text = None
    if done and NAME.fullmatch(done):
        lang = lang_of(request)
        _ = gettext_for(lang)
        try:
            view = engine_of(request).case_view(cid, actor, lang)
            proc = engine_of(request).procedures.by_id(view["definition_id"])
            if done in proc.branches:
                label = proc.branches[done][0].label.get(lang)
                notice_text = _("Done: %(step)s") % {"step": label}
            elif done == "upload":
                notice_text = _("Files uploaded")
        except RedressError:
            pass
    return _case_page(request, actor, cid, notice_text=notice_text)


@router.get("/cases/{case_id}/actions/{trigger}", response_model=None)
def action_again(request: Request, case_id: str, trigger: str) -> RedirectResponse:
    cid = _case_id(case_id)
    return back_to(request, "/console" if cid is None else f"/console/cases/{cid}")


@router.get("/cases/{case_id}/attachments", response_model=None)
def upload_again(request: Request, case_id: str) -> RedirectResponse:
    cid = _case_id(case_id)
    return back_to(request, "/console" if cid is None else f"/console/cases/{cid}")


@router.get("/assign", response_model=None)
def assign_again(request: Request) -> RedirectResponse:
    return back_to(request, "/console")


@router.get("/logout", response_model=None)
def logout_again(request: Request) -> RedirectResponse:
    return back_to(request, "/console/login")


def _payload(
    proc: Procedure, trigger: str, form: FormData, lang: str
) -> tuple[dict[str, Any], dict[str, Any], list[FieldError]]:
    """The command's fields from the form, typed; (payload, raw values, form errors)."""
    payload: dict[str, Any] = {}
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    branches = proc.branches.get(trigger)
    if not branches:
        return payload, values, errors
    b = branches[0]
    for name in (*b.required, *b.optional):
        spec = proc.fields[name]
        raw = form.get(name)
        text = raw if isinstance(raw, str) else ""
        values[name] = text
        if spec.type == "bool":
            payload[name] = text in ("on", "true", "1", "yes")
            values[name] = payload[name]
        elif spec.type == "int":
            text = text.strip()
            if not text:
                continue
            if re.fullmatch(r"-?\d{1,9}", text):
                payload[name] = int(text)
            else:
                whole = bilingual(N_("must be a whole number"))
                errors.append(FieldError(name, "type", *whole))
        elif spec.type == "list":
            items = [line.strip() for line in text.splitlines() if line.strip()]
            if items:
                payload[name] = items
        else:
            if text.strip():
                payload[name] = text
    return payload, values, errors


def _needs_confirmation(proc: Procedure, trigger: str) -> bool:
    """Staff ending a case on the applicant's behalf (a withdrawal taken by telephone or at
    the counter) tick a confirmation first: it closes the case for good."""
    branches = proc.branches.get(trigger) or []
    return any(
        "applicant" in b.roles and b.dest != "=" and proc.states[b.dest].terminal for b in branches
    )


def _act(
    engine: Engine, actor: Actor, cid: int, trigger: str, form: FormData, lang: str
) -> tuple[str, Any]:
    """Fire a trigger from a form: ("done", None) or (kind of failure, details)."""
    try:
        view = engine.case_view(cid, actor, lang)
    except NotFound as exc:
        return "not_found", exc
    proc = engine.procedures.by_id(view["definition_id"])
    payload, values, errors = _payload(proc, trigger, form, lang)
    if _needs_confirmation(proc, trigger) and form.get("confirm") != "yes":
        confirm = bilingual(N_("tick to confirm: this ends the case for good"))
        errors.append(FieldError("confirm", "required", *confirm))
    version_text = form.get("version")
    if not isinstance(version_text, str) or not version_text.isdigit() or len(version_text) > 12:
        reload = bilingual(N_("reload the case and retry"))
        errors.append(FieldError("_", "version", *reload))
    if errors:
        return "invalid", (InvalidPayload(errors), values)
    assert isinstance(version_text, str)
    try:
        engine.advance(cid, trigger, actor, payload, int(version_text))
    except StaleVersion as exc:
        return "stale", exc
    except InvalidPayload as exc:
        return "invalid", (exc, values)
    except NotFound as exc:
        return "not_found", exc
    except RedressError as exc:
        return "refused", (exc, values)
    return "done", None


@router.post("/cases/{case_id}/actions/{trigger}", response_class=HTMLResponse, response_model=None)
async def case_action(request: Request, case_id: str, trigger: str) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    cid = _case_id(case_id)
    if cid is None or not NAME.fullmatch(trigger):
        return _not_found(request, actor)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    kind, detail = await run_in_threadpool(_act, engine, actor, cid, trigger, form, lang)
    if kind == "done":
        return RedirectResponse(f"/console/cases/{cid}?done={trigger}", status_code=303)
    if kind == "not_found":
        return _not_found(request, actor, detail)
    _ = gettext_for(lang)
    if kind == "stale":
        changed = _(
            "The case changed meanwhile: this is its current state; check and submit again."
        )
        return await run_in_threadpool(
            lambda: _case_page(request, actor, cid, status=409, error=changed)
        )
    exc, values = detail
    errs = field_errors(exc, lang)
    general = errs.pop("_", None) if kind == "refused" or "_" in errs else None
    return await run_in_threadpool(
        lambda: _case_page(
            request,
            actor,
            cid,
            status=422 if kind == "invalid" else 409,
            error=general or _("Please correct the fields marked in red"),
            action_errors={trigger: errs},
            action_values={trigger: values},
        )
    )


@router.post("/cases/{case_id}/attachments", response_class=HTMLResponse, response_model=None)
async def upload(request: Request, case_id: str) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    cid = _case_id(case_id)
    if cid is None:
        return _not_found(request, actor)
    engine = engine_of(request)
    limit = engine.settings.max_upload_bytes
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    lang = lang_of(request)
    files: list[tuple[str, bytes]] = []
    for item in form.getlist("file"):
        if isinstance(item, UploadFile) and item.filename:
            files.append((item.filename, await item.read(limit + 1)))
    if not files:
        _ = gettext_for(lang)
        errs = {"file": _("choose a file")}
        return await run_in_threadpool(
            lambda: _case_page(request, actor, cid, status=422, upload_errors=errs)
        )
    try:
        await run_in_threadpool(Attachments(engine).add_many, cid, actor, files)
    except NotFound as exc:
        return _not_found(request, actor, exc)
    except RedressError as exc:
        errs = field_errors(exc, lang)
        if "_" in errs:
            errs["file"] = errs.pop("_")
        return await run_in_threadpool(
            lambda: _case_page(request, actor, cid, status=422, upload_errors=errs)
        )
    return RedirectResponse(f"/console/cases/{cid}?done=upload", status_code=303)


@router.get("/attachments/{attachment_id}", response_model=None)
def attachment(request: Request, attachment_id: str) -> Response:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    aid = _case_id(attachment_id)
    if aid is None:
        return _not_found(request, actor)
    try:
        meta, path = Attachments(engine_of(request)).get(aid, actor)
    except RedressError as exc:
        return _not_found(request, actor, exc)
    if not path.exists():
        return _not_found(request, actor)
    access.seen(
        engine_of(request),
        actor,
        "attachment",
        meta["filename"],
        channel="console",
        client=client_key(request),
        case_id=int(meta["case_id"]),
    )
    return attachment_response(meta, path)


@router.get("/notices/{notice_id}.pdf", response_model=None)
def notice_pdf(request: Request, notice_id: str) -> Response:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    nid = _case_id(notice_id)
    if nid is None:
        return _not_found(request, actor)
    try:
        row = notice(engine_of(request), nid, actor)
    except RedressError as exc:
        return _not_found(request, actor, exc)
    access.seen(
        engine_of(request),
        actor,
        "notice",
        row["subject"],
        channel="console",
        client=client_key(request),
        case_id=int(row["case_id"]),
    )
    return pdf_response(row)


# -- the dashboard ------------------------------------------------------------------------------


def _span(seconds: float, lang: str) -> str:
    _ = gettext_for(lang)
    if seconds < 3600:
        return _("%(n)s min") % {"n": round(seconds / 60)}
    if seconds < 86400 * 2:
        return _("%(n)s h") % {"n": round(seconds / 3600, 1)}
    return _("%(n)s days") % {"n": round(seconds / 86400, 1)}


def _dashboard(engine: Engine, actor: Actor, lang: str) -> dict[str, Any]:
    now = engine.now()
    open_rows, overdue_rows, timer_rows, closed_total, event_rows = dashboard_rows(
        engine, actor, now
    )
    names = engine.department_names()

    def dept(d: str) -> str:
        return names.get(d, {}).get(lang, d)

    # Open cases by department and state.
    by: dict[tuple[str, str, str], int] = {}
    labels: dict[tuple[str, str], str] = {}
    titles: dict[str, str] = {}
    for d, procedure, definition_id, state, n in open_rows:
        proc = engine.procedures.by_id(definition_id)
        titles[procedure] = proc.spec.title.get(lang)
        labels[(procedure, state)] = (
            proc.states[state].label.get(lang) if state in proc.states else state
        )
        key = (dept(d), procedure, state)
        by[key] = by.get(key, 0) + int(n)
    open_cases = [
        {
            "dept": k[0],
            "procedure": k[1],
            "title": titles[k[1]],
            "state": k[2],
            "label": labels[(k[1], k[2])],
            "n": n,
        }
        for k, n in sorted(by.items())
    ]
    overdue = [{"dept": dept(d), "n": int(n)} for d, n in overdue_rows]
    # Decided within the deadline: closed cases whose stopped deadlines all stopped in time.
    in_time: dict[int, bool] = {}
    for cid, due_at, stopped_at in timer_rows:
        in_time[cid] = in_time.get(cid, True) and stopped_at < due_at
    timed = len(in_time)
    on_time = sum(1 for ok in in_time.values() if ok)
    # Time per stage: from the event entering a state to the event leaving it.
    # By procedure and state: two procedures' states may share a name or a label (核查中).
    spans: dict[tuple[str, str], list[float]] = {}
    entered: dict[int, tuple[str, datetime]] = {}
    for cid, _seq, src, dst, at, procedure in event_rows:
        if src is None or cid not in entered:
            entered[cid] = (dst, at)
            continue
        if src == dst:
            continue
        state, since = entered[cid]
        if state == src:
            spans.setdefault((procedure, src), []).append((at - since).total_seconds())
        entered[cid] = (dst, at)
    state_labels: dict[tuple[str, str], str] = {}
    proc_titles: dict[str, str] = {}
    for proc in engine.procedures.all():
        proc_titles.setdefault(proc.name, proc.spec.title.get(lang))
        for s in proc.spec.states:
            state_labels.setdefault((proc.name, s.name), s.label.get(lang))
    stages = [
        {
            "state": key[1],
            "procedure": key[0],
            "title": proc_titles.get(key[0], key[0]),
            "label": state_labels.get(key, key[1]),
            "n": len(v),
            "median": _span(statistics.median(v), lang),
        }
        for key, v in sorted(spans.items())
    ]
    return {
        "open_cases": open_cases,
        "open_total": sum(x["n"] for x in open_cases),
        "overdue": overdue,
        "overdue_total": sum(x["n"] for x in overdue),
        "closed_total": int(closed_total),
        "timed": timed,
        "on_time": on_time,
        "on_time_share": (f"{on_time * 100 / timed:.0f}%" if timed else "—"),
        "stages": stages,
        "now": now,
    }


# -- procedures ---------------------------------------------------------------------------


def _period_text(text: str, lang: str) -> str:
    try:
        p = Period.parse(text)
    except ValueError:
        return text
    return period_words(p, lang)


def period_words(p: Period, lang: str) -> str:
    """A legal period in words ("15 working days", "15个工作日")."""
    tr = translations(lang)
    if p.unit == "working_days":
        text = tr.ngettext("%(num)s working day", "%(num)s working days", p.amount)
    elif p.unit == "calendar_days":
        text = tr.ngettext("%(num)s calendar day", "%(num)s calendar days", p.amount)
    else:
        text = tr.ngettext("%(num)s month", "%(num)s months", p.amount)
    return text % {"num": p.amount}


@router.get("/procedures", response_class=HTMLResponse, response_model=None)
def procedures_page(request: Request) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    engine, lang = engine_of(request), lang_of(request)
    rows = [
        {
            "name": s.name,
            "title": p.spec.title.get(lang),
            "version": s.version,
            "jurisdiction": s.jurisdiction,
            "effective_from": s.effective_from,
            "effective_until": s.effective_until,
            "sha": s.sha256[:12],
            "deployed_by": s.deployed_by,
            "deployed_at": s.deployed_at,
            "url": f"/console/procedures/{s.name}/{s.jurisdiction}/{s.version}",
        }
        for s, p in engine.procedures.latest()
    ]
    return _page(request, "console/procedures.html", actor, rows=rows)


@router.get(
    "/procedures/{name}/{jurisdiction}/{version}", response_class=HTMLResponse, response_model=None
)
def procedure_page(request: Request, name: str, jurisdiction: str, version: str) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    engine, lang = engine_of(request), lang_of(request)
    if not version.isdigit() or len(version) > 6:
        return _not_found(request, actor)
    try:
        stored = engine.procedures.find(name[:40], int(version), jurisdiction[:40])
    except RedressError as exc:
        return _not_found(request, actor, exc)
    proc = engine.procedures.by_id(stored.id)
    _, source = engine.procedures.document(stored.id)
    timers = [
        {
            "label": tm.label.get(lang),
            "period": _period_text(tm.period, lang),
            "basis": tm.basis.removeprefix("(default) "),
            "default": tm.basis.startswith("(default)"),
        }
        for tm in proc.spec.timers
    ]
    return _page(
        request,
        "console/procedure.html",
        actor,
        stored=stored,
        title=proc.spec.title.get(lang),
        legal_basis=proc.spec.legal_basis,
        diagram=_diagram(proc, "", lang),
        timers=timers,
        mermaid=proc.mermaid(lang),
        source=source,
    )


@router.get("/dashboard", response_class=HTMLResponse, response_model=None)
def dashboard(request: Request) -> Page:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    ctx = _dashboard(engine_of(request), actor, lang_of(request))
    return _page(request, "console/dashboard.html", actor, **ctx)
