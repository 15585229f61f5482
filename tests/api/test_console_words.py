"""Console pages a handler can read, through HTTP: the dashboard tells procedures apart, the
timeline credits uploads to whoever made them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_support import PDF, Api, make_api
from conftest import World
from helpers import drive, open_objection, open_repair


@pytest.fixture
def api(sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(sqlite_world, tmp_path, monkeypatch)


def login(api: Api, user: str) -> None:
    page = api.client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = api.client.post(
        "/console/login",
        data={"token": api.world.tokens[user], "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_stage_times_are_per_procedure(api: Api) -> None:
    """Objection's 核查中 (verifying) and repair's 核查中 (reviewing) were one row, twice."""
    obj = open_objection(api.world).case_id
    drive(api.world, obj, "objection", ["accept", "mark_disputed", "propose_decision"])
    rep = open_repair(api.world).case_id
    drive(api.world, rep, "repair", ["forward", "accept", "approve"])
    login(api, "office_admin")
    html = api.client.get("/console/dashboard").text
    rows = re.findall(
        r'<tr data-state="(\w+)" data-procedure="(\w+)"><td>([^<]+)</td><td>([^<]+)</td>', html
    )
    seen = {(state, proc): (title, label) for state, proc, title, label in rows}
    assert seen[("verifying", "objection")] == ("信用信息异议处理", "核查中")
    assert seen[("reviewing", "repair")] == ("信用修复", "核查中")
    assert len(rows) == len(seen)  # one row per procedure and stage


def test_an_applicants_upload_is_theirs_in_the_timeline(api: Api) -> None:
    filed = api.apply("objection")
    assert filed.status_code == 201, filed.text
    no = filed.json()["case_no"]
    code = filed.json()["access_code"]
    case_id = api.get("/cases", "office_handler", params={"case_no": no}).json()["items"][0]["id"]
    drive(api.world, case_id, "objection", ["request_supplement"])
    r = api.client.post(
        f"/api/v1/status/{no}/supplement",
        headers={"X-Access-Code": code},
        files={"files": ("licence.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 200, r.text
    login(api, "office_handler")
    html = api.client.get(f"/console/cases/{case_id}").text
    attach = html[html.index('data-trigger="attach"') :]
    attach = attach[: attach.index("</li>")]
    assert "申请人" in attach and "系统" not in attach


def test_switching_language_after_a_form_error_returns_to_the_page(api: Api) -> None:
    """The language link on a page re-rendered under a form's action address used to land on
    a raw {"title": "Method Not Allowed"}."""
    case_id = open_objection(api.world).case_id
    login(api, "office_handler")
    page = api.client.get(f"/console/cases/{case_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    # A refusal (reject needs its reasons) re-renders the case under the action's address.
    refused = api.client.post(
        f"/console/cases/{case_id}/actions/reject",
        data={"csrf": csrf.group(1), "version": "1"},
    )
    assert refused.status_code == 422
    for path, back in (
        (f"/console/cases/{case_id}/actions/reject", f"/console/cases/{case_id}"),
        (f"/console/cases/{case_id}/attachments", f"/console/cases/{case_id}"),
        ("/console/assign", "/console"),
        ("/status/sign-out", "/status"),
    ):
        r = api.client.get(path, params={"lang": "en"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == back + "?lang=en", (path, r.text)
    english = api.client.get(f"/console/cases/{case_id}/actions/reject?lang=en")
    assert english.status_code == 200 and "Method Not Allowed" not in english.text


def test_a_handlers_withdrawal_is_confirmed_first(api: Api) -> None:
    case_id = open_objection(api.world).case_id
    login(api, "office_handler")
    page = api.client.get(f"/console/cases/{case_id}").text
    assert 'id="f-withdraw-confirm"' in page and 'id="f-accept-confirm"' not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    unconfirmed = api.client.post(
        f"/console/cases/{case_id}/actions/withdraw",
        data={"csrf": csrf.group(1), "version": "1"},
    )
    assert unconfirmed.status_code == 422 and 'id="err-withdraw-confirm"' in unconfirmed.text
    assert api.case(case_id)["state"] == "submitted"  # nothing done
    confirmed = api.client.post(
        f"/console/cases/{case_id}/actions/withdraw",
        data={"csrf": csrf.group(1), "version": "1", "confirm": "yes"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    assert api.case(case_id)["state"] == "withdrawn"


def _queue(api: Api, **params: str) -> list[str]:
    html = api.client.get("/console", params=params).text
    return re.findall(r'<input type="checkbox" name="case_id" value="(\d+)"', html)


def test_the_queue_is_of_open_cases_sorted_on_the_server_with_an_approval_view(
    api: Api,
) -> None:
    w = api.world
    done = open_objection(w).case_id
    drive(w, done, "objection", ["reject"])  # closed
    proposed = open_objection(w).case_id
    drive(w, proposed, "objection", ["accept", "mark_disputed", "propose_decision"])
    fresh = open_objection(w).case_id
    login(api, "office_reviewer")
    shown = _queue(api)
    assert str(done) not in shown and {str(proposed), str(fresh)} <= set(shown)
    assert str(done) in _queue(api, status="closed") and str(fresh) not in _queue(
        api, status="closed"
    )
    assert {str(done), str(fresh)} <= set(_queue(api, status="all"))
    # Waiting for the reviewer's approval: the proposed decision only.
    assert _queue(api, view="approval") == [str(proposed)]
    # Sorted by the next deadline across pages: page one holds the earliest.
    by_due = _queue(api, sort="due")
    newest = _queue(api, sort="newest")
    assert sorted(by_due) == sorted(newest) and newest[0] == str(fresh)
    bad = api.client.get("/console", params={"sort": "sideways"})
    assert bad.status_code == 200 and "无效的排序" in bad.text
