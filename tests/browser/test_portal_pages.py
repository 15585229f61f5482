"""The applicants' portal in a real browser: find a record, file, follow the case to its end."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from browser_support import Site, shoot

from engine.applicants import authenticate
from engine.demo import drive
from engine.factory import build_delivery
from engine.service import SYSTEM
from states.identifiers import make_uscc

PDF = b"%PDF-1.4\n%%EOF\n"


def _record(site: Site, published_from: date = date(2025, 6, 1)) -> str:
    ident = make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper())
    site.engine.create_record(
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
    return ident


def _find(site: Site, page: Any, ident: str) -> None:
    page.goto(site.url + "/")
    page.fill("#f-subject", ident)
    page.click("#find button[type=submit]")
    page.wait_for_selector("#results")


def _fill_application(page: Any, ident: str, pdf: Path | None = None) -> None:
    page.select_option("#f-kind", "enterprise")
    page.fill("#f-name", "上海示例贸易有限公司")
    page.fill("#f-identifier", ident)
    page.fill("#f-email", "legal@example.com")
    page.fill("#f-phone", "021-12345678")
    page.fill("#f-grounds", "该处罚决定已于2026年3月被撤销，记录应予更正。")
    if pdf is not None:
        page.set_input_files("#f-files", str(pdf))
    page.check("input[name=commitment_signed]")


def _attachments(site: Site, case_id: int) -> list[str]:
    with site.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT filename FROM attachments WHERE case_id = :c ORDER BY id"),
            {"c": case_id},
        )
        return [str(r[0]) for r in rows]


def _version(site: Site, case_id: int) -> int:
    return int(site.engine.case_view(case_id, SYSTEM)["version"])


def test_objection_journey(site: Site, page: Any, tmp_path: Path) -> None:
    ident = _record(site)
    _find(site, page, ident)
    result = page.inner_text("#results")
    assert "上海示例贸易有限公司" in result
    assert "行政处罚" in result and "公示中" in result and "2025-06-01" in result
    assert ident not in result  # masked for the public
    assert ident[:4] in result and "*" in result
    shoot(page, "portal-find")

    page.click("#results a:has-text('提出异议')")
    page.wait_for_selector("form.apply-form")
    assert "异议申诉信用承诺书" in page.inner_text("main")
    evidence = tmp_path / "撤销决定书.pdf"
    evidence.write_bytes(PDF)
    _fill_application(page, ident, evidence)
    shoot(page, "portal-apply")
    page.click("form.apply-form button[type=submit]")
    page.wait_for_selector("#case-no")
    case_no = page.inner_text("#case-no").strip()
    code = page.inner_text("#access-code").strip()
    assert re.fullmatch(r"[A-Z0-9]{4,32}", case_no) and code
    assert "只显示这一次" in page.inner_text("main")
    shoot(page, "portal-filed")

    case_id = authenticate(site.engine, case_no, code).case_id
    assert case_id is not None
    assert site.engine.case_view(case_id, SYSTEM)["state"] == "submitted"
    assert _attachments(site, case_id) == ["撤销决定书.pdf"]

    # Follow the case from the start page, as an applicant coming back would.
    page.context.clear_cookies()
    page.goto(site.url + "/")
    page.fill("#f-case_no", case_no)
    page.fill("#f-access_code", code)
    page.click("#follow button[type=submit]")
    page.wait_for_url(f"**/status/{case_no}")
    assert page.inner_text("#state-label") == "已提交"
    assert page.locator("#withdraw").count() == 1  # an open objection can be withdrawn
    assert "提交申请" in page.inner_text("#timeline")
    shoot(page, "portal-status")

    # A handler asks for a missing document.
    site.engine.advance(
        case_id,
        "request_supplement",
        site.staff.actors["office_handler"],
        {"items": ["营业执照副本"]},
        _version(site, case_id),
    )
    build_delivery(site.engine).deliver()
    page.reload()
    assert page.inner_text("#state-label") == "待补正"
    assert "营业执照副本" in page.inner_text("#todo")
    assert page.locator("#notices li").count() >= 1
    page.set_input_files("#f-sup-files", str(evidence))
    page.fill("#f-comment", "已补充营业执照副本")
    shoot(page, "portal-status-supplement")
    page.click("#supplement button[type=submit]")
    page.wait_for_selector(".alert.ok")
    assert "补正材料已提交" in page.inner_text(".alert.ok")
    assert page.inner_text("#state-label") != "待补正"
    assert page.locator("#supplement").count() == 0
    assert _attachments(site, case_id) == ["撤销决定书.pdf", "撤销决定书.pdf"]

    # The office decides and notifies; the notices go out.
    drive(
        site.engine,
        site.staff,
        case_id,
        "objection",
        ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"],
    )
    build_delivery(site.engine).deliver()
    page.reload()
    assert page.inner_text("#state-label") == "已告知结果"
    links = page.locator("#notices a")
    assert links.count() >= 2
    result_link = page.locator("#notices a[data-notice='objection_result']")
    assert result_link.count() == 1
    href = result_link.get_attribute("href")
    pdf = page.request.get(site.url + href)
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    with page.expect_download() as download:
        result_link.click()
    assert download.value.suggested_filename.endswith(".pdf")
    shoot(page, "portal-status-result")

    # The English switch on the status page.
    page.click("text=English")
    assert page.inner_text("#state-label") == "Result notified"
    page.click("text=中文")


def test_repair_too_early_shows_the_earliest_date(site: Site, page: Any) -> None:
    """Said on the search result, before any form; the form's address says it too."""
    today = site.engine.today()
    ident = _record(site, published_from=today)
    _find(site, page, ident)
    repair = page.locator("#results li.can[data-procedure=repair]")
    assert repair.get_attribute("data-possible") == "no"
    assert repair.locator("a").count() == 0  # no way into a form that would be refused
    message = repair.inner_text()
    found = re.search(r"\d{4}-\d{2}-\d{2}", message)
    assert found and "最早可于" in message
    assert date.fromisoformat(found.group(0)) > today
    record_id = page.locator("#results li.record").get_attribute("data-record-id")
    page.goto(site.url + f"/apply?record_id={record_id}&procedure=repair")
    assert page.locator("#not-now").is_visible() and "最早可于" in page.inner_text("#not-now")
    assert page.locator("form.apply-form").count() == 0
    shoot(page, "portal-apply-too-early")


