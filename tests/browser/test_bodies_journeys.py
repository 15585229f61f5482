"""The two procedures of the bodies of seed 000 item 2, each in one browser session:

1. a complaint filed and followed on a phone, registered, accepted, referred for identification
   and answered in the console, then taken to re-examination by the complainant;
2. an identification worked through the console by the lead department, the special task group
   and the leading group, with the party stating its case and reporting its rectification on the
   portal.

Every Chinese page visited is checked for stored codes showing through its words. Two faults
outside the pages these journeys own were pinned by tests at the end (now fixed).
"""

from __future__ import annotations

import json
import re
import uuid
from io import BytesIO
from typing import Any

import pytest
import sqlalchemy as sa
from browser_support import DESKTOP, PHONE, Site, shoot
from pypdf import PdfReader
from test_console_pages import _login

from engine.applicants import authenticate
from engine.demo import IDENTIFICATION_PATHS, drive, open_complaint, open_identification
from engine.factory import build_delivery
from engine.service import SYSTEM
from states.errors import RedressError
from states.identifiers import make_uscc

# Stored codes that must never show in a Chinese page (choices, states, roles, notices, fields).
CODES = (
    "web",
    "hotline_12345",
    "government",
    "civil_servant",
    "enterprise",
    "person",
    "named",
    "anonymous",
    "anonymous_code",
    "substantiated",
    "partly_substantiated",
    "unsubstantiated",
    "received",
    "registered",
    "handling",
    "replied",
    "reexamining",
    "complaint_receipt",
    "complaint_acceptance",
    "complaint_reply",
    "referral_reasons",
    "lead_department",
    "task_group",
    "leading_group",
    "government_sanction",
    "serious",
    "general",
    "proposed",
    "notified",
    "statement_review",
    "task_group_review",
    "awaiting_approval",
    "rectifying",
    "rectification_check",
    "rectified",
    "prior_notice",
    "identification_decision",
    "rectification_order",
    "rectification_result",
    "proposed_measures",
    "publicity_months",
    "source_category",
    "legal_basis",
    "measures",
    "severity",
    "published",
    "amr",
    "office",
    "approved_by",
)
# A code standing as a word of its own: not part of a user's name such as amr_lead_department.
_CODE = re.compile(r"(?<![A-Za-z0-9_@.])(" + "|".join(CODES) + r")(?![A-Za-z0-9_])")
# English the Chinese console shows on purpose: the English copy of each notice sent, and a
# record version's bilingual reason ("严重失信认定，公示 / serious dishonesty identified, ...").
_ENGLISH_COPY = re.compile(r"^.*· 英文 ·.*$| / [a-z][a-z ,]*(?=\t|$)", re.M)
# Sections of the console case page the code check skips (none: every value is in words).
CONSOLE_KNOWN: tuple[str, ...] = ()


def _no_codes(page: Any, where: str, skip: tuple[str, ...] = ()) -> None:
    """No stored code in the words the page shows (sections in `skip` hidden while read)."""
    for sel in skip:
        page.eval_on_selector_all(sel, "els => els.forEach(e => { e.style.display = 'none' })")
    try:
        text = _ENGLISH_COPY.sub("", page.inner_text("body"))
    finally:
        for sel in skip:
            page.eval_on_selector_all(sel, "els => els.forEach(e => { e.style.display = '' })")
    shown = sorted(set(_CODE.findall(text)))
    assert not shown, (where, page.url, shown)


def _visit(page: Any, name: str, skip: tuple[str, ...] = ()) -> None:
    """A main page: no codes in its words, and its screenshots at both widths."""
    _no_codes(page, name, skip)
    shoot(page, name)


def _console(page: Any, name: str) -> None:
    _visit(page, name, CONSOLE_KNOWN)


def _act(page: Any, trigger: str, fields: dict[str, str] | None = None, *, ok: bool = True) -> None:
    """Fire a console action; a select is chosen by the words it shows."""
    for name, value in (fields or {}).items():
        selector = f"#f-{trigger}-{name}"
        if page.locator(f"select{selector}").count():
            page.select_option(selector, label=value)
        else:
            page.fill(selector, value)
    page.click(f"#action-{trigger} button[type=submit]")
    page.wait_for_load_state()
    if ok:
        assert page.locator("#actions .err").count() == 0, page.inner_text("#actions")[:2000]
        assert f"done={trigger}" in page.url, page.url


