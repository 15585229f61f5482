"""Console pages for running the office: departments, users and their tokens (administrators),
and credit records (the credit office publishes, reads a subject's records, changes them).

The pages write through the same engine functions as the CLI and the admin API; a refused form
re-renders with the error beside its field and changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.deps import client_key
from api.web.common import back_to, engine_of, gettext_of, in_language, lang_of, staff, to_login
from api.web.common import error_text as _msg
from api.web.console import (
    Page,
    _csrf_ok,
    _csrf_refused,
    _forbidden,
    _not_found,
    _page,
    _text,
)
from api.web.i18n import N_, bilingual, gettext_for
from api.web.labels import (
    DATA_LABELS,
    JURISDICTION_LABELS,
    KIND_LABELS,
    RECTIFICATION_LABELS,
    ROLE_LABELS,
    SEVERITY_LABELS,
    label,
)
from engine import access, setup
from engine.core import Actor
from engine.queries import find_records, get_record
from engine.service import Engine
from engine.staff import IssuedToken, roles_of
from states.errors import FieldError, Forbidden, InvalidPayload, RedressError
from states.records import SEVERITIES, SOURCE_CATEGORIES, SOURCE_LABELS, SUBJECT_KINDS

router = APIRouter(include_in_schema=False)

RECORD_ACTIONS = (
    "mark_disputed",
    "unmark_disputed",
    "correct",
    "revoke",
    "stop_publication",
    "republish",
)
ACTION_WORDS = {
    "mark_disputed": N_("mark as disputed"),
    "unmark_disputed": N_("remove the dispute mark"),
    "correct": N_("correct the content"),
    "revoke": N_("revoke the record"),
    "stop_publication": N_("stop publication"),
    "republish": N_("publish again"),
}


def _errors(exc: RedressError, lang: str, default: str) -> dict[str, str]:
    """Field → message of a refused form (the whole message under `default` otherwise)."""
    if isinstance(exc, InvalidPayload):
        out: dict[str, str] = {}
        for e in exc.errors:
            name = e.field.split(".")[-1].split("[")[0] or default
            out.setdefault(name, in_language(lang, e.message, e.message_zh))
        return out
    return {default: _msg(exc, lang)}


def _admin(request: Request) -> tuple[Actor | None, Page | None]:
    actor = staff(request)
    if actor is None:
        return None, to_login(request)
    if actor.role != "admin":
        exc = Forbidden(*bilingual(N_("administrators only")))
        return actor, _forbidden(request, actor, exc)
    return actor, None


def _choices(engine: Engine, lang: str) -> dict[str, Any]:
    names = engine.department_names()
    return {
        "roles": [(r, label(ROLE_LABELS, r, lang)) for r in roles_of(engine)],
        "dept_choices": sorted((d, n.get(lang, d)) for d, n in names.items()),
        "jurisdictions": [(j, label(JURISDICTION_LABELS, j, lang)) for j in JURISDICTION_LABELS],
    }


# -- administration: departments and users ------------------------------------------------------


def _admin_page(request: Request, actor: Actor, status: int = 200, **ctx: Any) -> HTMLResponse:
    engine = engine_of(request)
    lang = lang_of(request)
    return _page(
        request,
        "console/admin.html",
        actor,
        status=status,
        departments=setup.departments(engine),
        users=setup.users(engine),
        dept_errors=ctx.pop("dept_errors", {}),
        user_errors=ctx.pop("user_errors", {}),
        values=ctx.pop("values", {}),
        **_choices(engine, lang),
        **ctx,
    )


@router.get("/admin", response_class=HTMLResponse, response_model=None)
def admin_home(request: Request) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    return _admin_page(request, actor)


@router.post("/admin/departments", response_class=HTMLResponse, response_model=None)
async def add_department(request: Request) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    values = {
        k: _text(form, k)
        for k in ("id", "name_zh", "name_en", "kind", "jurisdiction", "email", "parent")
    }
    data = {k: (v or None) for k, v in values.items()}
    data["kind"] = values["kind"] or "unit"
    data["jurisdiction"] = values["jurisdiction"] or "default"
    engine = engine_of(request)
    try:
        await run_in_threadpool(setup.create_department, engine, data)
    except RedressError as exc:
        return _admin_page(
            request,
            actor,
            status=422 if isinstance(exc, InvalidPayload) else 409,
            dept_errors=_errors(exc, lang_of(request), "id"),
            values=values,
        )
    return RedirectResponse(f"/console/admin?done=department#dept-{values['id']}", 303)


@router.post("/admin/users", response_class=HTMLResponse, response_model=None)
async def add_user(request: Request) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    values = {k: _text(form, k) for k in ("name", "role", "department", "email")}
    engine = engine_of(request)
    lang = lang_of(request)

    def create() -> tuple[int, IssuedToken]:
        body = setup.UserIn.model_validate({k: v or None for k, v in values.items()})
        return engine.create_user(body.name, body.role, body.department, body.email, by=actor.name)

    try:
        _, issued = await run_in_threadpool(create)
    except RedressError as exc:
        return _admin_page(
            request,
            actor,
            status=422 if isinstance(exc, InvalidPayload) else 409,
            user_errors=_errors(exc, lang, "name"),
            values=values,
        )
    except ValidationError as exc:  # the form's own shape (a user name with a space)
        return _admin_page(
            request, actor, status=422, user_errors=_pydantic_errors(exc, lang), values=values
        )
    return _user_page(request, actor, values["name"], issued=issued, status=201)


def _pydantic_errors(exc: ValidationError, lang: str) -> dict[str, str]:
    _ = gettext_for(lang)
    out: dict[str, str] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else "name"
        # Pydantic's own words are English only: the field's label says what it takes.
        out.setdefault(name, _("not in the form asked for"))
    return out


def _user_page(
    request: Request,
    actor: Actor,
    name: str,
    *,
    issued: IssuedToken | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Page:
    engine = engine_of(request)
    lang = lang_of(request)
    user = next((u for u in setup.users(engine) if u["name"] == name), None)
    if user is None:
        return _not_found(request, actor)
    return _page(
        request,
        "console/admin_user.html",
        actor,
        status=status,
        user=user,
        tokens=engine.tokens(name),
        issued=issued,
        errors=errors or {},
        notice=done,
        default_days=engine.settings.token_days,
        **_choices(engine, lang),
    )


@router.get("/admin/users/{name}", response_class=HTMLResponse, response_model=None)
def user_page(request: Request, name: str) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    return _user_page(request, actor, name)


@router.post("/admin/users/{name}", response_class=HTMLResponse, response_model=None)
async def change_user(request: Request, name: str) -> Page:
    """One form per change: role/department/email, disable/enable, a new token, rotate or
    revoke a token (the `do` field says which)."""
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    do = _text(form, "do")
    try:
        issued = await run_in_threadpool(_apply_user_form, engine, actor, name, do, form)
    except RedressError as exc:
        return _user_page(request, actor, name, status=422, errors=_errors(exc, lang, do or "do"))
    if issued is not None:
        return _user_page(request, actor, name, issued=issued, status=201)
    done = gettext_for(lang)(USER_CHANGES.get(do, SAVED))
    return _user_page(request, actor, name, done=done)


SAVED = N_("Saved")
# What the user page says after each change (a new token is shown instead).
USER_CHANGES = {
    "change": SAVED,
    "disable": N_("Disabled: their tokens and sessions stop now"),
    "enable": N_("Enabled"),
    "revoke": N_("Token revoked; it stops working now"),
}


def _days(form: FormData) -> int | None:
    text = _text(form, "days")
    if not text:
        return None
    if not text.isdigit() or len(text) > 5:
        raise InvalidPayload([FieldError("days", "type", *bilingual(N_("a number of days")))])
    return int(text)


def _token_id(form: FormData) -> int:
    text = _text(form, "token_id")
    if not text.isdigit() or len(text) > 15:
        raise InvalidPayload([FieldError("token_id", "type", *bilingual(N_("no such token")))])
    return int(text)


def _apply_user_form(
    engine: Engine, actor: Actor, name: str, do: str, form: FormData
) -> IssuedToken | None:
    if do == "change":
        setup.set_user(
            engine,
            name,
            role=_text(form, "role") or None,
            department=_text(form, "department") or None,
            email=_text(form, "email"),
        )
    elif do in ("disable", "enable"):
        if do == "disable" and name == actor.name:
            raise Forbidden(
                *bilingual(N_("you cannot disable your own account (ask another administrator)"))
            )
        engine.set_user_active(name, do == "enable")
    elif do == "add_token":
        return engine.add_token(name, _text(form, "label"), _days(form), by=actor.name)
    elif do == "rotate":
        return engine.rotate_token(_token_id(form), _days(form), by=actor.name)
    elif do == "revoke":
        engine.revoke_token(_token_id(form), by=actor.name)
    else:
        raise InvalidPayload([FieldError("do", "choice", *bilingual(N_("unknown change")))])
    return None


@router.get("/admin/departments/{dept_id}", response_class=HTMLResponse, response_model=None)
def department_page(request: Request, dept_id: str) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    return _department_page(request, actor, dept_id)


def _department_page(
    request: Request,
    actor: Actor,
    dept_id: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Page:
    engine = engine_of(request)
    dept = next((d for d in setup.departments(engine) if d["id"] == dept_id), None)
    if dept is None:
        return _not_found(request, actor)
    return _page(
        request,
        "console/admin_department.html",
        actor,
        status=status,
        dept=dept,
        errors=errors or {},
        notice=done,
        members=[u for u in setup.users(engine) if u["department"] == dept_id],
        **_choices(engine, lang_of(request)),
    )


@router.post("/admin/departments/{dept_id}", response_class=HTMLResponse, response_model=None)
async def change_department(request: Request, dept_id: str) -> Page:
    actor, refused = _admin(request)
    if refused or actor is None:
        return refused or to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    dept = next((d for d in setup.departments(engine) if d["id"] == dept_id), None)
    if dept is None:
        return _not_found(request, actor)
    changes = {k: _text(form, k) for k in ("name_zh", "name_en", "email", "parent")}
    changes = {k: v for k, v in changes.items() if v != (dept[k] or "")}
    jurisdiction = _text(form, "jurisdiction")

    def apply() -> None:
        if changes:
            setup.set_department(engine, dept_id, **changes)
        if jurisdiction and jurisdiction != dept["jurisdiction"]:
            engine.set_jurisdiction(dept_id, jurisdiction)

    try:
        await run_in_threadpool(apply)
    except RedressError as exc:
        return _department_page(
            request, actor, dept_id, status=422, errors=_errors(exc, lang, "parent")
        )
    return _department_page(request, actor, dept_id, done=gettext_for(lang)(SAVED))


@router.get("/admin/departments", response_model=None)
@router.get("/admin/users", response_model=None)
def admin_again(request: Request) -> RedirectResponse:
    """A form posted back re-renders under its action's address: a GET there (the language
    switch) goes back to the page."""
    return back_to(request, "/console/admin")


@router.get("/records/{record_id}/changes", response_model=None)
def record_again(request: Request, record_id: str) -> RedirectResponse:
    target = f"/console/records/{record_id}" if record_id.isdigit() else "/console/records"
    return back_to(request, target)


# -- credit records -----------------------------------------------------------------------------


def _records_actor(request: Request) -> tuple[Actor | None, Page | None]:
    actor = staff(request)
    if actor is None:
        return None, to_login(request)
    return actor, None


def _may_publish(actor: Actor) -> bool:
    return actor.is_office or actor.role == "admin"


def _record_choices(engine: Engine, lang: str) -> dict[str, Any]:
    names = engine.department_names()
    return {
        "kinds": [(k, label(KIND_LABELS, k, lang)) for k in SUBJECT_KINDS],
        "sources": [(s, label(SOURCE_LABELS, s, lang)) for s in SOURCE_CATEGORIES],
        "severities": [(s, label(SEVERITY_LABELS, s, lang)) for s in SEVERITIES],
        "units": sorted((d, n.get(lang, d)) for d, n in names.items()),
        "actions": [(a, gettext_for(lang)(ACTION_WORDS[a])) for a in RECORD_ACTIONS],
    }


def _records_page(request: Request, actor: Actor, status: int = 200, **ctx: Any) -> HTMLResponse:
    engine = engine_of(request)
    lang = lang_of(request)
    return _page(
        request,
        "console/records.html",
        actor,
        status=status,
        may_publish=_may_publish(actor),
        errors=ctx.pop("errors", {}),
        values=ctx.pop("values", {}),
        results=ctx.pop("results", None),
        searched=ctx.pop("searched", ""),
        **_record_choices(engine, lang),
        **ctx,
    )


@router.get("/records", response_class=HTMLResponse, response_model=None)
def records(request: Request) -> Page:
    """A subject's records by identifier (a search by identifier: logged)."""
    actor, refused = _records_actor(request)
    if refused or actor is None:
        return refused or to_login(request)
    ident = request.query_params.get("subject_identifier", "").strip().upper()[:40]
    if not ident:
        return _records_page(request, actor)
    engine = engine_of(request)
    found = find_records(engine, actor, ident, 100)
    access.seen(engine, actor, "search", ident, channel="console", client=client_key(request))
    return _records_page(request, actor, results=found, searched=ident)


