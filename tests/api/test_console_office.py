"""The console's office pages through HTTP, on SQLite and PostgreSQL: departments, users and
tokens for administrators; records for the credit office; who viewed a case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_support import Api, make_api
from conftest import World, count
from helpers import open_objection

from states.identifiers import make_uscc

CODES = re.compile(r"\b(credit_office|unit|handler|reviewer|revoked|published|mark_disputed)\b")


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def login(api: Api, user: str) -> str:
    """Sign in on the console; returns the session's CSRF token."""
    page = api.client.get("/console/login")
    r = api.client.post(
        "/console/login",
        data={"token": api.world.tokens[user], "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(api.client.get("/console").text)


def visible_text(html: str) -> str:
    """The page's words (no tags, attributes or hidden inputs)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_an_administrator_adds_a_department_and_a_user_on_the_console(api: Api) -> None:
    csrf = login(api, "office_admin")
    page = api.client.get("/console/admin")
    assert page.status_code == 200 and 'id="add-department"' in page.text
    assert not CODES.search(visible_text(page.text)), CODES.search(visible_text(page.text))
    before = count(api.world.engine, "departments")
    bad = api.client.post(
        "/console/admin/departments",
        data={"csrf": csrf, "id": "Tax Bureau", "name_zh": "市税务局", "name_en": "Tax"},
    )
    assert bad.status_code == 422 and 'id="err-id"' in bad.text
    assert 'value="Tax Bureau"' in bad.text  # the form keeps what was typed
    assert count(api.world.engine, "departments") == before
    ok = api.client.post(
        "/console/admin/departments",
        data={
            "csrf": csrf,
            "id": "tax",
            "name_zh": "市税务局",
            "name_en": "City Tax Bureau",
            "kind": "unit",
            "jurisdiction": "default",
            "parent": "office",
            "email": "xy@tax.example.gov.cn",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    assert 'id="dept-tax"' in api.client.get("/console/admin").text
    # A user: the token is on the page once.
    added = api.client.post(
        "/console/admin/users",
        data={"csrf": csrf, "name": "zhao.lei", "role": "handler", "department": "tax"},
    )
    assert added.status_code == 201, added.text
    token = re.search(r'id="token-text">(rd_[A-Za-z0-9_-]+)<', added.text)
    assert token is not None
    assert "只显示这一次" in added.text
    r = api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert r.status_code == 200
    again = api.client.get("/console/admin/users/zhao.lei")
    assert token.group(1) not in again.text  # never shown again
    dup = api.client.post(
        "/console/admin/users",
        data={"csrf": csrf, "name": "zhao.lei", "role": "handler", "department": "tax"},
    )
    assert dup.status_code == 409 and "已存在" in dup.text
    # Edit the department: a loop is refused beside the field.
    loop = api.client.post(
        "/console/admin/departments/office",
        data={"csrf": csrf, "name_zh": "市信用办", "name_en": "x", "parent": "tax"},
    )
    assert loop.status_code == 422 and "循环" in loop.text


def test_tokens_are_revoked_rotated_and_users_disabled_on_the_console(api: Api) -> None:
    csrf = login(api, "office_admin")
    name = api.world.actors["amr_handler"].name
    old = api.world.tokens["amr_handler"]
    page = api.client.get(f"/console/admin/users/{name}")
    (token_id,) = re.findall(r'data-revoke="(\d+)"', page.text)
    issued = api.client.post(
        f"/console/admin/users/{name}",
        data={"csrf": csrf, "do": "add_token", "label": "导入脚本", "days": "30"},
    )
    assert issued.status_code == 201
    script = re.search(r'id="token-text">(rd_[A-Za-z0-9_-]+)<', issued.text)
    assert script is not None
    rotated = api.client.post(
        f"/console/admin/users/{name}", data={"csrf": csrf, "do": "rotate", "token_id": token_id}
    )
    assert rotated.status_code == 201 and 'id="token-text"' in rotated.text
    assert 'data-state="rotated"' in rotated.text and "已轮换" in rotated.text
    assert (
        api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {old}"}).status_code
        == 401
    )
    bearer = {"Authorization": f"Bearer {script.group(1)}"}
    assert api.client.get("/api/v1/cases", headers=bearer).status_code == 200
    script_id = re.findall(
        r'<tr id="token-(\d+)" data-state="live"><td>\d+</td><td[^>]*>导入脚本<', rotated.text
    )[0]
    revoked = api.client.post(
        f"/console/admin/users/{name}",
        data={"csrf": csrf, "do": "revoke", "token_id": script_id},
    )
    assert revoked.status_code == 200 and "已吊销" in revoked.text
    assert api.client.get("/api/v1/cases", headers=bearer).status_code == 401
    twice = api.client.post(
        f"/console/admin/users/{name}",
        data={"csrf": csrf, "do": "revoke", "token_id": script_id},
    )
    assert twice.status_code == 422 and "已停用" in twice.text
    bad_days = api.client.post(
        f"/console/admin/users/{name}",
        data={"csrf": csrf, "do": "add_token", "label": "x", "days": "abc"},
    )
    assert bad_days.status_code == 422 and 'id="err-days"' in bad_days.text
    disabled = api.client.post(
        f"/console/admin/users/{name}", data={"csrf": csrf, "do": "disable", "confirm": "yes"}
    )
    assert disabled.status_code == 200 and "已停用" in disabled.text
    me = api.world.actors["office_admin"].name
    self_off = api.client.post(
        f"/console/admin/users/{me}", data={"csrf": csrf, "do": "disable", "confirm": "yes"}
    )
    assert self_off.status_code == 422 and "不能停用自己的账户" in self_off.text


def test_only_administrators_see_the_admin_pages(api: Api) -> None:
    login(api, "office_handler")
    page = api.client.get("/console/admin")
    assert page.status_code == 403 and "仅限管理员" in page.text
    assert 'id="nav-admin"' not in api.client.get("/console").text


def test_the_credit_office_publishes_reads_and_changes_a_record(api: Api) -> None:
    csrf = login(api, "office_credit_office")
    engine = api.world.engine
    form = {
        "csrf": csrf,
        "subject_kind": "enterprise",
        "subject_name": "上海某某建设有限公司",
        "subject_identifier": "91310000MA1FL8XX1X",  # a wrong check digit
        "source_category": "administrative_penalty",
        "severity": "general",
        "determining_unit": "amr",
        "decision_date": "2026-03-02",
        "published_from": "2026-03-03",
        "summary": "拖欠农民工工资",
        "measures": "限制评优评先\n限制参与政府采购",
    }
    before = count(engine, "credit_records")
    bad = api.client.post("/console/records", data=form)
    assert bad.status_code == 422 and 'id="err-subject_identifier"' in bad.text
    assert count(engine, "credit_records") == before
    ident = make_uscc("91310000MA1FL7YY1")
    r = api.client.post(
        "/console/records", data=form | {"subject_identifier": ident}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = api.client.get(r.headers["location"])
    assert page.status_code == 200 and "记录已发布" in page.text
    words = visible_text(page.text)
    assert "限制评优评先、限制参与政府采购" in words and "{" not in words and "\\u" not in words
    rid = int(r.headers["location"].split("/")[-1].split("?")[0])
    found = api.client.get("/console/records", params={"subject_identifier": ident})
    assert f'href="/console/records/{rid}"' in found.text
    # Correct, then revoke; revoking again is refused in words.
    fixed = api.client.post(
        f"/console/records/{rid}/changes",
        data={"csrf": csrf, "action": "correct", "reason": "决定书更正", "summary": "拖欠工程款"},
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    page = api.client.get(fixed.headers["location"])
    assert "拖欠工程款" in page.text and "第2版" in page.text  # the version in words
    for status in (303, 422):
        out = api.client.post(
            f"/console/records/{rid}/changes",
            data={"csrf": csrf, "action": "revoke", "reason": "决定被撤销"},
            follow_redirects=False,
        )
        assert out.status_code == status
    assert "记录已是“已撤销”状态" in out.text and not CODES.search(visible_text(out.text))
    no_reason = api.client.post(
        f"/console/records/{rid}/changes", data={"csrf": csrf, "action": "republish", "reason": ""}
    )
    assert no_reason.status_code == 422 and 'id="err-reason"' in no_reason.text
    # Every look was logged: the search and each record page.
    log = api.get("/access-log", "office_admin").json()["items"]
    mine = [
        (i["what"], i["detail"])
        for i in log
        if i["actor"] == api.world.actors["office_credit_office"].name
    ]
    assert ("search", ident) in mine and mine.count(("record", "")) >= 3


def test_a_handler_may_read_records_but_not_publish(api: Api) -> None:
    csrf = login(api, "office_handler")
    page = api.client.get("/console/records")
    assert page.status_code == 200 and 'id="publish-record"' not in page.text
    r = api.client.post(
        "/console/records",
        data={
            "csrf": csrf,
            "subject_kind": "enterprise",
            "subject_name": "x",
            "subject_identifier": "x",
            "decision_date": "2026-01-01",
            "published_from": "2026-01-01",
        },
    )
    assert r.status_code == 403


def test_the_case_page_lists_who_viewed_it(api: Api) -> None:
    cid = open_objection(api.world).case_id
    login(api, "office_handler")
    api.client.get(f"/console/cases/{cid}")
    page = api.client.get(f"/console/cases/{cid}")
    section = page.text.split('id="access-log"')[1]
    handler = api.world.actors["office_handler"].name
    assert section.count(handler) == 2 and "查看案件" in section and "工作台" in section
