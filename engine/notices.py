"""Official notices (受理通知书, 补正通知书, 异议核查结果告知书 …) from versioned templates.

A command that emits a notice stores, in its outbox rows, the template's name and version and
the values the letter needs, taken at that moment. Delivery renders the letter once (zh-CN and
English), keeps it in `notices` exactly as rendered, and every channel sends that stored text.

Templates live in `templates/notices/<name>/v<N>.<lang>.html`: restricted HTML (h1, h2, p, ul,
li, b, br) in one Jinja2 Environment with autoescape on (applicants' text is escaped, so it can
neither break the letter nor its PDF) and StrictUndefined (a missing value is an error, never a
blank in an official letter). A template sets its subject with `{% set subject %}…{% endset %}`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

ROOT = Path(__file__).resolve().parent.parent / "templates" / "notices"
LANGS = ("zh", "en")
_VERSION = re.compile(r"^v(\d+)\.(zh|en)\.html$")

# Remedies open against a decision (行政复议法 Art. 20: 60 days; 行政诉讼法 Art. 46: 6 months).
RECONSIDERATION_DAYS = 60
LITIGATION_MONTHS = 6


@dataclass(frozen=True)
class Rendered:
    name: str
    version: int
    lang: str
    subject: str
    body: str  # restricted HTML

    @property
    def text(self) -> str:
        return html_to_text(self.body)


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(ROOT)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@cache
def versions(name: str) -> tuple[int, ...]:
    """The versions of a template present in every language, oldest first."""
    folder = ROOT / name
    found: dict[int, set[str]] = {}
    if folder.is_dir():
        for f in folder.iterdir():
            m = _VERSION.match(f.name)
            if m:
                found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return tuple(sorted(v for v, langs in found.items() if set(LANGS) <= langs))


def latest(name: str) -> int:
    vs = versions(name)
    if not vs:
        raise LookupError(f"no template for notice {name!r} in {ROOT} (zh and en)")
    return vs[-1]


def render(name: str, version: int, lang: str, context: Mapping[str, Any]) -> Rendered:
    template = environment().get_template(f"{name}/v{version}.{lang}.html")
    module = template.make_module({**context, "lang": lang})
    subject = html_to_text(str(getattr(module, "subject", ""))).strip()
    if not subject:
        raise ValueError(f"template {name} v{version} ({lang}) sets no subject")
    return Rendered(name, version, lang, subject, str(module).strip())


def html_to_text(body: str) -> str:
    """The plain-text form of a letter (for mail and SMS): paragraphs and list items kept."""
    text = re.sub(r"<\s*br\s*/?>", "\n", body)
    text = re.sub(r"<\s*li[^>]*>", "\n- ", text)
    text = re.sub(r"</\s*(p|h1|h2|ul|li)\s*>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


def label(pair: tuple[str, str] | None, default: str = "") -> dict[str, str]:
    return {"zh": pair[0], "en": pair[1]} if pair else {"zh": default, "en": default}
