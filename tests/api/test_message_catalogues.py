"""The pages' message catalogues against the pages' own words.

Every msgid is extracted here, at test time, with Babel's extractors and the configuration of
babel.cfg (the page code in api/web, the templates in templates/pages), exactly as
`make messages` does; the Chinese catalogue (locale/zh_CN/LC_MESSAGES/messages.po) must hold
each one, translated, not fuzzy, with the same placeholders, and nothing else. A missing
translation is then found here, not by a reader of a page that suddenly shows English.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from api.web import i18n

ROOT = Path(__file__).resolve().parents[2]
PO = i18n.po_path("zh_CN")
WEB = ROOT / "api" / "web"
PAGES = ROOT / "templates" / "pages"
# %(name)s and its kin, and a bare %s; "%%" is a literal percent sign.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")


def extracted() -> Catalog:
    """Every message of the pages, as babel.cfg says to extract them."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    catalog = Catalog(locale="zh_CN", domain=i18n.DOMAIN)
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], context=context)
    return catalog


def catalogue() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN", domain=i18n.DOMAIN)


def _key(m: Message) -> tuple[str, str | None]:
    return (m.id[0] if isinstance(m.id, tuple) else m.id), m.context


def _placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in PLACEHOLDER.finditer(text) if m.group(0) != "%%")


def _where(m: Message) -> str:
    where = ", ".join(sorted({f for f, _ in m.locations}))
    ctx = f" (context {m.context!r})" if m.context else ""
    return f"{_key(m)[0]!r}{ctx} [{where}]"


def problems(source: Catalog, po: Catalog) -> list[str]:
    """What is wrong with the catalogue `po` for the messages `source` holds."""
    out: list[str] = []
    translated = {_key(m): m for m in po if m.id}
    wanted = {_key(m): m for m in source if m.id}
    for key, m in sorted(wanted.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        entry = translated.get(key)
        if entry is None:
            out.append(f"missing from {PO.name}: {_where(m)}")
            continue
        if isinstance(m.id, tuple) != isinstance(entry.id, tuple):
            out.append(f"singular/plural differs from the source: {_where(m)}")
            continue
        if isinstance(m.id, tuple) and m.id != entry.id:
            out.append(f"plural differs from the source: {_where(m)}")
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not forms or not all(forms):
            out.append(f"not translated (empty): {_where(m)}")
        if entry.fuzzy:
            out.append(f"fuzzy (to be checked, and then unmarked): {_where(m)}")
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        expected = sorted(set().union(*(_placeholders(i) for i in ids)))
        for form in forms:
            if form and sorted(set(_placeholders(form))) != expected:
                out.append(
                    f"placeholders {sorted(set(_placeholders(form)))} of {form!r} are not "
                    f"the msgid's {expected}: {_where(m)}"
                )
    for key in sorted(set(translated) - set(wanted), key=lambda k: (k[0], k[1] or "")):
        out.append(f"obsolete (no page says it any more): {_where(translated[key])}")
    for m in po.obsolete.values():
        out.append(f"obsolete entry (#~) left in {PO.name}: {_where(m)}")
    return out


@pytest.fixture(scope="module")
def source() -> Catalog:
    return extracted()


def test_the_extraction_finds_the_pages_words(source: Catalog) -> None:
    keys = {_key(m) for m in source if m.id}
    assert len(keys) > 300  # the templates' and the page code's
    assert ("Work queue", None) in keys  # a template's _()
    assert ("Staff sign-in", "footer link") in keys  # a template's pgettext
    assert ("administrators only", None) in keys  # page code, N_()
    assert ("%(num)s working day", None) in keys  # page code, ngettext
    files = {f for m in source for f, _ in m.locations}
    assert any(f.startswith("templates/pages/") for f in files)
    assert any(f.startswith("api/web/") for f in files)


def test_the_catalogue_has_every_message_translated_and_nothing_else(source: Catalog) -> None:
    found = problems(source, catalogue())
    assert not found, "run `make messages`, then translate:\n" + "\n".join(found)


def test_babel_finds_no_format_errors_in_the_catalogue() -> None:
    errors = [(m.id, [str(e) for e in errs]) for m, errs in catalogue().check()]
    assert not errors, errors


def test_the_check_itself_finds_each_kind_of_fault(source: Catalog) -> None:
    """The check fails on an entry deleted, emptied, fuzzy, with another placeholder, or kept
    after its msgid left the pages."""
    po = catalogue()
    assert problems(source, po) == []

    def faulty(change: str) -> list[str]:
        broken = copy.deepcopy(po)
        if change == "deleted":
            del broken["Work queue"]
        elif change == "empty":
            broken["Work queue"].string = ""
        elif change == "fuzzy":
            broken["Work queue"].flags.add("fuzzy")
        elif change == "placeholder":
            broken["Done: %(step)s"].string = "已办理：%(trigger)s"
        elif change == "obsolete":
            broken.add("A word no page says", "无人说的话")
        return problems(source, broken)

    assert any("missing" in p and "'Work queue'" in p for p in faulty("deleted"))
    assert any("empty" in p and "'Work queue'" in p for p in faulty("empty"))
    assert any("fuzzy" in p and "'Work queue'" in p for p in faulty("fuzzy"))
    assert any("placeholders" in p and "Done:" in p for p in faulty("placeholder"))
    assert any("obsolete" in p and "A word no page says" in p for p in faulty("obsolete"))


def test_the_pages_read_the_catalogue_once_and_speak_chinese_first() -> None:
    assert i18n.translations("zh") is i18n.translations("zh")  # cached: read once
    assert i18n.gettext_for("zh")("Work queue") == "待办案件"
    assert i18n.gettext_for("en")("Work queue") == "Work queue"
    assert i18n.translations("zh").pgettext("footer link", "Staff sign-in") == "工作人员入口"
    assert i18n.translations("zh").gettext("Staff sign-in") == "工作人员登录"
    assert i18n.bilingual("administrators only") == ("administrators only", "仅限管理员")


# -- the words reach the extractor ------------------------------------------------------------


def _page_code() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(WEB.glob("*.py"))]