def test_bad_identifier_shown_beside_its_field(site: Site, page: Any) -> None:
    ident = _record(site)
    _find(site, page, ident)
    page.click("#results a:has-text('提出异议')")
    page.wait_for_selector("form.apply-form")
    bad = ident[:-1] + ("0" if ident[-1] != "0" else "1")
    _fill_application(page, bad)
    page.uncheck("input[name=commitment_signed]")
    with page.expect_response(lambda r: r.url.endswith("/apply")) as answer:
        page.click("form.apply-form button[type=submit]")
    assert answer.value.status == 422
    field = page.locator(".field.has-error:has(#f-identifier)")
    assert field.count() == 1
    assert page.inner_text("#err-identifier")
    assert page.inner_text("#err-commitment_signed")
    assert page.locator("#err-name").count() == 0
    assert page.locator("#case-no").count() == 0
    with site.engine.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cases")).scalar() == 0
    shoot(page, "portal-apply-errors")


def test_wrong_access_code_and_english(site: Site, page: Any) -> None:
    page.goto(site.url + "/")
    page.click("text=English")
    assert "Objections, credit repair and complaints" in page.inner_text("h1")
    assert "Follow your case" in page.inner_text("#follow")
    page.click("text=中文")
    page.fill("#f-case_no", "YY20260407K3M9QX")
    page.fill("#f-access_code", "WRONGCODE")
    with page.expect_response(lambda r: r.url.endswith("/status")) as answer:
        page.click("#follow button[type=submit]")
    assert answer.value.status == 422
    assert "案件编号或查询码不正确" in page.inner_text("#err-access_code")
    assert page.input_value("#f-case_no") == "YY20260407K3M9QX"
    shoot(page, "portal-status-wrong-code")
    # The status page of a case not signed in to goes back to the form.
    page.goto(site.url + "/status/YY20260407K3M9QX")
    assert page.url.endswith("/status")
    assert page.locator("#f-access_code").count() == 1
    # The language switch on a page rendered by a POST.
    page.click("text=English")
    assert "Follow your case" in page.inner_text("#follow")
