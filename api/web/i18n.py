"""The pages' words: message catalogues (gettext), one per language, read once per process.

Every word a page shows is an English msgid in the templates (`{% trans %}`, `_()`,
`pgettext()` where one English word needs different Chinese in different places, `ngettext`)
or in the page code (`_()` for the request's language, `N_()` to mark a msgid kept in a table
and translated where it is shown). The Chinese is in `locale/zh_CN/LC_MESSAGES/messages.po`,
committed and read at startup with Babel (no compile step); English is the msgids themselves.
`tests/api/test_message_catalogues.py` extracts every msgid with the configuration of
`babel.cfg` and fails on one missing, untranslated, fuzzy or obsolete, or whose placeholders
differ from its translation. `make messages` re-extracts and updates the catalogue.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
DOMAIN = "messages"
# The page's language → its catalogue (None: the msgids, which are English).
LOCALES: dict[str, str | None] = {"zh": "zh_CN", "en": None}
HTML_LANG = {"zh": "zh-CN", "en": "en"}  # <html lang="...">


def N_(message: str) -> str:
    """Marks a msgid for extraction where it is kept (a table); `_()` translates it when shown."""
    return message


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext_module.NullTranslations:
    """The catalogue of a page language, read from its .po once per process. A fuzzy entry
    is left out (its msgid shows), as gettext does; the tests refuse one anyway."""
    locale = LOCALES[lang]
    if locale is None:
        return gettext_module.NullTranslations()
    with po_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext_module.GNUTranslations(buf)


def gettext_for(lang: str) -> Callable[[str], str]:
    """`_` for page code: the msgid in `lang`."""
    return translations(lang).gettext


def bilingual(message: str) -> tuple[str, str]:
    """A msgid in English and Chinese, for an error the page itself raises (RedressError and
    FieldError carry both, like the engine's): Forbidden(*bilingual(N_("...")))."""
    return message, translations("zh").gettext(message)


# -- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateWords:
    """The callables `{% trans %}`, `_()`, `gettext`, `ngettext`, `pgettext` and `npgettext`
    find in a page's context: the request's language, formatted and escaped as Jinja's
    "newstyle" gettext does (every message is a %-format string, "%%" a percent sign; values
    are escaped)."""

    callables: dict[str, Any]


def _format(context: Context, text: str, variables: dict[str, Any]) -> str:
    rv: str = Markup(text) if context.eval_ctx.autoescape else text
    return rv % variables


@functools.cache
def template_words(lang: str) -> TemplateWords:
    tr = translations(lang)
    # The message of a `_()` without values, made once per process: a page says ~150 of them.
    plain: dict[str, Markup] = {}

    @pass_context
    def gettext(__context: Context, __string: str, **variables: Any) -> str:
        if not variables and __context.eval_ctx.autoescape:
            found = plain.get(__string)
            if found is None:
                found = Markup(tr.gettext(__string)) % {}
                if len(plain) < 4096:  # msgids are the templates' literals: a few hundred
                    plain[__string] = found
            return found
        return _format(__context, tr.gettext(__string), variables)

    @pass_context
    def ngettext(
        __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        return _format(__context, tr.ngettext(__singular, __plural, __num), variables)

    @pass_context
    def pgettext(__context: Context, __ctx: str, __string: str, **variables: Any) -> str:
        variables.setdefault("context", __ctx)
        return _format(__context, tr.pgettext(__ctx, __string), variables)

    @pass_context
    def npgettext(
        __context: Context,
        __ctx: str,
        __singular: str,
        __plural: str,
        __num: int,
        **variables: Any,
    ) -> str:
        variables.setdefault("context", __ctx)
        variables.setdefault("num", __num)
        return _format(__context, tr.npgettext(__ctx, __singular, __plural, __num), variables)

    callables = {"gettext": gettext, "ngettext": ngettext, "pgettext": pgettext}
    # `_` itself too: Jinja's global `_` looks `gettext` up in the context on every call.
    return TemplateWords({**callables, "npgettext": npgettext, "_": gettext})


def _no_language(*args: Any, **kwargs: Any) -> str:
    raise RuntimeError(
        "a page's words were asked for outside a request's language: render pages through "
        "api.web.common.render, and import macros with words 'with context'"
    )


def install(env: Environment) -> None:
    """Jinja's i18n extension on the page environment, with the `{% trans %}` policy the
    extraction uses (trimmed). No global translations: a template's words come from the
    request (render's context), and a lookup without one fails rather than showing English."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    for name in ("gettext", "ngettext", "pgettext", "npgettext"):
        env.globals[name] = _no_language
    for lang in LOCALES:  # a broken catalogue fails at startup, not on a page
        template_words(lang)
