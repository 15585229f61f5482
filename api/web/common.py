"""What every page needs: the templates, the language, the session user, CSRF, errors."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from api.web import i18n
from api.web.i18n import N_, bilingual
from api.web.labels import TABLES, label
from engine.service import Actor, Engine
from engine.sessions import Sessions
from states.errors import Forbidden, InvalidPayload, RedressError

TEMPLATES = Jinja2Templates(
    directory=str(Path(__file__).resolve().parents[2] / "templates" / "pages")
)
i18n.install(TEMPLATES.env)  # the words of every page: locale/*.po (api/web/i18n.py)
LANGS = ("zh", "en")


def lang_of(request: Request) -> str:
    """?lang= (remembered in a cookie by the page), else the cookie, else zh."""
    q = request.query_params.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get("lang")
    return c if c in LANGS else "zh"


def back_to(request: Request, path: str) -> RedirectResponse:
    """A GET of a form's action address (the language switch on a page re-rendered there, a
    reload after a refusal) goes back to the page, keeping the ?lang= switch."""
    lang = request.query_params.get("lang")
    return RedirectResponse(path + (f"?lang={lang}" if lang in LANGS else ""), status_code=303)


def gettext_of(request: Request) -> Callable[[str], str]:
    """`_` for page code: a msgid in the request's language."""
    return i18n.gettext_for(lang_of(request))


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


CSRF_REFUSED = N_("the form expired or did not come from this site; reload and retry")


def check_csrf(request: Request, sent: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise Forbidden(*bilingual(CSRF_REFUSED))


# The most files one form takes (portal applications, supplements).
MAX_FILES = 10


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    limit_mb = engine_of(request).settings.max_upload_bytes / (1024 * 1024)

    def code(kind: str, value: str) -> str:  # a code in words: {{ code("role", e.role) }}
        return label(TABLES[kind], value, lang)

    def said(text: str | None) -> str:
        """The page's half of a text the engine wrote in both languages ("公示 / published");
        anything else as written by the person who wrote it (verbatim: translate="no")."""
        text = text or ""
        found = _BILINGUAL.match(text)
        if found:
            return in_language(lang, found.group(2), found.group(1))
        return Markup('<span translate="no">%s</span>') % text if text else ""

    def marked(text: str, *verbatim: str) -> Markup:
        """`text` with each `verbatim` in it (a case number in a notice's subject) marked
        translate="no": an identifier among the page's words."""
        out = Markup.escape(text)
        for value in filter(None, verbatim):
            out = out.replace(
                Markup.escape(value), Markup('<span translate="no">%s</span>') % value
            )
        return out

    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "html_lang": i18n.HTML_LANG[lang],
            # gettext, ngettext, pgettext, npgettext: the request's language ({% trans %}, _())
            **i18n.template_words(lang).callables,
            "code": code,
            "said": said,
            "marked": marked,
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


def in_language(lang: str, en: str, zh: str) -> str:
    """The page's language of a text given in both: the engine's errors (RedressError,
    FieldError, IdentifierError) carry English and Chinese, for the API as for the pages."""
    return en if lang == "en" else zh


def error_text(exc: RedressError, lang: str) -> str:
    return in_language(lang, exc.message, exc.message_zh)


def field_errors(exc: RedressError, lang: str) -> dict[str, str]:
    """Errors by field name for a form (the whole message under "_" otherwise)."""
    if isinstance(exc, InvalidPayload):
        out: dict[str, str] = {}
        for e in exc.errors:
            out.setdefault(e.field, in_language(lang, e.message, e.message_zh))
        return out
    return {"_": error_text(exc, lang)}


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
