"""Every visible word of the main pages in the page's language, in a real browser.

The portal and the console are visited in Chinese and in English with cases, records, notices,
attachments and staff made by the fixtures. A Chinese page fails on any Latin-letter word in
its visible text (`inner_text`, and the title and aria-label a reader meets), an English page
on any Chinese character or full-width punctuation, or a stored code (`snake_case`), except
inside elements marked `translate="no"`: what a person typed or what is an identifier (names,
user names, emails, identifiers, case numbers, file names, tokens, a notice's subject in the
other language, the text of records and grounds, a law's title). Labels, headings, buttons,
states, choices and dates' words are never marked: a stored code or an untranslated word on
them fails here. A short list of Latin words belongs on a Chinese page too (file formats,
units, the product and a diagram format's name).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import DESKTOP, Site
from test_console_pages import APPLICANT, _drive, _login, _open

from engine.attachments import Attachments
from engine.demo import IDENTIFICATION_PATHS, drive, open_complaint, open_identification
from engine.factory import build_delivery
from engine.service import SYSTEM
from states.identifiers import make_uscc

# Latin words a Chinese page may show: file formats and units (PDF、JPEG … 10 MB, 12.5 KB),
# the digest's name (SHA-256), the product's name and the diagram format's (Mermaid).
ZH_LATIN = frozenset({"PDF", "JPEG", "PNG", "OFD", "DOCX", "KB", "MB", "SHA-256", "redress"})
ZH_LATIN |= {"Mermaid"}
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.'][A-Za-z0-9]+)*")
# Chinese characters and the full-width punctuation of Chinese text (：，。（）、；).
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
CODE_WORD = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # a stored code: credit_office, verifying_x

# The page's words with every verbatim element ([translate=no]) taken out of the page while
# they are read (hidden is not enough: a <select> still reads out a hidden <option>), then put
# back as it was, each select's choice too.
_TAKE_OUT = """() => {
  const selects = [...document.querySelectorAll('select')].map(s => [s, s.selectedIndex]);
  const out = [];
  for (const el of document.querySelectorAll('[translate=no]')) {
    if (el.parentElement && el.parentElement.closest('[translate=no]')) continue;
    const mark = document.createComment('verbatim');
    el.replaceWith(mark);
    out.push([el, mark]);
  }
  window.__verbatim = {out, selects};
}"""
_PUT_BACK = """() => {
  const {out, selects} = window.__verbatim;
  for (const [el, mark] of out) mark.replaceWith(el);
  for (const [s, i] of selects) s.selectedIndex = i;
  delete window.__verbatim;
}"""
_ATTRIBUTES = """() => [...document.querySelectorAll('[title], [aria-label]')]
  .map(e => [e.getAttribute('title'), e.getAttribute('aria-label')].filter(Boolean).join('\\n'))"""


def shown_words(page: Any) -> str:
    page.evaluate(_TAKE_OUT)
    try:
        text = str(page.inner_text("body"))
        attrs = page.evaluate(_ATTRIBUTES)
    finally:
        page.evaluate(_PUT_BACK)
    return "\n".join([text, *attrs])


def foreign_words(text: str, lang: str) -> list[str]:
    """The words of `text` not in `lang` (each with the line it stands on, to find it)."""
    found: list[str] = []
    for line in text.splitlines():
        if lang == "zh":
            bad = [w for w in LATIN_WORD.findall(line) if w not in ZH_LATIN]
        else:
            bad = CJK.findall(line) + CODE_WORD.findall(line)
        found += [f"{w!r} in {line.strip()[:120]!r}" for w in bad]
    return list(dict.fromkeys(found))


class Pages:
    """Visits pages in one language, collecting the foreign words of each."""

    def __init__(self, page: Any, site: Site, lang: str) -> None:
        self.page, self.site, self.lang = page, site, lang
        self.faults: dict[str, list[str]] = {}
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state()
        assert self.page.locator("html").get_attribute("lang") == (
            "zh-CN" if self.lang == "zh" else "en"
        ), (name, self.page.url)
        self.seen.append(name)
        bad = foreign_words(shown_words(self.page), self.lang)
        if bad:
            self.faults[f"{name} ({self.page.url})"] = bad

    def visit(self, name: str, path: str) -> None:
        answer = self.page.goto(self.site.url + path)
        assert answer is not None and answer.status < 400, (name, path, answer and answer.status)
        self.check(name)

    def verdict(self) -> None:
        report = "\n".join(
            f"{where}:\n  " + "\n  ".join(words) for where, words in self.faults.items()
        )
        assert not self.faults, f"{self.lang} pages show words of another language:\n{report}"


def _context(browser: Any, lang: str) -> Any:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN" if lang == "zh" else "en-GB")
    context.add_cookies([{"name": "lang", "value": lang, "url": "http://127.0.0.1"}])
    return context


def _record(site: Site, name: str = "上海示例贸易有限公司") -> tuple[int, str]:
    ident = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    published = site.engine.today() - timedelta(days=150)
    rid = site.engine.create_record(
        actor=site.staff.actors["office_credit_office"],
        subject_kind="enterprise",
        subject_name=name,
        subject_identifier=ident,
        source_category="administrative_penalty",
        severity="general",
        determining_unit="amr",
        decision_date=published,
        published_from=published,
        content={"summary": "未按规定公示年度报告", "measures": ["限制评优评先", "通报批评"]},
    )
    return rid, ident


def _rich_case(site: Site) -> int:
    """An objection with a record, events of several people, a paused deadline, an upload,
    an extension request and notices in both languages, delivered."""
    case_id = _open(site)
    _drive(site, case_id, [("accept", "office_handler"), ("mark_disputed", "office_handler")])
    handler = site.staff.actors["office_handler"]
    site.engine.assign(case_id, handler.user_id, site.staff.actors["office_head"])
    Attachments(site.engine).add_many(case_id, handler, [("核查材料.pdf", b"%PDF-1.4\n%%EOF\n")])
    version = site.engine.case_view(case_id, handler)["version"]
    site.engine.advance(
        case_id, "request_extension", handler, {"days": 5, "reason": "需调取外单位材料"}, version
    )
    build_delivery(site.engine).deliver()
    return case_id


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_portal_speaks_one_language(site: Site, browser: Any, lang: str) -> None:
    _record_id, ident = _record(site)
    # A case followed by its applicant: documents asked for, the notices delivered.
    rid, _ = _record(site, "浦江建设工程有限公司")
    opened = site.engine.open_case(
        procedure="objection",
        record_id=rid,
        applicant=APPLICANT,
        actor=site.staff.actors["office_handler"],
        payload={"grounds": "处罚决定已撤销", "commitment_signed": True},
    )
    handler = site.staff.actors["office_handler"]
    site.engine.advance(
        opened.case_id,
        "request_supplement",
        handler,
        {"items": ["营业执照副本"]},
        site.engine.case_view(opened.case_id, handler)["version"],
    )
    build_delivery(site.engine).deliver()
    context = _context(browser, lang)
    pages = Pages(context.new_page(), site, lang)
    page = pages.page
    try:
        pages.visit("home", "/")
        page.fill("#f-subject", ident)
        page.click("#find button[type=submit]")
        page.wait_for_selector("#results")
        pages.check("search results")
        page.click("#results li.can[data-possible=yes] a >> nth=0")
        page.wait_for_selector("form.apply-form")
        pages.check("apply form")
        page.select_option("#f-kind", "enterprise")
        page.fill("#f-name", "上海示例贸易有限公司")
        page.fill("#f-identifier", ident)
        page.fill("#f-email", "legal@example.com")
        page.fill("#f-grounds", "该处罚决定已被撤销。")
        page.check("input[name=commitment_signed]")
        for box in page.locator("form.apply-form .field.check input[type=checkbox]").all():
            box.check()
        page.click("form.apply-form button[type=submit]")
        page.wait_for_selector("#case-no")
        pages.check("filed")
        pages.visit("complaint form", "/complain")
        page.click("form.apply-form button[type=submit]")  # empty: the errors beside fields
        page.wait_for_selector(".err")
        pages.check("complaint form with errors")
        pages.visit("lost access code", "/access-code")
        pages.visit("home (follow)", "/")
        page.fill("#follow #f-case_no", opened.case_no)
        assert opened.access_code
        page.fill("#follow #f-access_code", opened.access_code)
        page.click("#follow button[type=submit]")
        page.wait_for_url(f"**/status/{opened.case_no}")
        assert page.locator("#notices li").count() >= 1
        pages.check("status")
        page.click("#supplement button[type=submit]")  # nothing sent: asked for again
        page.wait_for_selector("#err-sup-files")
        pages.check("status with an error")
        pages.verdict()
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_console_speaks_one_language(site: Site, browser: Any, lang: str) -> None:
    case_id = _rich_case(site)
    record_id = site.engine.case_view(case_id, SYSTEM)["record"]["id"]
    complaint = open_complaint(site.engine, site.staff)
    uscc = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    refer = {"lead_department": "amr", "referral_reasons": "拖欠", "subject_identifier": uscc}
    steps = ["register", "accept", "refer_identification", "conclude"]
    drive(
        site.engine,
        site.staff,
        complaint.case_id,
        "complaint",
        steps,
        {"refer_identification": refer},
    )
    ident = open_identification(site.engine, site.staff, "government", "某区城市管理局")
    drive(
        site.engine, site.staff, ident.case_id, "identification", IDENTIFICATION_PATHS["rectifying"]
    )
    build_delivery(site.engine).deliver()
    context = _context(browser, lang)
    pages = Pages(context.new_page(), site, lang)
    page = pages.page
    try:
        pages.visit("sign-in", "/console/login")
        page.fill("#f-token", "not-a-token")
        page.click("form[action='/console/login'] button[type=submit]")
        pages.check("sign-in refused")
        _login(page, site, "office_admin")
        pages.check("queue")
        pages.visit("queue, all cases", "/console?status=all&sort=newest")
        pages.visit("queue, bad filters", "/console?due_before=x&sort=x")
        pages.visit("waiting for my approval", "/console?view=approval")
        pages.visit("case", f"/console/cases/{case_id}")
        assert page.locator("#access-log tbody tr").count() >= 1
        assert page.locator("#notices li").count() >= 2 and page.locator("#attachments li")
        pages.visit("complaint case", f"/console/cases/{complaint.case_id}")
        pages.visit("identification case", f"/console/cases/{ident.case_id}")
        page.goto(site.url + f"/console/cases/{case_id}")
        page.click("#action-approve_extension button[type=submit]")
        page.wait_for_url("**done=approve_extension")
        pages.check("case, done")
        pages.visit("dashboard", "/console/dashboard")
        pages.visit("procedures", "/console/procedures")
        page.click("tr[data-jurisdiction=henan][data-name=objection] a")
        page.wait_for_url("**/console/procedures/objection/henan/1")
        pages.check("procedure version")
        pages.visit("records", "/console/records")
        with site.engine.db.read() as conn:
            subject = conn.execute(
                sa.text("SELECT subject_identifier FROM credit_records WHERE id = :i"),
                {"i": record_id},
            ).scalar_one()
        pages.visit("records found", f"/console/records?subject_identifier={subject}")
        pages.visit("record", f"/console/records/{record_id}")
        pages.visit("admin", "/console/admin")
        pages.visit("department", "/console/admin/departments/amr")
        pages.visit("user", "/console/admin/users/office_handler")
        page.click("#add-token button[type=submit]")  # no label: refused beside the field
        pages.check("user, refused")
        answer = page.goto(site.url + "/console/cases/999999")
        assert answer is not None and answer.status == 404
        pages.check("not found")
        pages.verdict()
    finally:
        context.close()


def test_the_check_fails_on_a_word_of_the_other_language() -> None:
    assert foreign_words("待办案件\n状态 published", "zh") == ["'published' in '状态 published'"]
    assert foreign_words("PDF、JPEG；每个文件不超过10 MB · SHA-256 · 第2版", "zh") == []
    assert foreign_words("v2", "zh") and foreign_words("3 KB · rd_", "zh")
    assert foreign_words("Work queue：3", "en") and foreign_words("Status: 公示中", "en")
    assert foreign_words("Role: credit_office", "en") and not foreign_words("Work queue", "en")
