"""The handlers' console in a real browser: sign in, the queue, a case, the dashboard."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from browser_support import Site, shoot

from engine.clock import FixedClock
from engine.demo import OBJECTION_INTAKE, PAYLOADS
from engine.factory import build_delivery
from engine.service import Engine
from states.identifiers import make_uscc

APPLICANT = {
    "kind": "enterprise",
    "name": "上海示例贸易有限公司",
    "identifier": make_uscc("91310000MA1FL8XX1"),
    "email": "legal@example.com",
}


def _open(site: Site, engine: Engine | None = None, name: str = "上海示例贸易有限公司") -> int:
    eng = engine or site.engine
    published = eng.today() - timedelta(days=150)
    record = eng.create_record(
        actor=site.staff.actors["office_credit_office"],
        subject_kind="enterprise",
        subject_name=name,
        subject_identifier=make_uscc("91310000MA1FL" + uuid.uuid4().hex[:4].upper()),
        source_category="administrative_penalty",
        severity="general",
        determining_unit="amr",
        decision_date=published,
        published_from=published,
        content={"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
    )
    opened = eng.open_case(
        procedure="objection",
        record_id=record,
        applicant=APPLICANT,
        actor=site.staff.actors["office_handler"],
        payload=OBJECTION_INTAKE,
    )
    return opened.case_id


def _overdue_case(site: Site) -> int:
    past = Engine(site.engine.db, clock=FixedClock(site.engine.now() - timedelta(days=30)))
    return _open(site, past, name="逾期示例有限公司")


def _drive(site: Site, case_id: int, steps: list[tuple[str, str]]) -> None:
    for trigger, who in steps:
        version = site.engine.case_view(case_id, site.staff.actors[who])["version"]
        site.engine.advance(case_id, trigger, site.staff.actors[who], PAYLOADS[trigger], version)


def _login(page: Any, site: Site, who: str) -> None:
    page.goto(site.url + "/console/login")
    page.fill("#f-token", site.staff.tokens[who])
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(site.url + "/console")


def _logout(page: Any) -> None:
    page.click("#logout")
    page.wait_for_url("**/console/login")


def _case_no(site: Site, case_id: int) -> str:
    no: str = site.engine.case_view(case_id, site.staff.actors["office_handler"])["case_no"]
    return no


def test_login_queue_filters_and_bulk_assign(site: Site, page: Any) -> None:
    page.goto(site.url + "/console")
    assert "/console/login" in page.url
    page.fill("#f-token", "not-a-token")
    page.click("form[action='/console/login'] button[type=submit]")
    assert "令牌无效" in page.inner_text("#err-token")
    shoot(page, "console-login")

    fresh = [_open(site) for _ in range(3)]
    late = _overdue_case(site)
    _login(page, site, "office_handler")
    rows = page.locator("table.queue tbody tr[data-case-id]")
    assert rows.count() == 4
    # Sorted by due date: the overdue case comes first, highlighted.
    assert rows.first.get_attribute("data-case-id") == str(late)
    assert "overdue" in (page.get_attribute(f"tr[data-case-id='{late}']", "class") or "")
    assert "overdue" not in (page.get_attribute(f"tr[data-case-id='{fresh[0]}']", "class") or "")
    shoot(page, "console-queue")

    # Filters: overdue only, then one case number.
    page.click("details.filters summary")
    page.select_option("#f-overdue", "yes")
    page.click("#filters button[type=submit]")
    assert "overdue=yes" in page.url
    assert page.locator("table.queue tbody tr[data-case-id]").count() == 1
    page.goto(site.url + "/console?case_no=" + _case_no(site, fresh[1]))
    ids = page.locator("table.queue tbody tr[data-case-id]")
    assert ids.count() == 1 and ids.first.get_attribute("data-case-id") == str(fresh[1])
    page.goto(site.url + "/console?due_before=not-a-date")
    assert page.locator("#err-due_before").is_visible()

    # Bulk assign two cases to myself (a handler may only take cases for themselves).
    page.goto(site.url + "/console")
    page.check(f"tr[data-case-id='{fresh[0]}'] input[type=checkbox]")
    page.check(f"tr[data-case-id='{fresh[2]}'] input[type=checkbox]")
    me = site.staff.actors["office_handler"].user_id
    page.select_option("#f-assignee_id", str(me))
    page.click("#bulk-assign")
    results = page.locator(".assign-results li.ok")
    assert results.count() == 2
    for cid in (fresh[0], fresh[2]):
        assert site.engine.case_view(cid, site.staff.actors["office_handler"])["assignee_id"] == me
    # Nothing ticked: the error stands beside the table.
    page.click("#bulk-assign")
    assert page.locator("#err-case_id").is_visible()
    page.goto(site.url + f"/console?assignee={me}")
    assert page.locator("table.queue tbody tr[data-case-id]").count() == 2


def test_case_page_actions_conflict_and_review(site: Site, page: Any) -> None:
    ext = _open(site)  # the handler asks for an extension
    sup = _open(site)  # the handler asks for missing documents
    dec = _open(site)  # driven to a proposed decision for the reviewer
    _drive(
        site,
        dec,
        [
            ("accept", "office_handler"),
            ("mark_disputed", "office_handler"),
            ("propose_decision", "office_handler"),
        ],
    )
    _login(page, site, "office_handler")

    page.goto(site.url + f"/console/cases/{ext}")
    assert page.locator("#diagram li.current[data-state='submitted']").count() == 1
    assert page.locator("#deadlines tbody tr").count() >= 1
    assert page.locator("#record-versions tbody tr").count() >= 1
    assert "mermaid" in (page.get_attribute("#diagram pre", "class") or "")

    # Someone else accepts meanwhile: the stale form answers with the fresh page.
    version = site.engine.case_view(ext, site.staff.actors["office_handler"])["version"]
    site.engine.advance(ext, "accept", site.staff.actors["office_handler"], {}, version)
    page.click("#action-accept button[type=submit]")
    assert "案件已被他人更新" in page.inner_text(".alert.error")
    assert page.get_attribute("#case-state", "data-state") == "accepted"

    page.click("#action-mark_disputed button[type=submit]")
    page.wait_for_url(f"**/console/cases/{ext}?done=mark_disputed")
    assert page.get_attribute("#case-state", "data-state") == "verifying"
    assert page.locator("#record-versions tbody tr").count() >= 2
    page.fill("#f-request_extension-days", "5")
    page.fill("#f-request_extension-reason", "需向外单位调取材料")
    page.click("#action-request_extension button[type=submit]")
    page.wait_for_url(f"**/console/cases/{ext}?done=request_extension")
    assert "需向外单位调取材料" in page.inner_text("#extension-pending")
    shoot(page, "console-case")

    # A supplement request without its items: the error stands beside the field.
    page.goto(site.url + f"/console/cases/{sup}")
    page.click("#action-request_supplement button[type=submit]")
    assert "必填" in page.inner_text("#err-request_supplement-items")
    page.fill("#f-request_supplement-items", "营业执照副本\n行政处罚撤销决定书")
    page.click("#action-request_supplement button[type=submit]")
    page.wait_for_url(f"**/console/cases/{sup}?done=request_supplement")
    assert page.get_attribute("#case-state", "data-state") == "awaiting_supplement"
    data = site.engine.case_view(sup, site.staff.actors["office_handler"])["data"]
    assert data["items"] == ["营业执照副本", "行政处罚撤销决定书"]

    _logout(page)
    _login(page, site, "office_reviewer")
    page.goto(site.url + f"/console/cases/{ext}")
    assert page.locator("#extension-pending").is_visible()
    page.click("#action-approve_extension button[type=submit]")
    page.wait_for_url(f"**/console/cases/{ext}?done=approve_extension")
    assert page.locator("#extension-pending").count() == 0
    view = site.engine.case_view(ext, site.staff.actors["office_reviewer"])
    assert any(d["extended_days"] == 5 for d in view["deadlines"])

    page.goto(site.url + f"/console/cases/{dec}")
    page.click("#action-approve_decision button[type=submit]")
    page.wait_for_url(f"**/console/cases/{dec}?done=approve_decision")
    assert page.get_attribute("#case-state", "data-state") == "decided"


def test_csrf_404_notices_and_dashboard(site: Site, page: Any) -> None:
    done = _open(site)
    _drive(site, done, [("reject", "office_handler")])
    build_delivery(site.engine).deliver()  # notices are kept as they go out
    late = _overdue_case(site)
    _open(site)
    _login(page, site, "office_handler")

    version = site.engine.case_view(late, site.staff.actors["office_handler"])["version"]
    answer = page.request.post(
        site.url + f"/console/cases/{late}/actions/accept",
        form={"version": str(version)},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "表单已过期" in answer.text()
    assert site.engine.case_view(late, site.staff.actors["office_handler"])["state"] == "submitted"

    # Notices sent (the receipt, the refusal) with their PDFs.
    page.goto(site.url + f"/console/cases/{done}")
    links = page.locator("#notices a")
    assert links.count() >= 1
    pdf = page.request.get(site.url + (links.first.get_attribute("href") or ""))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    page.goto(site.url + "/console/dashboard")
    assert page.inner_text("#stat-open .num") == "2"
    assert page.inner_text("#stat-overdue .num") == "1"
    assert page.inner_text("#stat-closed .num") == "1"
    assert page.locator("#open-by-state tbody tr[data-state='submitted']").count() == 1
    assert page.locator("#stage-times tbody tr[data-state='submitted']").count() == 1
    shoot(page, "console-dashboard")

    page.goto(site.url + "/console/cases/999999")
    assert page.locator("h1").inner_text() == "未找到"

    _logout(page)
    _login(page, site, "hrss_handler")
    answer = page.goto(site.url + f"/console/cases/{late}")
    assert answer is not None and answer.status == 404
    page.goto(site.url + "/console")
    assert page.locator("table.queue tbody tr[data-case-id]").count() == 0

    # The English switch.
    page.goto(site.url + "/console?lang=en")
    assert page.inner_text("h1") == "Work queue"


def test_login_next_is_local(site: Site, page: Any) -> None:
    case_id = _open(site)
    page.goto(site.url + f"/console/cases/{case_id}")
    assert "next=/console/cases/" in page.url
    page.fill("#f-token", site.staff.tokens["office_handler"])
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(f"**/console/cases/{case_id}")
    _logout(page)
    page.goto(site.url + "/console/login?next=https://evil.example/")
    page.fill("#f-token", site.staff.tokens["office_handler"])
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(site.url + "/console")


def test_the_case_page_shows_words_not_codes(site: Site, page: Any) -> None:
    # Record status and category, roles, the clock's and the file's own events, field names,
    # channels and delivery states: in words, in either language, never as stored codes.
    case = _open(site)
    _drive(site, case, [("accept", "office_handler"), ("mark_disputed", "office_handler")])
    handler = site.staff.actors["office_handler"]
    site.engine.assign(case, handler.user_id, site.staff.actors["office_head"])
    build_delivery(site.engine).deliver()
    _login(page, site, "office_handler")

    page.goto(site.url + f"/console/cases/{case}")
    record = page.inner_text("#record")
    assert "行政处罚" in record and "一般" in record and "公示中" in record
    timeline = page.inner_text("#timeline")
    assert "经办人" in timeline and "分派经办人" in timeline and "(系统)" in timeline
    applicant = page.inner_text("#applicant")
    assert "申请理由" in applicant and "已签署信用承诺书\n是" in applicant  # labels, not keys
    notices = page.inner_text("#notices")
    assert "申请人" in notices and "已发送" in notices and "查询页面" in notices
    page.goto(site.url + f"/console/cases/{case}?lang=en")
    english = (
        page.inner_text("#record") + page.inner_text("#timeline") + page.inner_text("#notices")
    )
    assert "administrative penalty" in english and "case handler" in english
    assert "status page: sent" in english

    # Codes as stored: in Chinese any is out of place; in English some are words too.
    codes = {
        "zh": ["published", "(handler)", "(head)", "assign", "inapp", "pending", "sent", "grounds"],
        "en": ["administrative_penalty", "commitment_signed", "inapp", "(handler)", "(head)"],
    }
    for lang, raw in codes.items():
        page.goto(site.url + f"/console/cases/{case}?lang={lang}")
        text = "".join(
            page.inner_text(s) for s in ("#record", "#timeline", "#notices", "#applicant")
        )
        if lang == "zh":  # a record version's reason is bilingual text ("公示 / published")
            text = text.replace("公示 / published", "")
        shown = [c for c in raw if c in text]
        assert not shown, (lang, shown)


def test_procedures_pages_list_versions_and_show_the_diagram(site: Site, page: Any) -> None:
    _login(page, site, "office_handler")
    page.click("nav >> text=办理程序")
    page.wait_for_url("**/console/procedures")
    table = page.inner_text("#procedures")
    assert "上海市" in table and "河南省" in table and "2026-04-01" in table
    assert "shanghai" not in table  # the jurisdiction in words
    page.click("tr[data-jurisdiction=henan][data-name=objection] a")
    page.wait_for_url("**/console/procedures/objection/henan/1")
    flow = page.inner_text("#diagram ol")
    assert "检验检测或专家评审中" in flow and "核查中" in flow
    timers = page.inner_text("#timers")
    assert "3个工作日" in timers and "河南省社会信用条例（2019）第41条" in timers
    assert "默认规则" in timers  # stages its article does not set say so
    assert "working days" not in timers and "(default)" not in timers
    assert len(page.inner_text("#sha")) == 64
    page.goto(site.url + "/console/procedures/objection/henan/1?lang=en")
    assert "3 working days" in page.inner_text("#timers")
    page.goto(site.url + "/console/procedures/objection/henan/9?lang=zh")
    assert "没有" in page.inner_text("main")