def _content(form: FormData) -> dict[str, Any]:
    """A record's content from its form: a summary and measures, one per line."""
    content: dict[str, Any] = {}
    if summary := _text(form, "summary"):
        content["summary"] = summary
    measures = [m.strip() for m in _text(form, "measures").splitlines() if m.strip()]
    if measures:
        content["measures"] = measures
    if basis := _text(form, "basis"):
        content["basis"] = basis
    return content


def _date(form: FormData, name: str) -> date:
    try:
        return date.fromisoformat(_text(form, name))
    except ValueError:
        words = bilingual(N_("a date (YYYY-MM-DD)"))
        raise InvalidPayload([FieldError(name, "date", *words)]) from None


@router.post("/records", response_class=HTMLResponse, response_model=None)
async def create_record(request: Request) -> Page:
    actor, refused = _records_actor(request)
    if refused or actor is None:
        return refused or to_login(request)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    keys = (
        "subject_kind",
        "subject_name",
        "subject_identifier",
        "source_category",
        "severity",
        "determining_unit",
        "decision_date",
        "published_from",
        "summary",
        "measures",
        "basis",
    )
    values = {k: _text(form, k) for k in keys}

    def publish() -> int:
        problems: list[FieldError] = []
        if not values["subject_name"]:
            problems.append(FieldError("subject_name", "required", *bilingual(N_("is required"))))
        dates: dict[str, date] = {}
        for name in ("decision_date", "published_from"):
            try:
                dates[name] = _date(form, name)
            except InvalidPayload as exc:
                problems += exc.errors
        if problems:
            raise InvalidPayload(problems)
        return engine.create_record(
            actor=actor,
            subject_kind=values["subject_kind"],
            subject_name=values["subject_name"],
            subject_identifier=values["subject_identifier"].upper(),
            source_category=values["source_category"],
            severity=values["severity"],
            determining_unit=values["determining_unit"],
            content=_content(form),
            **dates,
        )

    try:
        rid = await run_in_threadpool(publish)
    except RedressError as exc:
        return _records_page(
            request,
            actor,
            status=403 if isinstance(exc, Forbidden) else 422,
            errors=_errors(exc, lang, "subject_identifier"),
            values=values,
        )
    return RedirectResponse(f"/console/records/{rid}?done=created", 303)


