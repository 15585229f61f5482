"""The applicants' portal: file an objection or a repair application, follow the case.

No account: a case is filed against a published record, and followed with its case number and
the access code given once at filing. A successful sign-in keeps the case id in the (signed)
session; every later page of that case checks it. Bad input re-renders the form with the
errors beside their fields and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api.routers.notices import pdf_response
from api.web.common import (
    MAX_FILES,
    applicant_session,
    back_to,
    check_csrf,
    end_session,
    engine_of,
    field_errors,
    gettext_of,
    in_language,
    lang_of,
    render,
    sign_in_applicant,
)
from api.web.common import (
    error_text as _msg,
)
from api.web.i18n import N_, bilingual, gettext_for
from api.web.labels import KIND_LABELS, SEVERITY_LABELS, label
from engine.applicants import (
    CASE_NO,
    CODE_REQUESTED,
    AccessGuard,
    Outlook,
    TooManyAttempts,
    authenticate,
    check_code_request,
    filing_outlook,
    request_new_code,
    status_view,
)
from engine.attachments import Attachments
from engine.queries import find_records, get_record, notice
from engine.service import Actor, Engine
from states.errors import Forbidden, Ineligible, InvalidPayload, NotFound, RedressError
from states.identifiers import IdentifierError, validate_subject_identifier
from states.machine import Procedure
from states.records import SOURCE_LABELS, STATUS_LABELS, SUBJECT_KINDS
from states.spec import PortalSpec

router = APIRouter(include_in_schema=False)
PUBLIC = Actor(name="applicant", role="applicant")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _uploads(form: FormData, name: str, limit: int) -> list[tuple[str, bytes]]:
    """The files sent under `name` (a file input left empty sends one nameless, empty part)."""
    out = []
    for part in form.getlist(name):
        if isinstance(part, UploadFile) and (part.filename or part.size):
            out.append((part.filename or "", await part.read(limit + 1)))
    return out


def _record_rows(records: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    return [
        {
            **r,
            "kind_label": label(KIND_LABELS, r["subject_kind"], lang),
            "source_label": label(SOURCE_LABELS, r["source_category"], lang),
            "severity_label": label(SEVERITY_LABELS, r["severity"], lang),
            "status_label": label(STATUS_LABELS, r["status"], lang),
        }
        for r in records
    ]


def _on_portal(engine: Engine) -> list[tuple[Procedure, PortalSpec]]:
    return [
        (p, p.spec.portal)
        for p in engine.procedures.on_portal(engine.today())
        if p.spec.portal is not None
    ]


def _outlook_row(outlook: Outlook, portal: PortalSpec, lang: str) -> dict[str, Any]:
    return {
        "procedure": outlook.procedure,
        "label": portal.label.get(lang),
        "action": portal.action.get(lang),
        "possible": outlook.possible,
        "reasons": list(outlook.reasons),
        "earliest": outlook.earliest.isoformat() if outlook.earliest else None,
        "case_open": outlook.case_open,
    }


def _search(engine: Engine, subject: str, lang: str) -> list[dict[str, Any]]:
    """The published records of a subject, each with what can be filed on it now and, if
    not, why (the rules the filing itself meets: engine.applicants.filing_outlook)."""
    rows = _record_rows(find_records(engine, PUBLIC, subject, published_only=True), lang)
    forms = [(p.name, portal) for p, portal in _on_portal(engine) if p.spec.record != "none"]
    judged = filing_outlook(engine, [int(r["id"]) for r in rows], [n for n, _ in forms], lang)
    for r in rows:
        mine = judged.get(int(r["id"]), {})
        r["outlook"] = [_outlook_row(mine[n], portal, lang) for n, portal in forms if n in mine]
    return rows


def _home(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("find_errors", {})
    context.setdefault("follow_errors", {})
    context.setdefault("follow", {})
    context.setdefault("subject", "")
    engine, lang = engine_of(request), lang_of(request)
    on_portal = _on_portal(engine)
    # Filed against a published record (from the search results), or on their own.
    context["portal_actions"] = [
        (p.name, portal.action.get(lang)) for p, portal in on_portal if p.spec.record != "none"
    ]
    context["portal_intakes"] = [
        (p.name, portal.label.get(lang), portal.action.get(lang))
        for p, portal in on_portal
        if p.spec.record == "none"
    ]
    return render(request, "portal/home.html", status=status, **context)


# -- home: find a record, follow a case ------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _home(request)


@router.get("/find", response_model=None)
def find_again(request: Request) -> RedirectResponse:
    return back_to(request, "/")


@router.post("/find", response_class=HTMLResponse)
async def find(request: Request) -> HTMLResponse:
    form = await request.form()
    lang = lang_of(request)
    subject = _text(form, "subject")[:64]
    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _home(request, 403, error=_msg(exc, lang), subject=subject)
    if not subject:
        _ = gettext_of(request)
        need = {"subject": _("enter an identifier")}
        return _home(request, 422, find_errors=need, subject=subject)
    records = await run_in_threadpool(_search, engine_of(request), subject, lang)
    return _home(request, subject=subject, records=records, searched=True)


# -- apply -------------------------------------------------------------------------------------


def _apply_page(
    request: Request,
    record: dict[str, Any],
    procedure: str,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    form = _portal_form(request, procedure)
    assert form is not None
    proc, portal = form
    return render(
        request,
        "portal/apply.html",
        status=status,
        record=_record_rows([record], lang)[0],
        procedure=procedure,
        procedure_label=portal.label.get(lang),
        grounds_label=portal.grounds_label.get(lang),
        declarations=[(d, proc.fields[d].label.get(lang)) for d in portal.declarations],
        kinds=[(k, label(KIND_LABELS, k, lang)) for k in SUBJECT_KINDS],
        commitment_title=portal.commitment_title.get(lang),
        commitment_text=portal.commitment_text.get(lang),
        values=values,
        errors=errors,
        **context,
    )


def _portal_form(request: Request, procedure: str) -> tuple[Procedure, PortalSpec] | None:
    """The procedure's portal form, if the public files it (else None: no such form)."""
    engine = engine_of(request)
    for proc in engine.procedures.on_portal(engine.today()):
        if proc.name == procedure and proc.spec.portal is not None:
            return proc, proc.spec.portal
    return None


