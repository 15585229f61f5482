"""The portal in a real browser, on a phone: the search says what can be filed on each record
before any form and takes the focus to its results; the footer leads staff to the console's
sign-in, which explains the token; an applicant who lost the access code has a new one mailed
(an SMTP server started here) and signs in with it, the old one refused.

Every Chinese page visited is checked for stored codes showing through its words."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from browser_support import PHONE, Site, shoot
from mail_support import Smtp
from playwright.sync_api import expect
from test_bodies_journeys import _no_codes

from engine.applicants import authenticate
from engine.channels import EmailChannel, InAppChannel, LogChannel
from engine.outbox import Delivery, Policy, router
from engine.service import SYSTEM
from states.errors import NotFound
from states.identifiers import make_uscc

APPLICANT = {
    "kind": "enterprise",
    "name": "上海示例贸易有限公司",
    "identifier": make_uscc("91310000MA1FL8XX1"),
    "email": "legal@example.com",
}
OTHER = {**APPLICANT, "name": "丁某咨询有限公司", "email": "ding@example.com"}
INTAKE = {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True}
CODE = re.compile(r"[23456789A-HJ-NP-Z]{10}")


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def _record(site: Site, ident: str, published_from: date) -> int:
    return site.engine.create_record(
        actor=site.staff.actors["office_credit_office"],
        subject_kind="enterprise",
        subject_name="上海示例贸易有限公司",
        subject_identifier=ident,
        source_category="administrative_penalty",
        severity="general",
        determining_unit="amr",
        decision_date=published_from,
        published_from=published_from,
        content={"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
    )


def _open(site: Site, record_id: int | None, applicant: dict[str, Any]) -> Any:
    return site.engine.open_case(
        procedure="objection",
        record_id=record_id,
        applicant=applicant,
        actor=site.staff.actors["office_handler"],
        payload=INTAKE,
    )


def _deliver(site: Site, smtp: Smtp) -> None:
    channels: dict[str, Any] = {
        "log": LogChannel(),
        "inapp": InAppChannel(),
        "email": EmailChannel("127.0.0.1", smtp.port, "credit-office@example.gov.cn", timeout=3),
    }
    Delivery(site.engine, router(channels, {}), Policy(max_attempts=3)).deliver()


def _in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    assert box is not None
    height = page.viewport_size["height"]
    return bool(0 <= box["y"] < height and box["y"] + box["height"] <= height)


def test_search_says_what_can_be_filed_and_takes_the_phone_to_the_results(
    site: Site, phone: Any
) -> None:
    ident = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    old = _record(site, ident, date(2025, 6, 1))
    fresh = _record(site, ident, site.engine.today())
    taken = _record(site, ident, date(2025, 6, 1))
    opened = _open(site, taken, OTHER)

    phone.goto(site.url + "/")
    assert not _in_view(phone, "#follow")  # the page is longer than a phone's screen
    phone.fill("#f-subject", ident)
    phone.click("#find button[type=submit]")
    phone.wait_for_selector("#results")
    # The results' heading has the focus, and is on the screen.
    expect(phone.locator("#results-h")).to_be_focused()
    assert _in_view(phone, "#results-h")
    shoot(phone, "portal-search-outlook")
    _no_codes(phone, "portal search results")

    def item(record_id: int, procedure: str) -> Any:
        return phone.locator(
            f"li.record[data-record-id='{record_id}'] li.can[data-procedure='{procedure}']"
        )

    # Everything possible on the old record, each with its link to the form.
    for proc, action in (("objection", "提出异议"), ("repair", "申请信用修复")):
        assert "现在可以在线提出" in item(old, proc).inner_text()
        assert item(old, proc).locator(f"a:has-text('{action}')").count() == 1
    # Too early for repair: the day it can be, and no link; an objection is open to file.
    early = item(fresh, "repair").inner_text()
    assert "现在不能提出" in early and "最短公示期" in early
    found = re.search(r"最早可于(\d{4}-\d{2}-\d{2})申请", early)
    assert found and date.fromisoformat(found[1]) > site.engine.today()
    assert item(fresh, "repair").locator("a").count() == 0
    assert item(fresh, "objection").locator("a").count() == 1
    # A case open on the record: said, not which nor whose.
    taken_text = item(taken, "objection").inner_text()
    assert (
        "已有办理中的同类案件" in taken_text and item(taken, "objection").locator("a").count() == 0
    )
    page_text = phone.inner_text("body")
    assert opened.case_no not in page_text and OTHER["name"] not in page_text
    # Before any form: no form field of an application on the page.
    assert phone.locator("#results form, #f-grounds, input[type=file]").count() == 0

    # The form of something not possible says so instead of asking for everything first.
    phone.goto(site.url + f"/apply?record_id={fresh}&procedure=repair")
    assert "最早可于" in phone.inner_text("#not-now")
    assert phone.locator("form.apply-form").count() == 0
    _no_codes(phone, "portal apply not now")
    shoot(phone, "portal-apply-not-now")

    # The English page says it in English.
    phone.goto(site.url + "/?lang=en")
    phone.fill("#f-subject", ident)
    phone.click("#find button[type=submit]")
    phone.wait_for_selector("#results")
    assert "cannot be filed now" in item(fresh, "repair").inner_text()
    assert "earliest date to apply" in item(fresh, "repair").inner_text()
    phone.goto(site.url + "/?lang=zh")


def test_the_footer_leads_staff_to_a_sign_in_that_explains_the_token(site: Site, page: Any) -> None:
    page.goto(site.url + "/")
    link = page.locator("footer #staff-link")
    assert link.inner_text() == "工作人员入口"
    link.click()
    page.wait_for_url("**/console/login")
    help_text = page.inner_text("#token-help")
    assert "rd_" in help_text and "系统管理员" in help_text
    assert "过期" in help_text and "停用" in help_text and "申领新的令牌" in help_text
    assert page.locator("footer #staff-link").count() == 0  # not on the console's own pages
    _no_codes(page, "console sign-in")
    shoot(page, "console-login-help")
    page.click("text=English")
    english = page.inner_text("#token-help")
    assert "personal sign-in key" in english and "ask your department's administrator" in english
    page.click("text=中文")
    page.goto(site.url + "/status")
    assert page.locator("footer #staff-link").get_attribute("href") == "/console/login"


def test_a_lost_access_code_is_mailed_again(site: Site, phone: Any, smtp: Smtp) -> None:
    opened = _open(site, _record(site, make_uscc("91310000MA1FLR0R1"), date(2025, 6, 1)), APPLICANT)
    old_code = opened.access_code
    assert old_code is not None
    _deliver(site, smtp)  # the receipt
    smtp.inbox.messages.clear()

    # From the status sign-in, the link to the page.
    phone.goto(site.url + "/status")
    phone.click("#lost-code")
    phone.wait_for_url("**/access-code")
    _no_codes(phone, "portal lost code")
    shoot(phone, "portal-lost-code")
    # A wrong field first: said beside it.
    phone.fill("#f-case_no", opened.case_no)
    phone.fill("#f-contact", "legal at example")
    phone.click("#recover button[type=submit]")
    assert "请输入申请时登记的电子邮箱或手机号码" in phone.inner_text("#err-contact")
    phone.fill("#f-contact", APPLICANT["email"])
    phone.click("#recover button[type=submit]")
    answer = phone.inner_text("#code-requested")
    assert "若信息与案件登记一致，新的查询码已发送" in answer
    _no_codes(phone, "portal code requested")
    shoot(phone, "portal-code-requested")

    # The mail arrives with the new code; the page never showed it.
    _deliver(site, smtp)
    (mail,) = smtp.inbox.messages
    assert mail["To"] == APPLICANT["email"]
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    found = CODE.search(str(part.get_content()).split("新的查询码为", 1)[1])
    assert found is not None
    new_code = found.group(0)
    assert new_code not in phone.content()

    # The old code fails, the new one lets the applicant in.
    phone.goto(site.url + "/")
    phone.fill("#follow #f-case_no", opened.case_no)
    phone.fill("#follow #f-access_code", old_code)
    phone.click("#follow button[type=submit]")
    assert "案件编号或查询码不正确" in phone.inner_text("#err-access_code")
    phone.fill("#follow #f-access_code", new_code)
    phone.click("#follow button[type=submit]")
    phone.wait_for_url(f"**/status/{opened.case_no}")
    assert "查询码已重新发送（申请人申请）" in phone.inner_text("#timeline")
    _no_codes(phone, "portal status after a new code")
    shoot(phone, "portal-status-new-code")
    with pytest.raises(NotFound):
        authenticate(site.engine, opened.case_no, old_code)
    assert site.engine.case_view(opened.case_id, SYSTEM)["state"] == "submitted"

    # An unknown number answers exactly the same.
    phone.goto(site.url + "/access-code")
    phone.fill("#f-case_no", "YY20260407ZZZZZZ")
    phone.fill("#f-contact", APPLICANT["email"])
    phone.click("#recover button[type=submit]")
    assert phone.inner_text("#code-requested") == answer