def _record_page(
    request: Request,
    actor: Actor,
    record_id: int,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
) -> Page:
    engine = engine_of(request)
    lang = lang_of(request)
    record = get_record(engine, record_id, actor)
    if record is None:
        return _not_found(request, actor)
    access.seen(
        engine,
        actor,
        "record",
        "",
        channel="console",
        client=client_key(request),
        record_id=record_id,
    )
    return _page(
        request,
        "console/record.html",
        actor,
        status=status,
        record=record,
        may_publish=_may_publish(actor),
        errors=errors or {},
        values=values or {},
        notice=done,
        field_labels={k: label(DATA_LABELS, k, lang) for k in DATA_LABELS},
        choice_words={
            "status": {c: label(RECTIFICATION_LABELS, c, lang) for c in RECTIFICATION_LABELS}
        },
        **_record_choices(engine, lang),
    )


@router.get("/records/{record_id}", response_class=HTMLResponse, response_model=None)
def record_page(request: Request, record_id: str) -> Page:
    actor, refused = _records_actor(request)
    if refused or actor is None:
        return refused or to_login(request)
    if not record_id.isdigit() or len(record_id) > 15:
        return _not_found(request, actor)
    _ = gettext_of(request)
    done = None
    if request.query_params.get("done") == "created":
        done = _("Record published")
    elif (action := request.query_params.get("done", "")) in ACTION_WORDS:
        done = _("Done: %(step)s") % {"step": _(ACTION_WORDS[action])}
    return _record_page(request, actor, int(record_id), done=done)


@router.post("/records/{record_id}/changes", response_class=HTMLResponse, response_model=None)
async def change_record(request: Request, record_id: str) -> Page:
    actor, refused = _records_actor(request)
    if refused or actor is None:
        return refused or to_login(request)
    if not record_id.isdigit() or len(record_id) > 15:
        return _not_found(request, actor)
    rid = int(record_id)
    form = await request.form()
    if not _csrf_ok(request, form):
        return _csrf_refused(request, actor)
    engine = engine_of(request)
    lang = lang_of(request)
    action = _text(form, "action")
    values = {k: _text(form, k) for k in ("action", "reason", "summary", "measures")}
    try:
        await run_in_threadpool(
            lambda: engine.change_record(
                rid,
                actor=actor,
                action=action,
                reason=_text(form, "reason"),
                content=_content(form) if action == "correct" else None,
            )
        )
    except RedressError as exc:
        return _record_page(
            request,
            actor,
            rid,
            status=403 if isinstance(exc, Forbidden) else 422,
            errors=_errors(exc, lang, "action"),
            values=values,
        )
    return RedirectResponse(f"/console/records/{rid}?done={action}", 303)