def _public_record(request: Request, record_id: str) -> dict[str, Any] | None:
    """A record the public may see: published only (not revoked, repaired, expired...)."""
    if not record_id.isdigit() or len(record_id) > 15:
        return None
    record = get_record(engine_of(request), int(record_id), PUBLIC)
    return record if record is not None and record["status"] == "published" else None


@router.get("/apply", response_class=HTMLResponse, response_model=None)
def apply_form(request: Request) -> Response:
    lang = lang_of(request)
    if "record_id" not in request.query_params:
        return back_to(request, "/")  # e.g. the language switch on a form posted back
    procedure = request.query_params.get("procedure", "objection")
    record = _public_record(request, request.query_params.get("record_id", ""))
    form = _portal_form(request, procedure)
    if record is None or form is None:
        return _home(request, 404, error=gettext_of(request)(NO_RECORD))
    # Said before the form, not after it is filled in: what stands in the way today.
    judged = filing_outlook(engine_of(request), [int(record["id"])], [procedure], lang)
    outlook = judged.get(int(record["id"]), {}).get(procedure)
    if outlook is not None and not outlook.possible:
        closed = _outlook_row(outlook, form[1], lang)
        return _apply_page(request, record, procedure, {}, {}, closed=closed)
    return _apply_page(request, record, procedure, {"kind": record["subject_kind"]}, {})


NO_RECORD = N_("no such published record")


def _check_application(
    values: dict[str, Any], declared: dict[str, tuple[str, bool]], today: date, lang: str
) -> dict[str, str]:
    """The form's own checks, so that every field's error shows at once."""
    _ = gettext_for(lang)
    errors: dict[str, str] = {}
    required = _("required")
    if values["kind"] not in SUBJECT_KINDS:
        errors["kind"] = _("choose the kind of applicant")
    if not values["name"]:
        errors["name"] = required
    if not values["identifier"]:
        errors["identifier"] = required
    elif values["kind"] in SUBJECT_KINDS:
        try:
            validate_subject_identifier(values["kind"], values["identifier"], today)
        except IdentifierError as exc:
            errors["identifier"] = in_language(lang, exc.message_en, exc.message_zh)
    if not values["grounds"]:
        errors["grounds"] = required
    if not values["commitment_signed"]:
        errors["commitment_signed"] = _("read and sign the commitment")
    for name, (text, ticked) in declared.items():
        if not ticked:
            errors[name] = _("confirm: %(declaration)s") % {"declaration": text}
    return errors


