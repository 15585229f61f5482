"""Notices as PDF: the stored letter (restricted HTML) laid out on A4 with an embedded Chinese font.

The font is WenQuanYi Micro Hei (文泉驿微米黑, Apache-2.0), shipped in `engine/fonts/` with its
license: TrueType outlines covering every hanzi of GBK, Latin, digits and the full-width
punctuation notices use. reportlab embeds a subset of it in each PDF (only the glyphs that notice
uses, with a ToUnicode map): a notice looks the same in every viewer, and its text stays
extractable, so what a PDF says can be checked. (The built-in CID font STSong-Light used before is
never embedded: viewers without it substituted and showed ⊠ boxes.)
"""

from __future__ import annotations

import io
import re
import threading
from functools import cache
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

FONT = "WenQuanYiMicroHei"
FONT_FILE = Path(__file__).with_name("fonts") / "wqy-microhei.ttc"
FONT_FACE = 0  # face 1 of the collection is the monospaced Micro Hei Mono
_BLOCK = re.compile(r"<(h1|h2|p|li)>(.*?)</\1>", re.S)
# The parsed font is shared and its subsetting moves a read cursor on it, so documents are built
# one at a time (a notice takes milliseconds; the API serves PDFs from a thread pool).
_BUILD = threading.Lock()


@cache
def font() -> TTFont:
    """The font, parsed and registered once per process (about 0.1 s for its 49,531 glyphs)."""
    ttf = TTFont(FONT, str(FONT_FILE), subfontIndex=FONT_FACE)
    # registerFont maps bold and italic to the same face: <b> in a letter does not fail.
    pdfmetrics.registerFont(ttf)
    return ttf


@cache
def _styles() -> dict[str, ParagraphStyle]:
    font()
    # The bullet's font too: ParagraphStyle's default is Helvetica, named but never embedded.
    body = ParagraphStyle(
        "body",
        fontName=FONT,
        bulletFontName=FONT,
        fontSize=11.5,
        leading=19,
        spaceAfter=4,
        wordWrap="CJK",
    )
    return {
        "h1": ParagraphStyle(
            "h1", parent=body, fontSize=17, leading=26, alignment=1, spaceAfter=10
        ),
        "h2": ParagraphStyle("h2", parent=body, fontSize=13.5, leading=21, spaceBefore=6),
        "p": body,
        "li": ParagraphStyle("li", parent=body, leftIndent=14, bulletIndent=4),
        "footer": ParagraphStyle(
            "footer", parent=body, fontSize=8.5, leading=12, textColor="#555555"
        ),
    }


def notice_pdf(subject: str, body: str, footer: str = "") -> bytes:
    """Lay out a stored notice; `body` is the restricted HTML its template produced."""
    styles = _styles()
    story: list[Flowable] = []
    for tag, inner in _BLOCK.findall(body):
        inner = inner.strip()
        if tag == "li":
            story.append(Paragraph(inner, styles["li"], bulletText="•"))
        else:
            story.append(Paragraph(inner, styles[tag]))
    if footer:
        story += [Spacer(1, 8 * mm), Paragraph(footer, styles["footer"])]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=subject,
        author="redress",
        # Else every page starts in Helvetica, a font the PDF would name but not embed.
        initialFontName=FONT,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=20 * mm,
    )
    with _BUILD:
        doc.build(story)
    return out.getvalue()