def _portal_step(page: Any, trigger: str, fields: dict[str, str]) -> None:
    """A step the status page offers the applicant with a form made from its fields."""
    section = f"#act-{trigger}"
    for name, value in fields.items():
        page.fill(f"{section} #f-{name}", value)
    page.click(f"{section} button[type=submit]")
    page.wait_for_selector(".alert.ok")


def _follow(page: Any, site: Site, case_no: str, code: str) -> None:
    """Sign in to a case on the home page, as someone coming back to it would."""
    page.context.clear_cookies()
    page.goto(site.url + "/")
    page.fill("#follow #f-case_no", case_no)
    page.fill("#follow #f-access_code", code)
    page.click("#follow button[type=submit]")
    page.wait_for_url(f"**/status/{case_no}")


def _open_from_queue(page: Any, site: Site, case_no: str) -> None:
    page.goto(site.url + f"/console?case_no={case_no}")
    page.click(f"a:has-text('{case_no}')")
    page.wait_for_url("**/console/cases/*")


def _pdf_text(page: Any, site: Site, link: Any) -> str:
    """The text of a notice's PDF, fetched in the page's own session."""
    answer = page.request.get(site.url + str(link.get_attribute("href")))
    assert answer.status == 200 and answer.body().startswith(b"%PDF")
    reader = PdfReader(BytesIO(answer.body()))
    return "".join("".join(p.extract_text().split()) for p in reader.pages)