def _form_errors(exc: RedressError, lang: str) -> dict[str, str]:
    out = {}
    for key, message in field_errors(exc, lang).items():
        out[key.removeprefix("applicant.")] = message
    return out


@router.post("/apply", response_class=HTMLResponse)
async def apply(request: Request) -> HTMLResponse:
    engine = engine_of(request)
    lang = lang_of(request)
    form = await request.form(max_files=MAX_FILES, max_fields=50)
    procedure = _text(form, "procedure")
    record = await run_in_threadpool(_public_record, request, _text(form, "record_id"))
    portal_form = await run_in_threadpool(_portal_form, request, procedure)
    if record is None or portal_form is None:
        return _home(request, 404, error=gettext_of(request)(NO_RECORD))
    proc, portal = portal_form
    declared = {
        d: (proc.fields[d].label.get(lang), form.get(d) == "yes") for d in portal.declarations
    }
    values: dict[str, Any] = {
        "kind": _text(form, "kind"),
        "name": _text(form, "name")[:200],
        "identifier": _text(form, "identifier").upper()[:64],
        "email": _text(form, "email")[:200],
        "phone": _text(form, "phone")[:200],
        "grounds": _text(form, "grounds")[:4000],
        "commitment_signed": form.get("commitment_signed") == "yes",
        **{d: ticked for d, (_, ticked) in declared.items()},
    }

    def again(errors: dict[str, str], status: int = 422, **context: Any) -> HTMLResponse:
        return _apply_page(request, record, procedure, values, errors, status, **context)

    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return again({}, 403, error=_msg(exc, lang))
    errors = _check_application(values, declared, engine.today(), lang)
    if errors:
        return again(errors)
    try:
        files = await _uploads(form, "files", engine.settings.max_upload_bytes)
        attachments = Attachments(engine)
        for name, data in files:  # refuse a bad file before anything is filed
            attachments.check(name, data)
    except RedressError as exc:
        return again({"files": _msg(exc, lang)})
    applicant = {
        k: values[k] for k in ("kind", "name", "identifier", "email", "phone") if values[k]
    }
    payload: dict[str, Any] = {"grounds": values["grounds"], "commitment_signed": True}
    payload |= dict.fromkeys(portal.declarations, True)

    def file_it() -> tuple[str, str | None, int]:
        opened = engine.open_case(
            procedure=procedure,
            record_id=int(record["id"]),
            applicant=applicant,
            actor=PUBLIC,
            payload=payload,
            files=files,  # one transaction: the case and its evidence, or nothing
        )
        return opened.case_no, opened.access_code, opened.case_id

    try:
        case_no, code, case_id = await run_in_threadpool(file_it)
    except Ineligible as exc:
        if exc.earliest is not None:
            d = exc.earliest.isoformat()
            _ = gettext_of(request)
            early = _("too early: possible from %(day)s") % {"day": d}
            return again({"_eligibility": early}, earliest=d)
        return again({"_eligibility": _msg(exc, lang)})
    except InvalidPayload as exc:
        return again(_form_errors(exc, lang))
    except RedressError as exc:
        return again({}, error=_msg(exc, lang))
    await run_in_threadpool(sign_in_applicant, request, case_id, case_no)
    return render(
        request,
        "portal/filed.html",
        case_no=case_no,
        access_code=code,
        procedure_label=portal.label.get(lang),
        files=len(files),
        # A lost code can be sent again to the email or phone given (engine.applicants).
        recoverable=bool(applicant.get("email") or applicant.get("phone")),
    )


# -- complaints (no record) ------------------------------------------------------------------

COMPLAINT = "complaint"
_IDENTITIES = (
    ("named", N_("named")),
    ("anonymous_code", N_("anonymous, keeping an access code")),
    ("anonymous", N_("anonymous, without an access code")),
)
_COMPLAINT_SUBJECTS = ("government", "civil_servant", "enterprise", "person")


