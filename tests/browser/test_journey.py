"""The whole journey in one browser session each: the applicant files an objection in the portal
and follows it; a handler in the console asks for a missing document; the applicant supplies it;
the handler accepts, verifies and proposes a decision; a reviewer approves; the handler notifies;
the applicant sees the result and downloads the notice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_support import DESKTOP, Site, shoot
from test_console_pages import _login
from test_portal_pages import PDF, _fill_application, _find, _record

from engine.applicants import authenticate
from engine.factory import build_delivery
from engine.service import SYSTEM


def _act(page: Any, trigger: str, fields: dict[str, str] | None = None) -> None:
    for name, value in (fields or {}).items():
        selector = f"#f-{trigger}-{name}"
        if page.locator(f"select{selector}").count():
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click(f"#action-{trigger} button[type=submit]")
    page.wait_for_load_state()


def test_objection_from_filing_to_the_result_notice(
    site: Site, page: Any, browser: Any, tmp_path: Path
) -> None:
    # The applicant files, with evidence.
    ident = _record(site)
    _find(site, page, ident)
    page.click("#results a:has-text('提出异议')")
    evidence = tmp_path / "撤销决定书.pdf"
    evidence.write_bytes(PDF)
    _fill_application(page, ident, evidence)
    page.click("form.apply-form button[type=submit]")
    page.wait_for_selector("#case-no")
    case_no = page.inner_text("#case-no").strip()
    code = page.inner_text("#access-code").strip()
    page.goto(site.url + "/")
    page.fill("#f-case_no", case_no)
    page.fill("#f-access_code", code)
    page.click("#follow button[type=submit]")
    page.wait_for_url(f"**/status/{case_no}")
    assert page.inner_text("#state-label") == "已提交"

    # A handler finds it in the queue and asks for a missing document.
    office = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    handler = office.new_page()
    _login(handler, site, "office_handler")
    handler.goto(site.url + f"/console?case_no={case_no}")
    handler.click(f"a:has-text('{case_no}')")
    handler.wait_for_url("**/console/cases/*")
    case_url = handler.url
    _act(handler, "request_supplement", {"items": "营业执照副本\n行政处罚撤销决定书"})
    case_id = authenticate(site.engine, case_no, code).case_id
    assert case_id is not None

    def state() -> str:
        return str(site.engine.case_view(case_id, SYSTEM)["state"])

    assert state() == "awaiting_supplement"
    build_delivery(site.engine).deliver()

    # The applicant sees what is missing and supplies it.
    page.reload()
    assert page.inner_text("#state-label") == "待补正"
    assert "营业执照副本" in page.inner_text("#todo")
    page.set_input_files("#f-sup-files", str(evidence))
    page.fill("#f-comment", "已补充营业执照副本与撤销决定书")
    page.click("#supplement button[type=submit]")
    page.wait_for_selector(".alert.ok")

    # The handler accepts, marks the record disputed and proposes a decision.
    handler.goto(case_url)
    _act(handler, "accept")
    _act(handler, "mark_disputed")
    _act(
        handler,
        "propose_decision",
        {
            "outcome": "revoked",
            "reasons": "原处罚决定已被依法撤销",
            "legal_basis": "《行政处罚法》第四十八条",
        },
    )
    assert state() == "decision_proposed", handler.inner_text("main")[:2000]
    shoot(handler, "journey-console-case")

    # A reviewer approves it; the handler sends the result.
    review_desk = browser.new_context(viewport=DESKTOP, locale="zh-CN")  # own session
    reviewer = review_desk.new_page()
    _login(reviewer, site, "office_reviewer")
    reviewer.goto(case_url)
    _act(reviewer, "approve_decision")
    assert state() == "decided", reviewer.inner_text("main")[:3000]
    handler.goto(case_url)
    _act(handler, "notify")
    assert state() == "notified"
    build_delivery(site.engine).deliver()

    # The applicant sees the result and downloads the notice.
    page.reload()
    assert page.inner_text("#state-label") == "已告知结果"
    link = page.locator("#notices a[data-notice='objection_result']")
    assert link.count() == 1
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "result.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    from io import BytesIO

    from pypdf import PdfReader

    text = "".join(
        "".join(p.extract_text().split()) for p in PdfReader(BytesIO(saved.read_bytes())).pages
    )
    assert "异议核查结果告知书" in text and case_no in text and "撤销" in text
    shoot(page, "journey-portal-result")
    office.close()
    review_desk.close()
