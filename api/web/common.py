"""What every page needs: the templates, the language, the session user, CSRF, errors."""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.web.labels import TABLES, label
from engine.service import Actor, Engine
from engine.sessions import Sessions
from states.errors import FieldError, Forbidden, InvalidPayload, RedressError

TEMPLATES = Jinja2Templates(
    directory=str(Path(__file__).resolve().parents[2] / "templates" / "pages")
)
LANGS = ("zh", "en")


def lang_of(request: Request) -> str:
    """?lang= (remembered in a cookie by the page), else the cookie, else zh."""
    q = request.query_params.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get("lang")
    return c if c in LANGS else "zh"


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, sent: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise Forbidden(
            "the form expired or did not come from this site; reload and retry",
            "表单已过期或来源不明，请刷新页面后重试",
        )


# The most files one form takes (portal applications, supplements).
MAX_FILES = 10


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    limit_mb = engine_of(request).settings.max_upload_bytes / (1024 * 1024)

    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    def code(kind: str, value: str) -> str:  # a code in words: {{ code("role", e.role) }}
        return label(TABLES[kind], value, lang)

    def said(text: str | None) -> str:
        """The page's half of a text the engine wrote in both languages ("公示 / published");
        anything else, as written."""
        return in_language(text or "", lang)

    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": t,
            "code": code,
            "said": said,
            "csrf": csrf_token(request),
            # Upload limits, stated on every form that takes files.
            "upload_limit_mb": f"{limit_mb:g}",
            "max_files": MAX_FILES,
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


_BILINGUAL = re.compile(r"^(.*[\u4e00-\u9fff].*?) / ([\x20-\x7e]+)$", re.S)


def in_language(text: str, lang: str) -> str:
    found = _BILINGUAL.match(text)
    if not found:
        return text
    return found.group(2) if lang == "en" else found.group(1)


def field_errors(exc: RedressError, lang: str) -> dict[str, str]:
    """Errors by field name for a form (the whole message under "_" otherwise)."""
    if isinstance(exc, InvalidPayload):
        out: dict[str, str] = {}
        for e in exc.errors:
            out.setdefault(e.field, e.message if lang == "en" else e.message_zh)
        return out
    return {"_": exc.message if lang == "en" else exc.message_zh}


def form_error(field: str, en: str, zh: str) -> InvalidPayload:
    return InvalidPayload([FieldError(field, "invalid", en, zh)])


def staff(request: Request) -> Actor | None:
    """The signed-in staff user of a live session (engine/sessions.py), or None."""
    sid = request.session.get("sid")
    if not sid:
        return None
    try:
        return Sessions(engine_of(request)).staff(str(sid))
    except RedressError:
        request.session.pop("sid", None)
        return None


def sign_in_staff(request: Request, actor: Actor, token_id: int | None = None) -> None:
    assert actor.user_id is not None
    end_session(request, "sid")
    request.session["sid"] = Sessions(engine_of(request)).start_staff(actor.user_id, token_id)


def sign_in_applicant(request: Request, case_id: int, case_no: str) -> None:
    end_session(request, "case_sid")
    request.session["case_sid"] = Sessions(engine_of(request)).start_applicant(case_id)
    request.session["case_no"] = case_no


def applicant_session(request: Request) -> tuple[int, str] | None:
    """(case id, case number) this browser is signed in to, while its session is live."""
    sid = request.session.get("case_sid")
    if not sid:
        return None
    try:
        return Sessions(engine_of(request)).applicant(str(sid))
    except RedressError:
        request.session.pop("case_sid", None)
        return None


def end_session(request: Request, key: str) -> None:
    """Sign out: the session's row ends, so the same cookie replayed later gives nothing."""
    sid = request.session.pop(key, None)
    if sid:
        Sessions(engine_of(request)).end(str(sid))


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)