def _complaint_page(
    request: Request, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    lang = lang_of(request)
    form = _portal_form(request, COMPLAINT)
    _ = gettext_for(lang)
    if form is None:
        return _home(request, 404, error=_("complaints are not taken on this portal"))
    proc, portal = form
    # The subject's kind in the procedure's own words (the console and the letters use them).
    kind_field = proc.fields.get("subject_kind")
    subject_kinds = [
        (
            k,
            kind_field.choice_labels[k].get(lang)
            if kind_field is not None and k in kind_field.choice_labels
            else label(KIND_LABELS, k, lang),
        )
        for k in _COMPLAINT_SUBJECTS
    ]
    return render(
        request,
        "portal/complain.html",
        status=status,
        procedure_label=portal.label.get(lang),
        grounds_label=portal.grounds_label.get(lang),
        commitment_title=portal.commitment_title.get(lang),
        commitment_text=portal.commitment_text.get(lang),
        identities=[(v, _(text)) for v, text in _IDENTITIES],
        kinds=[(k, label(KIND_LABELS, k, lang)) for k in SUBJECT_KINDS],
        subject_kinds=subject_kinds,
        values=values,
        errors=errors,
    )


@router.get("/complain", response_class=HTMLResponse)
def complain_form(request: Request) -> HTMLResponse:
    return _complaint_page(request, {}, {})


@router.post("/complain", response_class=HTMLResponse)
async def complain(request: Request) -> HTMLResponse:
    engine = engine_of(request)
    lang = lang_of(request)
    _ = gettext_for(lang)
    form = await request.form(max_files=MAX_FILES, max_fields=50)
    keys: tuple[str, ...] = ("identity", "kind", "name", "identifier", "phone", "email")
    keys += ("subject_kind", "subject_name", "subject_identifier", "grounds")
    values: dict[str, Any] = {k: _text(form, k)[:4000] for k in keys}
    values["identifier"] = values["identifier"].upper()[:64]
    values["subject_identifier"] = values["subject_identifier"].upper()[:18]
    values["commitment_signed"] = form.get("commitment_signed") == "yes"
    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _complaint_page(request, values, {"_": _msg(exc, lang)}, 403)
    errors: dict[str, str] = {}
    required = _("required")
    identity = values["identity"]
    if identity not in {v for v, _text in _IDENTITIES}:
        errors["identity"] = _("choose named or anonymous")
    if identity == "named" and not values["name"]:
        errors["name"] = required
    if values["subject_kind"] not in _COMPLAINT_SUBJECTS:
        errors["subject_kind"] = _("choose the kind")
    for k in ("subject_name", "grounds"):
        if not values[k]:
            errors[k] = required
    if not values["commitment_signed"]:
        errors["commitment_signed"] = _("read and give the undertaking")
    if errors:
        return _complaint_page(request, values, errors, 422)
    try:
        files = await _uploads(form, "files", engine.settings.max_upload_bytes)
        for name, data in files:  # refuse a bad file before anything is filed
            Attachments(engine).check(name, data)
    except RedressError as exc:
        return _complaint_page(request, values, {"files": _msg(exc, lang)}, 422)
    applicant: dict[str, Any] = (
        {k: values[k] for k in ("kind", "name", "identifier", "phone", "email") if values[k]}
        if identity == "named"
        else {"anonymous": True}
    )
    payload = {
        "channel": "web",
        "subject_kind": values["subject_kind"],
        "subject_name": values["subject_name"],
        "grounds": values["grounds"],
    }
    if values["subject_identifier"]:
        payload["subject_identifier"] = values["subject_identifier"]

    def file_it() -> tuple[str, str | None, int]:
        opened = engine.open_case(
            procedure=COMPLAINT,
            record_id=None,
            applicant=applicant,
            actor=PUBLIC,
            payload=payload,
            files=files,
            access_code=identity != "anonymous",
        )
        return opened.case_no, opened.access_code, opened.case_id

    try:
        case_no, code, case_id = await run_in_threadpool(file_it)
    except InvalidPayload as exc:
        return _complaint_page(request, values, _form_errors(exc, lang), 422)
    except RedressError as exc:
        return _complaint_page(request, values, {"_": _msg(exc, lang)}, 422)
    if code:
        await run_in_threadpool(sign_in_applicant, request, case_id, case_no)
    portal = _portal_form(request, COMPLAINT)
    return render(
        request,
        "portal/filed.html",
        case_no=case_no,
        access_code=code,
        procedure_label=portal[1].label.get(lang) if portal else "",
        files=len(files),
        heading=_("Your complaint is filed"),
        recoverable=bool(applicant.get("email") or applicant.get("phone")),
    )


# -- follow the case ---------------------------------------------------------------------------


@router.get("/status", response_class=HTMLResponse)
def status_form(request: Request) -> HTMLResponse:
    return _home(request, focus="follow")


@router.post("/status", response_class=HTMLResponse, response_model=None)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    lang = lang_of(request)
    case_no = _text(form, "case_no").upper()[:40]
    code = _text(form, "access_code")[:64]
    follow = {"case_no": case_no}
    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _home(request, 403, error=_msg(exc, lang), follow=follow, focus="follow")
    guard: AccessGuard = request.app.state.access_guard
    client = _client(request)

    def attempt() -> Actor:
        try:
            # A right code on a case attacked from here is refused too (TooManyAttempts).
            return authenticate(engine_of(request), case_no, code, guard, client)
        except NotFound:
            delay = guard.failed(case_no, client)  # raises TooManyAttempts over the bound
            if delay:
                time.sleep(delay)
            raise

    try:
        actor = await run_in_threadpool(attempt)
    except TooManyAttempts as exc:
        response = _home(request, 429, error=_msg(exc, lang), follow=follow, focus="follow")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except RedressError as exc:
        wrong = {"access_code": _msg(exc, lang)}
        return _home(request, 422, follow_errors=wrong, follow=follow, focus="follow")
    assert actor.case_id is not None
    await run_in_threadpool(sign_in_applicant, request, actor.case_id, case_no)
    return RedirectResponse(f"/status/{case_no}", status_code=303)


@router.get("/status/sign-out", response_model=None)
def sign_out_again(request: Request) -> RedirectResponse:
    return back_to(request, "/status")


@router.post("/status/sign-out", response_class=HTMLResponse, response_model=None)
async def sign_out(request: Request) -> Response:
    form = await request.form(max_fields=5)
    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _home(request, 403, error=_msg(exc, lang_of(request)), focus="follow")
    await run_in_threadpool(end_session, request, "case_sid")
    request.session.pop("case_no", None)
    return RedirectResponse("/status", status_code=303)


# -- a lost access code -------------------------------------------------------------------------


def _code_page(
    request: Request,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        "portal/recover.html",
        status=status,
        values=values or {},
        errors=errors or {},
        **context,
    )


@router.get("/access-code", response_class=HTMLResponse)
def code_form(request: Request) -> HTMLResponse:
    return _code_page(request)


@router.post("/access-code", response_class=HTMLResponse)
async def code_request(request: Request) -> HTMLResponse:
    """A new access code sent to the email or phone on file. The page answers the same
    whether or not the number and contact matched, and never shows the code."""
    form = await request.form(max_fields=10)
    lang = lang_of(request)
    values = {"case_no": _text(form, "case_no").upper()[:40], "contact": _text(form, "contact")}
    values["contact"] = values["contact"][:200]
    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _code_page(request, 403, values, error=_msg(exc, lang))
    try:
        check_code_request(values["case_no"], values["contact"])
    except InvalidPayload as exc:
        return _code_page(request, 422, values, field_errors(exc, lang))
    guard: AccessGuard = request.app.state.access_guard
    engine, client = engine_of(request), _client(request)

    def ask() -> None:
        delay = request_new_code(engine, values["case_no"], values["contact"], guard, client)
        if delay:
            time.sleep(delay)

    try:
        await run_in_threadpool(ask)
    except TooManyAttempts as exc:
        response = _code_page(request, 429, values, error=_msg(exc, lang))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except RedressError as exc:
        return _code_page(request, 422, values, field_errors(exc, lang))
    return _code_page(request, requested=CODE_REQUESTED.get(lang))


def _applicant(request: Request, case_no: str) -> Actor | None:
    """The case this browser signed in to (a live session), when it is the one asked for."""
    signed_in = applicant_session(request)
    if signed_in is None or signed_in[1].upper() != case_no.upper():
        return None
    return Actor(name=f"applicant:{signed_in[1]}", role="applicant", case_id=signed_in[0])


def _status_page(request: Request, actor: Actor, status: int = 200, **context: Any) -> HTMLResponse:
    engine = engine_of(request)
    lang = lang_of(request)
    view = status_view(engine, actor, lang)
    items: list[str] = []
    if "supplement" in view["actions"]:
        assert actor.case_id is not None
        for event in engine.events(actor.case_id, actor):
            if event["trigger"] == "request_supplement":
                items = [str(i) for i in event["payload"].get("items") or []]
    tz = engine.calendar.tz
    for entry in (*view["timeline"], *view["notices"]):
        for key in ("at", "created_at"):
            if isinstance(entry.get(key), datetime):
                entry[key] = entry[key].astimezone(tz).strftime("%Y-%m-%d %H:%M")
    for key in ("supplement_errors", "review_errors", "withdraw_errors", "action_errors", "values"):
        context.setdefault(key, {})
    context.setdefault("acted", "")
    notice_text = request.session.pop("flash", None)
    if notice_text and "notice" not in context:
        context["notice"] = notice_text
    return render(request, "portal/status.html", status=status, view=view, items=items, **context)


def _gone(request: Request) -> RedirectResponse:
    end_session(request, "case_sid")
    request.session.pop("case_no", None)
    return RedirectResponse("/status", status_code=303)


@router.get("/status/{case_no}", response_class=HTMLResponse, response_model=None)
def status(request: Request, case_no: str) -> Response:
    actor = _applicant(request, case_no)
    if actor is None:
        return RedirectResponse("/status", status_code=303)
    try:
        return _status_page(request, actor)
    except NotFound:
        return _gone(request)


@router.get("/status/{case_no}/notices/{notice_id}.pdf", response_model=None)
def notice_pdf_of(request: Request, case_no: str, notice_id: str) -> Response:
    actor = _applicant(request, case_no)
    if actor is None:
        return RedirectResponse("/status", status_code=303)
    lang = lang_of(request)
    try:
        if not notice_id.isdigit() or len(notice_id) > 15:
            raise NotFound(*bilingual(N_("no such notice")))
        row = notice(engine_of(request), int(notice_id), actor)
    except RedressError as exc:
        return _status_page(request, actor, 404, error=_msg(exc, lang))
    return pdf_response(row)


@router.get("/status/{case_no}/{action}", response_model=None)
def action_again(request: Request, case_no: str, action: str) -> RedirectResponse:
    """A form posted back re-renders under its action's address; a GET goes to the case."""
    if action not in ("supplement", "review", "withdraw", "act") or not CASE_NO.fullmatch(case_no):
        return back_to(request, "/status")
    return back_to(request, f"/status/{case_no}")


@dataclass
class _Step:
    """What one of the status page's forms asks for: a step to run, or a refusal first."""

    # The step, run in a worker thread (None: refused by the form's own checks).
    run: Callable[[], object] | None = None
    done: str = ""  # said on the case's page once it ran
    errors: dict[str, str] = field(default_factory=dict)  # beside the form's fields
    error: str | None = None  # at the top of the page
    status: int = 422
    # The answer when the engine refuses with anything but bad fields (a stale case...).
    conflict_status: int = 422
    context: dict[str, Any] = field(default_factory=dict)  # for the page, on a refusal


async def _applicant_step(
    request: Request,
    case_no: str,
    errors_key: str,
    read: Callable[[FormData], dict[str, str]],
    prepare: Callable[[FormData, Actor, dict[str, str]], Awaitable[_Step]],
) -> Response:
    """The flow every form of the status page shares: read the form (its values shown again
    on a refusal), check its CSRF token and that this browser follows the case, ask the form
    (`prepare`) what to run, run it, then either show the page again with the errors beside
    the form (`errors_key`) or go back to the case with a message saying it was done."""
    lang = lang_of(request)
    form = await request.form(max_files=MAX_FILES, max_fields=20)
    actor = _applicant(request, case_no)
    if actor is None or actor.case_id is None:
        return RedirectResponse("/status", status_code=303)
    values = read(form)

    def again(status: int, errors: dict[str, str], step: _Step) -> HTMLResponse:
        assert actor is not None
        page = {errors_key: errors, "values": values, **step.context}
        return _status_page(request, actor, status, error=step.error, **page)

    try:
        check_csrf(request, _text(form, "csrf"))
    except Forbidden as exc:
        return _status_page(request, actor, 403, error=_msg(exc, lang), values=values)
    step = await prepare(form, actor, values)
    if step.run is None:
        return again(step.status, step.errors, step)
    try:
        await run_in_threadpool(step.run)
    except RedressError as exc:
        errors = {"files" if k == "file" else k: v for k, v in field_errors(exc, lang).items()}
        status = 422 if isinstance(exc, InvalidPayload) else step.conflict_status
        return again(status, errors, step)
    request.session["flash"] = step.done
    return RedirectResponse(f"/status/{case_no}", status_code=303)


@router.post("/status/{case_no}/supplement", response_class=HTMLResponse, response_model=None)
async def supplement(request: Request, case_no: str) -> Response:
    engine = engine_of(request)
    _ = gettext_of(request)

    async def prepare(form: FormData, actor: Actor, values: dict[str, str]) -> _Step:
        try:
            files = await _uploads(form, "files", engine.settings.max_upload_bytes)
        except RedressError as exc:
            return _Step(errors={"files": _msg(exc, lang_of(request))})
        comment = values["comment"]
        if not files and not comment:
            return _Step(errors={"files": _("upload the documents or add a comment")})

        def supply() -> None:
            assert actor.case_id is not None
            view = engine.case_view(actor.case_id, actor)
            engine.advance(  # the step and its files together, or neither
                actor.case_id,
                "supplement",
                actor,
                {"comment": comment} if comment else {},
                view["version"],
                files=files,
            )

        return _Step(supply, _("Your documents have been sent"), conflict_status=409)

    return await _applicant_step(
        request,
        case_no,
        "supplement_errors",
        lambda form: {"comment": _text(form, "comment")[:4000]},
        prepare,
    )


@router.post("/status/{case_no}/review", response_class=HTMLResponse, response_model=None)
async def review(request: Request, case_no: str) -> Response:
    engine = engine_of(request)
    _ = gettext_of(request)

    async def prepare(form: FormData, actor: Actor, values: dict[str, str]) -> _Step:
        grounds = values["review_grounds"]
        if not grounds:
            return _Step(errors={"review_grounds": _("give your grounds")})
        assert actor.case_id is not None
        case_id = actor.case_id
        return _Step(
            lambda: engine.advance(case_id, "request_review", actor, {"review_grounds": grounds}),
            _("Your request for review has been sent"),
        )

    return await _applicant_step(
        request,
        case_no,
        "review_errors",
        lambda form: {"review_grounds": _text(form, "review_grounds")[:4000]},
        prepare,
    )


@router.post("/status/{case_no}/withdraw", response_class=HTMLResponse, response_model=None)
async def withdraw(request: Request, case_no: str) -> Response:
    engine = engine_of(request)
    _ = gettext_of(request)

    async def prepare(form: FormData, actor: Actor, values: dict[str, str]) -> _Step:
        if form.get("confirm") != "yes":
            return _Step(errors={"confirm": _("tick to confirm the withdrawal")})
        assert actor.case_id is not None
        case_id, reason = actor.case_id, values["reason"]
        return _Step(
            lambda: engine.advance(
                case_id, "withdraw", actor, {"reason": reason} if reason else {}
            ),
            _("Your application has been withdrawn"),
        )

    return await _applicant_step(
        request,
        case_no,
        "withdraw_errors",
        lambda form: {"reason": _text(form, "reason")[:4000]},
        prepare,
    )


@router.post("/status/{case_no}/act", response_class=HTMLResponse, response_model=None)
async def act(request: Request, case_no: str) -> Response:
    """A step the case offers its applicant with a form made from its fields (a party's
    statement, a rectification report, a request for re-examination)."""
    engine = engine_of(request)
    lang = lang_of(request)
    _ = gettext_for(lang)

    async def prepare(form: FormData, actor: Actor, values: dict[str, str]) -> _Step:
        trigger = _text(form, "trigger")[:40]
        acted = {"acted": trigger}
        assert actor.case_id is not None
        case_id = actor.case_id
        offered = {a["trigger"]: a for a in status_view(engine, actor, lang)["other_actions"]}
        if trigger not in offered:
            return _Step(error=_("that step is not open now"), status=409)
        fields = offered[trigger]["fields"]
        payload = {k: v for k, v in values.items() if k in {f["name"] for f in fields} and v}
        missing = [f["name"] for f in fields if f["required"] and f["name"] not in payload]
        if missing:
            return _Step(errors=dict.fromkeys(missing, _("required")), context=acted)
        return _Step(
            lambda: engine.advance(case_id, trigger, actor, payload),
            _("Sent: %(step)s") % {"step": offered[trigger]["label"]},
            context=acted,
        )

    return await _applicant_step(
        request,
        case_no,
        "action_errors",
        lambda form: {k: _text(form, k)[:4000] for k in form if k not in ("csrf", "trigger")},
        prepare,
    )