def _desk(browser: Any, site: Site, who: str) -> Any:
    """A staff member's own console session at desktop width."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    desk = context.new_page()
    _login(desk, site, who)
    return desk


def _phone(browser: Any) -> Any:
    return browser.new_context(viewport=PHONE, locale="zh-CN").new_page()


def _fill_complaint(page: Any, identity: str, subject: str, grounds: str) -> None:
    page.check(f"input[name=identity][value={identity}]")
    page.select_option("#f-subject_kind", label="政府机构")
    page.fill("#f-subject_name", subject)
    page.fill("#f-grounds", grounds)
    page.check("input[name=commitment_signed]")


def _case_id(site: Site, case_no: str) -> int:
    with site.engine.db.read() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM cases WHERE case_no = :n"), {"n": case_no}
            ).scalar_one()
        )


def test_complaint_filed_on_a_phone_referred_answered_and_reexamined(
    site: Site, browser: Any
) -> None:
    phone = _phone(browser)
    desks: list[Any] = []
    try:
        # The portal's home offers the complaint form.
        phone.goto(site.url + "/")
        card = phone.locator("#intake-complaint")
        assert card.count() == 1 and "投诉举报" in card.inner_text()
        assert card.locator("a").get_attribute("href") == "/complain"
        _visit(phone, "bodies-portal-home")
        card.locator("a").click()
        phone.wait_for_url("**/complain")
        assert "如实投诉承诺" in phone.inner_text("main")
        kinds = phone.inner_text("#f-subject_kind")
        assert "政府机构" in kinds and "公务员" in kinds  # the procedure's own words
        _fill_complaint(
            phone,
            "anonymous_code",
            "某区城市管理局",
            "该局拖欠我公司工程款两年未付，多次催讨无果。",
        )
        _visit(phone, "bodies-complain")
        phone.click("form.apply-form button[type=submit]")
        phone.wait_for_selector("#case-no")
        case_no = phone.inner_text("#case-no").strip()
        code = phone.inner_text("#access-code").strip()
        assert case_no.startswith("TS") and code
        assert phone.inner_text("h1") == "投诉举报已提交"
        assert "投诉举报" in phone.inner_text("main") and "只显示这一次" in phone.inner_text("main")
        assert phone.locator("#no-code").count() == 0
        _visit(phone, "bodies-complaint-filed")
        case_id = authenticate(site.engine, case_no, code).case_id
        assert case_id is not None
        view = site.engine.case_view(case_id, SYSTEM)
        assert view["state"] == "received"
        assert view["data"]["channel"] == "web" and view["data"]["subject_kind"] == "government"
        assert view["applicant"].get("anonymous") is True

        # The complainant follows the case from the home page; the receipt is there once sent.
        build_delivery(site.engine).deliver()
        _follow(phone, site, case_no, code)
        assert phone.inner_text("#state-label") == "已收到"
        assert "15日内登记" in phone.inner_text("#summary")
        receipt = phone.locator("#notices a[data-notice='complaint_receipt']")
        assert receipt.count() == 1 and "收件回执" in receipt.inner_text()
        assert phone.locator("#withdraw").count() == 1
        _visit(phone, "bodies-complaint-status-received")

        # The office registers and accepts it.
        handler = _desk(browser, site, "office_handler")
        desks.append(handler)
        _open_from_queue(handler, site, case_no)
        case_url = handler.url
        assert handler.inner_text("#case-state") == "已收到"
        assert "某区城市管理局" in handler.inner_text("#applicant")
        _console(handler, "bodies-console-complaint-received")
        _act(handler, "register", {"route_note": "转市信用办办理"})
        assert handler.inner_text("#case-state") == "已登记转办"
        _act(handler, "accept")
        assert handler.inner_text("#case-state") == "办理中"

        # It is referred for identification to the market regulator: not without the
        # subject's code (the identification needs it), which is asked for beside its field.
        options = handler.inner_text("#f-refer_identification-lead_department")
        assert "市市场监管局" in options and "amr" not in options
        _console(handler, "bodies-console-complaint-handling")
        reasons = "经核实，该局拖欠企业账款两年未付"
        referral = {"lead_department": "市市场监管局", "referral_reasons": reasons}
        _act(handler, "refer_identification", referral, ok=False)
        assert handler.locator("#err-refer_identification-subject_identifier").count() == 1
        assert "统一社会信用代码" in handler.inner_text(
            "#err-refer_identification-subject_identifier"
        )
        chosen = handler.eval_on_selector(
            "#f-refer_identification-lead_department",
            "s => s.options[s.selectedIndex].text",
        )
        assert chosen == "市市场监管局"  # the form keeps what was chosen
        assert handler.input_value("#f-refer_identification-referral_reasons") == reasons
        assert handler.locator("#links").count() == 0
        _console(handler, "bodies-console-complaint-refer-error")
        uscc = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
        _act(handler, "refer_identification", {"subject_identifier": uscc})
        assert handler.inner_text("#case-state") == "办理中"
        assert handler.locator("#action-refer_identification").count() == 0  # once only
        links = handler.locator("#links li")
        assert links.count() == 1
        ident_no = links.first.get_attribute("data-case-no")
        assert ident_no and ident_no.startswith("RD")
        linked = handler.inner_text("#links")
        assert ident_no in linked and "严重失信认定" in linked and "已立案" in linked
        assert "由本案移送立案" in linked

        # The office answers; the reply's delivery is recorded with its date.
        _act(
            handler,
            "conclude",
            {"finding": "属实", "reply": "经调查核实，反映情况属实，已责令整改"},
        )
        assert handler.inner_text("#case-state") == "已答复"
        assert handler.get_attribute("#f-record_delivery-delivered_on", "type") == "date"
        _console(handler, "bodies-console-complaint-replied")
        view = site.engine.case_view(case_id, SYSTEM)
        assert view["state"] == "replied" and view["data"]["finding"] == "substantiated"
        assert view["data"]["referred"] is True

        # The identification it opened, seen by its lead department, links back.
        ident_id = _case_id(site, ident_no)
        ident = site.engine.case_view(ident_id, SYSTEM)
        assert ident["procedure"] == "identification" and ident["department_id"] == "amr"
        assert ident["state"] == "opened" and ident["data"]["facts"] == reasons
        assert ident["applicant"]["identifier"] == uscc
        assert ident["applicant"]["name"] == "某区城市管理局"
        assert ident["applicant"]["kind"] == "government"
        lead = _desk(browser, site, "amr_lead_department")
        desks.append(lead)
        lead.goto(site.url + f"/console/cases/{ident_id}")
        assert lead.inner_text("#case-state") == "已立案"
        back = lead.inner_text("#links")
        assert case_no in back and "投诉举报" in back and "本案移送自" in back
        assert lead.locator(f"#links li[data-case-no='{case_no}']").count() == 1
        # Each side links to the other where its user may open it (else the number alone).
        sides = (
            (handler, "office_handler", case_id, ident_id),
            (lead, "amr_lead_department", ident_id, case_id),
        )
        for desk, who, me, other in sides:
            desk.goto(site.url + f"/console/cases/{me}")
            visible = site.engine.case_view(me, site.staff.actors[who])["links"][0]["visible"]
            anchors = desk.locator("#links li a")
            assert anchors.count() == int(visible)
            if visible:
                assert anchors.first.get_attribute("href") == f"/console/cases/{other}"
        assert reasons in lead.inner_text("#applicant")
        _console(lead, "bodies-console-referred-identification")

        # The reply reaches the complainant, who asks for a re-examination.
        build_delivery(site.engine).deliver()
        handler.goto(case_url)
        _act(handler, "record_delivery", {"delivered_on": site.engine.today().isoformat()})
        assert handler.inner_text("#case-state") == "已答复"
        phone.reload()
        assert phone.inner_text("#state-label") == "已答复"
        assert "复查" in phone.inner_text("#todo")
        assert "请求复查期限" in phone.inner_text("#next-step")
        reply = phone.locator("#notices a[data-notice='complaint_reply']")
        assert reply.count() == 1 and "答复意见书" in reply.inner_text()
        text = _pdf_text(phone, site, reply)
        assert case_no in text and "已责令整改" in text
        timeline = phone.inner_text("#timeline")
        assert "办结并答复" in timeline
        assert "移送严重失信认定" not in timeline  # not the complainant's to see
        assert phone.locator("#act-request_reexamination #f-reexam_grounds").count() == 1
        _visit(phone, "bodies-complaint-status-replied")
        # Sent empty, the step's form comes back with the need beside its field.
        phone.click("#act-request_reexamination button[type=submit]")
        phone.wait_for_selector("#act-request_reexamination #err-reexam_grounds")
        assert "必填" in phone.inner_text("#err-reexam_grounds")
        assert phone.inner_text("#state-label") == "已答复"
        _portal_step(
            phone, "request_reexamination", {"reexam_grounds": "不认可办理结果，拖欠仍未支付"}
        )
        assert "请求复查" in phone.inner_text(".alert.ok")
        assert phone.inner_text("#state-label") == "复查中"
        assert phone.locator("#act-request_reexamination").count() == 0
        _visit(phone, "bodies-complaint-status-reexamining")
        view = site.engine.case_view(case_id, SYSTEM)
        assert view["state"] == "reexamining"
        assert view["data"]["reexam_grounds"] == "不认可办理结果，拖欠仍未支付"
        handler.goto(case_url)
        assert handler.inner_text("#case-state") == "复查中"
        _console(handler, "bodies-console-complaint-reexamining")
    finally:
        for desk in desks:
            desk.context.close()
        phone.context.close()


def test_anonymous_complaint_without_an_access_code(site: Site, browser: Any) -> None:
    phone = _phone(browser)
    try:
        phone.goto(site.url + "/complain")
        _fill_complaint(phone, "anonymous", "某区城市管理局", "该局工作人员违规收受礼金。")
        phone.click("form.apply-form button[type=submit]")
        phone.wait_for_selector("#case-no")
        case_no = phone.inner_text("#case-no").strip()
        assert phone.locator("#no-code").count() == 1
        assert "无法查询办理进度" in phone.inner_text("#no-code")
        assert phone.locator("#access-code").count() == 0
        assert phone.locator(f"a[href='/status/{case_no}']").count() == 0
        _visit(phone, "bodies-complaint-filed-no-code")
        # Nothing signed in: the case's status page goes back to the sign-in form.
        phone.goto(site.url + f"/status/{case_no}")
        assert phone.url.endswith("/status")
        view = site.engine.case_view(_case_id(site, case_no), SYSTEM)
        assert view["state"] == "received" and view["applicant"].get("anonymous") is True
    finally:
        phone.context.close()


def _prior_notice_code(site: Site, case_id: int) -> str:
    with site.engine.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT channel, payload FROM outbox WHERE name = 'prior_notice' AND case_id = :c"
            ),
            {"c": case_id},
        ).all()
    # One letter on each channel the party is reached by: the status page and the mail.
    assert sorted(r[0] for r in rows) == ["email", "inapp"]
    codes = {json.loads(r[1])["context"]["access_code"] for r in rows}
    assert len(codes) == 1
    code = codes.pop()
    assert isinstance(code, str) and code
    return code


def test_identification_worked_by_the_four_bodies_and_the_party(site: Site, browser: Any) -> None:
    opened = open_identification(
        site.engine, site.staff, "government", "某区城市管理局", "party@example.com"
    )
    case_id, case_no = opened.case_id, opened.case_no

    def state() -> str:
        return str(site.engine.case_view(case_id, SYSTEM)["state"])

    phone = _phone(browser)
    desks: list[Any] = []
    try:
        # The lead department proposes its preliminary opinion and tells the party.
        lead = _desk(browser, site, "amr_lead_department")
        desks.append(lead)
        _open_from_queue(lead, site, case_no)
        case_url = lead.url
        assert lead.inner_text("#case-state") == "已立案"
        _console(lead, "bodies-console-identification-opened")
        _act(
            lead,
            "propose",
            {
                "legal_basis": "国办发〔2020〕49号；政务诚信建设实施方案",
                "proposed_measures": "限制评优评先\n通报批评",
                "source_category": "政务处分",
                "publicity_months": "12",
            },
        )
        assert lead.inner_text("#case-state") == "已提出初步意见"
        _act(lead, "send_prior_notice")
        assert lead.inner_text("#case-state") == "已事先告知"
        assert state() == "notified"
        build_delivery(site.engine).deliver()
        code = _prior_notice_code(site, case_id)
        # The party's code comes with the prior notice; the one made at opening is void.
        assert opened.access_code and opened.access_code != code
        with pytest.raises(RedressError):
            authenticate(site.engine, case_no, opened.access_code)
        _console(lead, "bodies-console-identification-notified")

        # The party signs in with the code from the prior notice and states its case.
        _follow(phone, site, case_no, code)
        assert phone.inner_text("#state-label") == "已事先告知"
        assert "陈述申辩" in phone.inner_text("#todo")
        notice = phone.locator("#notices a[data-notice='prior_notice']")
        assert notice.count() == 1 and "事先告知书" in notice.inner_text()
        text = _pdf_text(phone, site, notice)
        assert code in text and case_no in text and "限制评优评先" in text
        assert phone.locator("#act-file_statement #f-statement").count() == 1
        _visit(phone, "bodies-identification-status-notified")
        _portal_step(
            phone, "file_statement", {"statement": "拖欠款项系财政资金未到位所致，已制定还款计划"}
        )
        assert phone.inner_text("#state-label") == "陈述申辩核查中"
        assert phone.locator("#act-file_statement").count() == 0
        assert state() == "statement_review"

        # The lead department answers the statement and sends the case to the task group.
        lead.goto(case_url)
        _act(lead, "reject_statement", {"statement_answer": "还款计划未落实，陈述申辩理由不成立"})
        assert lead.inner_text("#case-state") == "专责小组审议中"
        assert state() == "task_group_review"

        # The special task group, in the credit office, finds it in its own queue.
        group = _desk(browser, site, "office_task_group")
        desks.append(group)
        row = group.locator(f"tr[data-case-no='{case_no}']")
        assert row.count() == 1 and "专责小组审议中" in row.inner_text()
        _visit(group, "bodies-console-task-group-queue")
        row.locator(f"a:has-text('{case_no}')").click()
        group.wait_for_url("**/console/cases/*")
        assert group.inner_text("#case-state") == "专责小组审议中"
        _act(group, "form_opinion", {"opinion": "拖欠中小企业账款，情节严重，建议认定为严重失信"})
        assert group.inner_text("#case-state") == "提请审定"
        assert state() == "awaiting_approval"

        # The leading group approves: the decision makes a serious record with its measures.
        leaders = _desk(browser, site, "office_leading_group")
        desks.append(leaders)
        leaders.goto(case_url)
        _act(
            leaders,
            "approve",
            {"rectification_requirements": "三十个工作日内付清拖欠账款并公开致歉"},
        )
        assert leaders.inner_text("#case-state") == "限期整改中"
        record = leaders.inner_text("#record")
        assert "严重" in record and "政务处分" in record and "公示中" in record
        assert "某区城市管理局" in record
        _console(leaders, "bodies-console-identification-decided")
        view = site.engine.case_view(case_id, SYSTEM)
        assert view["state"] == "rectifying" and view["record"] is not None
        assert view["record"]["severity"] == "serious"
        assert view["record"]["content"]["measures"] == ["限制评优评先", "通报批评"]

        # The party sees the decision and the order, and reports the rectification.
        build_delivery(site.engine).deliver()
        phone.reload()
        assert phone.inner_text("#state-label") == "限期整改中"
        assert "整改" in phone.inner_text("#todo")
        for name in ("identification_decision", "rectification_order"):
            assert phone.locator(f"#notices a[data-notice='{name}']").count() == 1, name
        notices = phone.inner_text("#notices")
        assert "认定决定书" in notices and "整改通知书" in notices
        order = phone.locator("#notices a[data-notice='rectification_order']")
        assert "付清拖欠账款" in _pdf_text(phone, site, order)
        _visit(phone, "bodies-identification-status-rectifying")
        _portal_step(
            phone,
            "report_rectification",
            {"rectification_report": "拖欠账款已全部付清，已在门户网站致歉"},
        )
        assert phone.inner_text("#state-label") == "整改验收中"
        assert state() == "rectification_check"

        # The lead department accepts the rectification.
        lead.goto(case_url)
        _act(lead, "accept_rectification", {"check_opinion": "经核查，整改到位"})
        assert lead.inner_text("#case-state") == "整改已验收"
        _console(lead, "bodies-console-identification-rectified")
        phone.reload()
        assert phone.inner_text("#state-label") == "整改已验收"
        assert "信用修复" in phone.inner_text("#summary")
        assert phone.locator("section[id^=act-]").count() == 0
        _visit(phone, "bodies-identification-status-rectified")

        view = site.engine.case_view(case_id, SYSTEM)
        assert view["state"] == "rectified" and view["closed"]
        assert view["data"]["rectification_passed"] is True
        assert view["data"]["proposed_measures"] == ["限制评优评先", "通报批评"]
        assert view["data"]["source_category"] == "government_sanction"
        assert view["data"]["publicity_months"] == 12
        assert view["data"]["approved_by"]["name"] == "office_leading_group"
        assert view["record"]["content"]["rectification"]["status"] != "required"
    finally:
        for desk in desks:
            desk.context.close()
        phone.context.close()


# -- known faults outside these journeys' pages ------------------------------------------------


def test_the_rectification_result_reaches_the_party(site: Site) -> None:
    opened = open_identification(site.engine, site.staff, "government", "某区城市管理局")
    drive(
        site.engine, site.staff, opened.case_id, "identification", IDENTIFICATION_PATHS["rectified"]
    )
    build_delivery(site.engine).deliver()
    with site.engine.db.read() as conn:
        made = conn.execute(
            sa.text("SELECT count(*) FROM notices WHERE case_id = :c AND name = :n"),
            {"c": opened.case_id, "n": "rectification_result"},
        ).scalar_one()
    assert made == 2  # zh and en


def test_the_console_case_page_shows_the_bodies_cases_in_words(site: Site, page: Any) -> None:
    complaint = open_complaint(site.engine, site.staff)
    uscc = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    refer = {"lead_department": "amr", "referral_reasons": "拖欠", "subject_identifier": uscc}
    drive(
        site.engine,
        site.staff,
        complaint.case_id,
        "complaint",
        ["register", "accept", "refer_identification", "conclude"],
        {"refer_identification": refer},
    )
    ident = open_identification(site.engine, site.staff, "government", "某区城市管理局")
    drive(
        site.engine, site.staff, ident.case_id, "identification", IDENTIFICATION_PATHS["rectifying"]
    )
    _login(page, site, "office_handler")
    page.goto(site.url + f"/console/cases/{complaint.case_id}")
    head = page.inner_text("main > p.muted")
    assert "None" not in head  # 认定单位 of a case without a record
    assert "calendar days" not in page.inner_text("#deadlines")  # periods in English
    shown = page.inner_text("#applicant") + page.inner_text("#timeline")
    assert "12345政务服务便民热线" in shown and "政府机构" in shown and "属实" in shown
    assert "市市场监管局" in shown
    _no_codes(page, "console complaint")
    _login(page, site, "amr_lead_department")
    page.goto(site.url + f"/console/cases/{ident.case_id}")
    assert "取消当年荣誉评选资格" in page.inner_text("#record")
    assert "政务处分" in page.inner_text("#applicant")
    _no_codes(page, "console identification")
