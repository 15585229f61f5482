"""Notice PDFs embed their font, and every character of every notice comes out as it went in.

Each PDF is checked three ways: (a) every font it uses is embedded (FontFile2/FontFile3 in the
font descriptor), so no viewer substitutes a font of its own and shows ⊠ boxes; (b) the text pypdf
extracts is the text that went in, character for character; (c) every character drawn has a real
glyph in the embedded font subset (its code maps to a glyph other than .notdef, with an outline).

The text comes from two places: the literal text of every template file (every version, zh and
en, every branch, the strings inside Jinja tags too), and the notices the demo actually sends
(cases in every state of all four procedures), laid out by the function the API, the console and
the portal serve PDFs with, footer included.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import DictionaryObject
from reportlab.pdfbase import pdfmetrics

from api.routers.notices import pdf_response
from engine import notices, pdf
from engine.clock import FixedClock
from engine.db import Database
from engine.demo import load_demo
from engine.migrate import upgrade
from engine.pdf import notice_pdf
from engine.service import Engine

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "notices"
TEMPLATE_FILES = sorted(TEMPLATES.glob("*/v*.*.html"))
# Characters notices use in numbers, citations and dates, beyond what the templates spell out.
EXTRA = (
    "〔2026〕第12号、“引号”《中华人民共和国行政处罚法》·—（括号）：；…‘’「」【】％×№"
    " 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz -_./:;,()&<>@#+="
)
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
STRING = re.compile(r"\"([^\"]*)\"|'([^']*)'")
TAG = re.compile(r"<[^>]+>")
BLOCK = re.compile(r"<(h1|h2|p|li)>(.*?)</\1>", re.S)
BR = re.compile(r"<br\s*/?>", re.I)
BFCHAR = re.compile(r"beginbfchar(.*?)endbfchar", re.S)
PAIR = re.compile(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")


# -- what went in ---------------------------------------------------------------------------------


def template_text(path: Path) -> list[str]:
    """Every piece of literal text a template can put in a letter, one line each: the text
    between its tags and Jinja blocks, and the string literals inside Jinja (`{% set what =
    "信用修复申请" ... %}`)."""
    source = path.read_text(encoding="utf-8")
    pieces = [a or b for tag in JINJA.findall(source) for a, b in STRING.findall(tag)]
    outside = JINJA.sub("\n", BR.sub("\n", source))
    pieces += TAG.sub("\n", outside).splitlines()
    return [t for t in (html.unescape(p).strip() for p in pieces) if t]


def as_body(lines: list[str]) -> str:
    """Lines as the restricted HTML notice_pdf lays out, one paragraph each."""
    return "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)


def shown(body: str, footer: str = "") -> str:
    """The text a reader sees in the PDF of `body`: the blocks in order, list items with their
    bullet, then the footer."""
    out = []
    for tag, inner in BLOCK.findall(body):
        text = html.unescape(TAG.sub("", BR.sub("\n", inner)))
        out.append(("•" if tag == "li" else "") + text)
    out.append(html.unescape(footer))
    return "\n".join(out)


def visible(text: str) -> str:
    """The characters that leave ink (line breaks and spaces depend on the layout)."""
    return "".join(text.split())


# -- what came out --------------------------------------------------------------------------------


@dataclass
class Subset:
    """One embedded font of a PDF: its code → character map and its code → glyph map."""

    name: str
    embedded: bool
    to_unicode: dict[int, str]
    glyphs: dict[int, int]  # code -> glyph id in the embedded font (0 is .notdef)
    inked: set[int]  # glyph ids with an outline


def _descriptor(font: DictionaryObject) -> DictionaryObject:
    if "/DescendantFonts" in font:  # Type0 (CID-keyed): the descriptor is the descendant's
        font = font["/DescendantFonts"][0].get_object()
    desc = font.get("/FontDescriptor")
    return DictionaryObject() if desc is None else desc.get_object()


def _to_unicode(font: DictionaryObject) -> dict[int, str]:
    if "/ToUnicode" not in font:
        return {}
    cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    assert "bfrange" not in cmap, "only bfchar entries are read here"
    return {
        int(code, 16): bytes.fromhex(uni).decode("utf-16-be")
        for chunk in BFCHAR.findall(cmap)
        for code, uni in PAIR.findall(chunk)
    }


def _glyphs(data: bytes) -> tuple[dict[int, int], set[int]]:
    ttf = TTFont(io.BytesIO(data))
    codes: dict[int, int] = {}
    for table in ttf["cmap"].tables:
        for code, glyph in table.cmap.items():
            codes.setdefault(code, ttf.getGlyphID(glyph))
    glyf = ttf["glyf"]
    inked = {
        ttf.getGlyphID(g) for g in ttf.getGlyphOrder() if glyf[g].numberOfContours != 0
    }  # > 0: contours; < 0: a composite of other glyphs
    return codes, inked


def fonts_of(data: bytes) -> Iterator[Subset]:
    reader = PdfReader(io.BytesIO(data))
    seen: set[int] = set()
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for ref in resources.get("/Font", DictionaryObject()).get_object().values():
            font = ref.get_object()
            if id(font) in seen:
                continue
            seen.add(id(font))
            desc = _descriptor(font)
            file = desc.get("/FontFile2") or desc.get("/FontFile3")
            codes, inked = _glyphs(file.get_object().get_data()) if file else ({}, set())
            yield Subset(str(font["/BaseFont"]), file is not None, _to_unicode(font), codes, inked)


def extracted(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def check_pdf(data: bytes, text: str) -> None:
    """(a) embedded, (b) no character lost or changed, (c) a glyph for every character."""
    fonts = list(fonts_of(data))
    assert fonts
    # (a)
    bare = [f.name for f in fonts if not f.embedded]
    assert not bare, f"fonts not embedded: {bare}"
    # (b)
    got, want = visible(extracted(data)), visible(text)
    if got != want:
        lost = sorted(set(want) - set(got))
        added = sorted(set(got) - set(want))
        pytest.fail(f"extracted text differs: lost {lost!r}, added {added!r}\n{got}\n{want}")
    # (c)
    for char in sorted(set(want)):
        drawn = [(f, code) for f in fonts for code, uni in f.to_unicode.items() if uni == char]
        assert drawn, f"{char!r} (U+{ord(char):04X}) is in no font's ToUnicode map"
        for f, code in drawn:
            gid = f.glyphs.get(code, 0)
            assert gid != 0, f"{char!r} (U+{ord(char):04X}) is .notdef in {f.name}"
            assert gid in f.inked, f"{char!r} (U+{ord(char):04X}) has an empty glyph in {f.name}"


# -- the checks -----------------------------------------------------------------------------------


def test_every_template_has_both_languages() -> None:
    names = {p.parent.name for p in TEMPLATE_FILES}
    assert len(names) >= 20
    for name in names:
        for lang in ("zh", "en"):
            assert (TEMPLATES / name / f"v1.{lang}.html").exists(), (name, lang)


@pytest.mark.parametrize(
    "path", TEMPLATE_FILES, ids=[f"{p.parent.name}/{p.name}" for p in TEMPLATE_FILES]
)
def test_template_text_survives_the_pdf(path: Path) -> None:
    lines = template_text(path)
    assert lines
    body = as_body(lines)
    footer = f"案件编号 YY2026040712ABCD · {path.parent.name} v1 · redress"
    check_pdf(notice_pdf(lines[0], body, footer), shown(body, footer))


def test_punctuation_digits_and_latin() -> None:
    body = "<h1>告知书</h1><h2>标题</h2>" + as_body(EXTRA.split()) + "<ul><li>列项</li></ul>"
    footer = "案件编号 YY2026040712ABCD · receipt v2 · redress"
    check_pdf(notice_pdf("告知书", body, footer), shown(body, footer))


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every notice the demo queues, rendered in zh and en as delivery stores it: the rows the
    API, the console and the portal turn into PDFs."""
    path = tmp_path_factory.mktemp("pdf-fonts") / "demo.db"
    db = Database(f"sqlite:///{path}", pool_size=5)
    upgrade(db.engine)
    clock = FixedClock(datetime(2026, 4, 7, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    load_demo(Engine(db, clock=clock))
    with db.read() as conn:
        queued = conn.execute(
            sa.text(
                "SELECT c.case_no, o.name, o.payload FROM outbox o "
                "JOIN cases c ON c.id = o.case_id WHERE o.kind = 'notice' ORDER BY o.id"
            )
        ).all()
    db.dispose()
    rows: dict[tuple[str, int, str, str], dict[str, Any]] = {}
    for case_no, name, payload in queued:
        p = json.loads(payload)
        for lang in notices.LANGS:
            key = (case_no, p["event_seq"], name, lang)
            if key in rows:  # one outbox row per channel, the same letter
                continue
            r = notices.render(p["template"], p["version"], lang, p["context"])
            rows[key] = {
                "case_no": case_no,
                "event_seq": p["event_seq"],
                "name": name,
                "lang": lang,
                "template": p["template"],
                "template_version": p["version"],
                "subject": r.subject,
                "body": r.body,
            }
    return list(rows.values())


def test_every_sent_notice_survives_the_pdf(sent: list[dict[str, Any]]) -> None:
    assert {r["lang"] for r in sent} == {"zh", "en"}
    assert len({r["template"] for r in sent}) >= 20, "the demo sends most kinds of notice"
    for row in sent:
        response = pdf_response(row)
        footer = (
            f"案件编号 {row['case_no']} · {row['template']} v{row['template_version']} · redress"
        )
        assert isinstance(response.body, bytes)
        check_pdf(response.body, shown(row["body"], footer))


def test_a_char_the_font_lacks_is_caught() -> None:
    """The check itself: a character without a glyph (here a private-use one) fails it."""
    body = "<p>缺字\ue000测试</p>"
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check_pdf(notice_pdf("缺字", body), shown(body))


def test_the_font_is_loaded_once() -> None:
    for subject in ("一", "二", "三"):
        notice_pdf(subject, f"<p>{subject}</p>")
    # One parse per process: every PDF after the first reuses the registered font.
    assert pdf.font.cache_info().misses == 1
    assert pdfmetrics.getFont(pdf.FONT) is pdf.font()
