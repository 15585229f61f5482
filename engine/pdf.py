"""Notices as PDF: the stored letter (restricted HTML) laid out on A4 with a Chinese font.

The font is reportlab's built-in STSong-Light (an Adobe CID font): nothing to download, and the
text stays extractable, so what a PDF says can be checked.
"""

from __future__ import annotations

import io
import re
from functools import cache

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

FONT = "STSong-Light"
_BLOCK = re.compile(r"<(h1|h2|p|li)>(.*?)</\1>", re.S)


@cache
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    body = ParagraphStyle(
        "body", fontName=FONT, fontSize=11.5, leading=19, spaceAfter=4, wordWrap="CJK"
    )
    return {
        "h1": ParagraphStyle(
            "h1", parent=body, fontSize=17, leading=26, alignment=1, spaceAfter=10
        ),
        "h2": ParagraphStyle("h2", parent=body, fontSize=13.5, leading=21, spaceBefore=6),
        "p": body,
        "li": ParagraphStyle("li", parent=body, leftIndent=14, bulletIndent=4),
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
        story += [
            Spacer(1, 8 * mm),
            Paragraph(
                footer,
                ParagraphStyle(
                    "footer", parent=styles["p"], fontSize=8.5, leading=12, textColor="#555555"
                ),
            ),
        ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=subject,
        author="redress",
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=20 * mm,
    )
    doc.build(story)
    return out.getvalue()
