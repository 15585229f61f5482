"""Running the office in a real browser: an administrator adds a department and a user, hands
over the token, revokes it (the user's open console is signed out at once); the credit office
publishes a record, finds it by identifier and changes it; the case page lists who viewed it.
Every Chinese page is checked for stored codes."""

from __future__ import annotations

import re
from typing import Any

from browser_support import DESKTOP, Site, shoot
from test_bodies_journeys import _no_codes
from test_console_pages import _login, _open

from states.identifiers import make_uscc


def _desk(browser: Any) -> Any:
    return browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()


def test_an_administrator_sets_up_a_user_who_signs_in_and_is_revoked(
    site: Site, browser: Any
) -> None:
    admin = _desk(browser)
    _login(admin, site, "office_admin")
    admin.click("#nav-admin")
    admin.wait_for_url("**/console/admin")
    # Department ids are the keys the CLI and the API take: shown as such, in their column.
    _no_codes(admin, "admin", (".ident",))
    shoot(admin, "office-admin")
    # A department with a wrong id: the error beside the field, the entries kept.
    admin.fill("#add-department #f-id", "Tax Bureau")
    admin.fill("#add-department #f-name_zh", "市税务局")
    admin.fill("#add-department #f-name_en", "City Tax Bureau")
    admin.select_option("#add-department #f-parent", label="市信用办")
    admin.click("#add-department button[type=submit]")
    assert admin.locator("#add-department #err-id").is_visible()
    assert admin.input_value("#add-department #f-name_zh") == "市税务局"
    admin.fill("#add-department #f-id", "tax")
    admin.click("#add-department button[type=submit]")
    admin.wait_for_selector("#dept-tax")
    assert "市税务局" in admin.inner_text("#dept-tax")
    # A user of it; the token is shown once.
    admin.fill("#add-user #f-name", "zhao.lei")
    admin.select_option("#add-user #f-role", label="经办人")
    admin.select_option("#add-user #f-department", label="市税务局")
    admin.click("#add-user button[type=submit]")
    admin.wait_for_selector("#issued-token")
    token = admin.inner_text("#token-text").strip()
    assert token.startswith("rd_")
    _no_codes(admin, "admin-user")
    shoot(admin, "office-admin-user")

    # The new user signs in with it in their own browser.
    user = _desk(browser)
    user.goto(site.url + "/console/login")
    user.fill("#f-token", token)
    user.click("form[action='/console/login'] button[type=submit]")
    user.wait_for_url(site.url + "/console")
    assert "zhao.lei" in user.inner_text("header")

    # Revoked: the user's next page goes to the sign-in, where the token is refused.
    admin.goto(site.url + "/console/admin/users/zhao.lei")
    admin.click("button[data-revoke]")
    admin.wait_for_selector("tr[data-state=revoked]")
    assert "已吊销" in admin.inner_text("#tokens")
    user.goto(site.url + "/console")
    user.wait_for_url("**/console/login**")
    user.fill("#f-token", token)
    user.click("form[action='/console/login'] button[type=submit]")
    assert "令牌无效、已过期或已停用" in user.inner_text("main")
    admin.context.close()
    user.context.close()


def test_the_credit_office_publishes_and_changes_a_record(site: Site, browser: Any) -> None:
    page = _desk(browser)
    _login(page, site, "office_credit_office")
    page.click("header a[href='/console/records']")
    page.wait_for_url("**/console/records")
    form = "#publish-record"
    page.fill(f"{form} #f-subject_name", "上海某某建设有限公司")
    page.fill(f"{form} #f-subject_identifier", "91310000MA1FL8XX1X")  # wrong check digit
    page.select_option(f"{form} #f-determining_unit", label="市市场监管局")
    page.fill(f"{form} #f-decision_date", "2026-03-02")
    page.fill(f"{form} #f-published_from", "2026-03-03")
    page.fill(f"{form} #f-summary", "拖欠农民工工资")
    page.fill(f"{form} #f-measures", "限制评优评先\n限制参与政府采购")
    page.click(f"{form} button[type=submit]")
    err = page.locator(f"{form} #err-subject_identifier")
    assert err.is_visible() and "校验" in err.inner_text()
    ident = make_uscc("91310000MA1FL6YY1")
    page.fill(f"{form} #f-subject_identifier", ident)
    page.click(f"{form} button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/records/\d+\?done=created"))
    record = page.inner_text("#record")
    assert "限制评优评先、限制参与政府采购" in record and "{" not in record
    _no_codes(page, "record")
    shoot(page, "office-record")
    # Found by identifier.
    page.goto(site.url + "/console/records")
    page.fill("#f-subject_identifier", ident)
    page.click("#record-search button[type=submit]")
    page.wait_for_selector("#record-results")
    page.click("#record-results a")
    page.wait_for_url(re.compile(r".*/console/records/\d+$"))
    # Corrected, then revoked: each a new version, the reasons in words.
    page.select_option("#change-record #f-action", label="更正内容")
    page.fill("#change-record #f-reason", "决定书更正")
    page.fill("#change-record #f-summary", "拖欠工程款")
    page.click("#change-record button[type=submit]")
    page.wait_for_url("**done=correct")
    page.select_option("#change-record #f-action", label="撤销记录")
    page.fill("#change-record #f-reason", "处罚决定被撤销")
    page.click("#change-record button[type=submit]")
    page.wait_for_url("**done=revoke")
    versions = page.inner_text("#record-versions")
    assert "第3版" in versions and "已撤销" in versions and "公示 /" not in versions
    assert "published" not in versions
    _no_codes(page, "record-changed")
    page.context.close()


def test_the_case_page_lists_who_viewed_it(site: Site, browser: Any) -> None:
    case_id = _open(site)
    page = _desk(browser)
    _login(page, site, "office_handler")
    page.goto(site.url + f"/console/cases/{case_id}")
    page.goto(site.url + f"/console/cases/{case_id}")
    log = page.inner_text("#access-log")
    name = site.staff.actors["office_handler"].name
    assert log.count(name) == 2 and "查看案件" in log and "工作台" in log
    _no_codes(page, "case-access-log")
    page.context.close()