def _is_text(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(
        node, ast.JoinedStr
    )


def _asks_the_language(node: ast.expr) -> bool:
    """`lang == "zh"`, `lang != "en"`, `zh` (a flag of it)."""
    if isinstance(node, ast.Name):
        return node.id == "zh"
    if not isinstance(node, ast.Compare):
        return False
    sides = [node.left, *node.comparators]
    return any(isinstance(n, ast.Name) and n.id == "lang" for n in sides) and any(
        isinstance(n, ast.Constant) and n.value in ("zh", "en") for n in sides
    )


def test_the_page_code_chooses_no_words_by_language() -> None:
    """No `"…" if lang == "zh" else "…"` left: the words go through the catalogue. (Choosing
    between the two texts the engine gives, `exc.message` or `exc.message_zh`, is data.)"""
    found = []
    for path, tree in _page_code():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.IfExp)
                and _asks_the_language(node.test)
                and (_is_text(node.body) or _is_text(node.orelse))
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, found


def test_every_message_of_the_page_code_is_a_literal_the_extractor_sees() -> None:
    """`gettext_of(request)("…")` or `_(f"…")` would be translated at run time but never
    extracted: the page would show English with no test failing."""
    names = set(DEFAULT_KEYWORDS)
    found = []
    for path, tree in _page_code():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if isinstance(node.func, ast.Call) and _is_text(first):
                found.append(f"{path.name}:{node.lineno}: a message through a call's result")
            named = isinstance(node.func, ast.Name) and node.func.id in names
            if named and isinstance(first, ast.JoinedStr):
                found.append(f"{path.name}:{node.lineno}: an f-string as a msgid")
    assert not found, found


def test_the_templates_choose_no_words_by_language() -> None:
    found = []
    inline = re.compile(r"""["'][^"'{}]*["']\s+if\s+lang\b|\bt\(\s*["']""")
    for path in sorted(PAGES.rglob("*.html")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if inline.search(line):
                found.append(f"{path.relative_to(PAGES)}:{n}: {line.strip()[:80]}")
    assert not found, found
