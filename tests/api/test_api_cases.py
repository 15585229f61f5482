"""Staff endpoints one by one: records, cases (file, list, read, act, events, assign, bulk
assign, attachments), procedures, health and metrics; each with its documented errors."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    EXE,
    JPEG,
    PDF,
    PNG,
    V1,
    Api,
    fields,
    make_api,
    problem,
    wrong_check_char,
)
from conftest import APPLICANT, World, at, snapshot

from engine.demo import OBJECTION_PATHS, PAYLOADS
from states.identifiers import make_uscc


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def ids(r: Any) -> list[int]:
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cases"),
        ("POST", "/cases"),
        ("GET", "/cases/1"),
        ("POST", "/cases/1/actions/accept"),
        ("GET", "/cases/1/events"),
        ("POST", "/cases/1/assign"),
        ("POST", "/cases/bulk/assign"),
        ("POST", "/cases/1/attachments"),
        ("GET", "/attachments/1"),
        ("GET", "/records"),
        ("POST", "/records"),
        ("GET", "/records/1"),
    ],
)
def test_staff_endpoints_need_a_valid_bearer_token(api: Api, method: str, path: str) -> None:
    for headers, detail in (
        ({}, "a bearer token is required"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "a bearer token is required"),
        ({"Authorization": "Bearer rd_not-a-real-token"}, "unknown, expired or revoked token"),
        ({"Authorization": "Bearer "}, "unknown, expired or revoked token"),
    ):
        r = api.client.request(method, V1 + path, headers=headers)
        body = problem(r, 401, "unauthenticated")
        assert body["detail"] == detail
        assert r.headers["www-authenticate"] == "Bearer"


# -- records -----------------------------------------------------------------------------------

RECORD = {
    "subject_kind": "enterprise",
    "subject_name": "上海示例贸易有限公司",
    "subject_identifier": make_uscc("91310000MA1FL8YY1"),
    "source_category": "administrative_penalty",
    "severity": "general",
    "determining_unit": "amr",
    "decision_date": "2026-01-05",
    "published_from": "2026-01-06",
    "content": {"summary": "未按规定公示年度报告", "measures": ["限制评优评先"]},
}


def test_publish_and_read_records(api: Api) -> None:
    r = api.post("/records", "office_credit_office", json=RECORD)
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["status"] == "published" and rec["version"] == 1 and rec["disputed"] is False
    assert rec["subject_identifier"] == RECORD["subject_identifier"]
    assert rec["decision_date"] == "2026-01-05" and rec["content"] == RECORD["content"]
    assert [v["version"] for v in rec["versions"]] == [1]
    assert rec["versions"][0]["actor"] == "office_credit_office"

    one = api.get(f"/records/{rec['id']}", "office_handler")
    assert one.status_code == 200
    assert one.json()["versions"][0]["status"] == "published"
    assert one.json()["versions"][0]["case_id"] is None

    other = api.world.record()
    listed = api.get("/records", "office_handler").json()
    assert [x["id"] for x in listed] == [other, rec["id"]]  # newest first
    assert all("versions" not in x or x["versions"] is None for x in listed)
    by_subject = api.get(
        "/records", "office_handler", params={"subject_id": RECORD["subject_identifier"]}
    )
    assert [x["id"] for x in by_subject.json()] == [rec["id"]]
    lower = RECORD["subject_identifier"].lower()
    assert [
        x["id"] for x in api.get("/records", "amr_handler", params={"subject_id": lower}).json()
    ] == [rec["id"]]
    assert len(api.get("/records", "office_handler", params={"limit": 1}).json()) == 1
    assert api.get("/records", "office_handler", params={"subject_id": "NOPE"}).json() == []


def test_publishing_records_errors(api: Api) -> None:
    before = snapshot(api.world.engine)
    problem(api.post("/records", "office_handler", json=RECORD), 403, "forbidden")
    problem(api.post("/records", "amr_head", json=RECORD), 403, "forbidden")

    bad = {**RECORD, "subject_identifier": wrong_check_char(RECORD["subject_identifier"])}
    body = problem(api.post("/records", "office_credit_office", json=bad), 422, "invalid_payload")
    assert fields(body) == {"subject_identifier": "check_char"}

    unit = {**RECORD, "determining_unit": "nowhere"}
    body = problem(api.post("/records", "office_credit_office", json=unit), 422)
    assert fields(body) == {"determining_unit": "unknown"}

    early = {**RECORD, "published_from": "2026-01-01"}
    body = problem(api.post("/records", "office_credit_office", json=early), 422)
    assert fields(body) == {"published_from": "range"}

    missing = {k: v for k, v in RECORD.items() if k not in ("severity", "subject_name")}
    body = problem(
        api.post("/records", "office_credit_office", json=missing), 422, "invalid_request"
    )
    assert set(fields(body)) == {"severity", "subject_name"}

    wrong = {**RECORD, "severity": "catastrophic", "decision_date": "05/01/2026"}
    body = problem(api.post("/records", "office_credit_office", json=wrong), 422, "invalid_request")
    assert set(fields(body)) == {"severity", "decision_date"}
    assert snapshot(api.world.engine) == before

    problem(api.get("/records/999999", "office_handler"), 404, "not_found")
    body = problem(api.get("/records/0", "office_handler"), 422)
    assert set(fields(body)) == {"record_id"}
    body = problem(api.get("/records", "office_handler", params={"limit": 0}), 422)
    assert set(fields(body)) == {"limit"}


# -- filing cases ------------------------------------------------------------------------------


def test_file_a_case(api: Api) -> None:
    opened = api.open_case("objection")
    assert opened["state"] == "submitted" and opened["version"] == 1
    assert opened["procedure"] == "objection" and opened["definition_version"] == 1
    assert re.fullmatch(r"YY20260407[2-9A-HJ-NP-Z]{6}", opened["case_no"]), opened["case_no"]
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{10}", opened["access_code"])
    assert opened["replayed"] is False
    view = api.case(opened["case_id"])
    assert view["department_id"] == "office" and view["determining_unit"] == "amr"

    repair = api.open_case("repair")
    assert repair["case_no"].startswith("XF20260407") and repair["definition_version"] == 2
    # Filed before 2026-04-01: the Order 58 rules (version 1) apply.
    old = api.world.record(severity="serious", published_from=date(2025, 1, 2))
    v1 = api.open_case("repair", record_id=old, filed_on="2026-03-02")
    assert v1["definition_version"] == 1 and v1["case_no"].startswith("XF20260302")

    # Staff file into their own department.
    unit_case = api.open_case("objection", user="amr_handler")
    assert api.case(unit_case["case_id"], "amr_handler")["department_id"] == "amr"


def test_file_a_case_idempotently(api: Api) -> None:
    rid = api.world.record()
    first = api.open_case("objection", record_id=rid, key="file-1")
    before = snapshot(api.world.engine)
    again = api.open_case("objection", record_id=rid, key="file-1")
    assert again["replayed"] is True and again["access_code"] is None
    assert {k: again[k] for k in ("case_id", "case_no", "state", "version")} == {
        k: first[k] for k in ("case_id", "case_no", "state", "version")
    }
    assert snapshot(api.world.engine) == before

    other = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "payload": {"grounds": "另一份申请", "commitment_signed": True},
    }
    r = api.post("/cases", "office_handler", headers={"Idempotency-Key": "file-1"}, json=other)
    problem(r, 422, "idempotency_conflict")
    assert snapshot(api.world.engine) == before


def test_filing_errors(api: Api) -> None:
    rid = api.world.record()
    base = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "payload": {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True},
    }
    before = snapshot(api.world.engine)

    typo = {
        **base,
        "applicant": {**APPLICANT, "identifier": wrong_check_char(APPLICANT["identifier"])},
    }
    body = problem(api.post("/cases", "office_handler", json=typo), 422, "invalid_payload")
    assert fields(body) == {"applicant.identifier": "check_char"}

    person = {
        **base,
        "applicant": {"kind": "person", "name": "张三", "identifier": "110105194912310021"},
    }
    body = problem(api.post("/cases", "office_handler", json=person), 422)
    assert fields(body) == {"applicant.identifier": "check_char"}

    body = problem(api.post("/cases", "office_handler", json={**base, "payload": {}}), 422)
    assert fields(body) == {"grounds": "required", "commitment_signed": "required"}

    body = problem(
        api.post("/cases", "office_handler", json={**base, "payload": {**base["payload"], "x": 1}}),
        422,
    )
    assert fields(body) == {"x": "unknown"}

    body = problem(api.post("/cases", "office_handler", json={**base, "procedure": "appeal"}), 422)
    assert set(fields(body)) == {"procedure"}

    body = problem(
        api.post("/cases", "office_handler", json={**base, "applicant": {"kind": "enterprise"}}),
        422,
    )
    assert set(fields(body)) == {"applicant.name", "applicant.identifier"}

    unsigned = {**base, "payload": {"grounds": "x", "commitment_signed": False}}
    problem(api.post("/cases", "office_handler", json=unsigned), 422, "ineligible")

    problem(
        api.post("/cases", "office_handler", json={**base, "record_id": 999999}), 404, "not_found"
    )
    assert snapshot(api.world.engine) == before

    assert api.post("/cases", "office_handler", json=base).status_code == 201
    again = api.post("/cases", "office_handler", json=base)
    body = problem(again, 409, "conflict")
    # That a case is open, never which: the caller may not be allowed to see it.
    assert body["detail"] == f"record {rid} already has an open objection case", body
    assert "YY" not in body["detail_zh"], body

    recent = api.world.record(published_from=date(2026, 3, 1))
    repair = {
        **base,
        "procedure": "repair",
        "record_id": recent,
        "payload": {"grounds": "已整改", "obligations_met": True, "commitment_signed": True},
    }
    body = problem(api.post("/cases", "office_handler", json=repair), 422, "ineligible")
    assert body["earliest"] == "2026-06-02"  # the 3 months' last day is 06-01


# -- the work queue ----------------------------------------------------------------------------


def test_list_filters(api: Api) -> None:
    w = api.world
    # A subject no other record here shares (theirs end in four hex digits).
    published = api.post("/records", "office_credit_office", json=RECORD)
    a = api.open_case("objection", record_id=published.json()["id"])["case_id"]
    b, _ = api.case_in("objection", ["accept"])
    c = api.open_case("repair")["case_id"]
    d, _ = api.case_in("repair", ["forward"])
    e = api.open_case("objection", user="amr_handler")["case_id"]
    special = api.open_case(
        "objection", payload={"grounds": "独一无二的异议理由ZQX", "commitment_signed": True}
    )
    f = special["case_id"]
    handler = w.actors["office_handler"].user_id
    assert (
        api.post(f"/cases/{b}/assign", "office_reviewer", json={"assignee_id": handler}).status_code
        == 200
    )

    everyone = ids(api.get("/cases", "office_admin"))
    assert everyone == sorted([a, b, c, d, e, f], reverse=True)  # newest first
    assert ids(api.get("/cases", "office_handler")) == [f, d, c, b, a]  # not amr's own case
    assert ids(api.get("/cases", "amr_handler")) == everyone  # amr determined every record

    def q(**params: Any) -> list[int]:
        return ids(api.get("/cases", "office_admin", params=params))

    assert q(procedure="repair") == [d, c]
    assert q(procedure="objection", state="submitted") == [f, e, a]
    assert q(state="accepted") == [b]
    assert q(state="forwarded", procedure="repair") == [d]
    assert q(department="amr") == [e]
    assert q(department="office", procedure="repair") == [d, c]
    assert q(assignee=handler) == [b]
    assert q(assignee=handler, state="submitted") == []
    assert q(case_no=special["case_no"]) == [f]
    assert q(case_no=special["case_no"].lower()) == [f]
    assert q(q="异议理由ZQX") == [f]
    assert q(q=special["case_no"][-6:]) == [f]
    assert q(q="上海示例贸易") == everyone
    subject = RECORD["subject_identifier"]
    assert q(subject_identifier=subject) == [a]
    assert q(subject_identifier=subject.lower()) == [a]

    # Deadlines: nothing overdue yet; then the clock passes the first due days.
    assert q(overdue="true") == []
    assert q(overdue="false") == everyone
    # Due by the start of 9 April: repair's forwarding (1 working day) and objection's marking.
    assert q(due_before="2026-04-09T00:00:00+08:00") == [c, b]
    assert q(due_before="2026-04-08T16:00:00Z") == [c, b]
    assert q(due_before="2026-04-08T15:59:59Z") == []
    w.clock.set(at("2026-04-10 09:00"))
    late = q(overdue="true")
    assert late == [f, e, c, b, a]  # formal checks (2 days), marking, forwarding
    assert q(overdue="false") == [d]  # acceptance by amr: 3 working days, due 10 April
    items = {i["id"]: i for i in api.get("/cases", "office_admin").json()["items"]}
    assert [i for i in items if items[i]["overdue"]] == late
    assert items[d]["next_due_at"] == "2026-04-10T16:00:00Z"

    body = problem(
        api.get("/cases", "office_admin", params={"due_before": "2026-04-09T00:00:00"}), 422
    )
    assert fields(body) == {"due_before": "timezone"}
    for bad in (
        {"procedure": "appeal"},
        {"state": "Bad State"},
        {"assignee": 0},
        {"overdue": "maybe"},
        {"due_before": "tomorrow"},
        {"limit": 0},
        {"limit": 201},
        {"limit": -1},
        {"case_no": "X" * 33},
    ):
        body = problem(api.get("/cases", "office_admin", params=bad), 422)
        assert set(fields(body)) == set(bad), bad


def test_cursor_pagination(api: Api) -> None:
    made = [api.open_case("objection" if i % 2 else "repair")["case_id"] for i in range(8)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = api.get("/cases", "office_handler", params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    assert seen == sorted(made, reverse=True)
    # Filters hold across pages.
    repairs = []
    cursor = None
    while True:
        params = {"limit": 2, "procedure": "repair", **({"cursor": cursor} if cursor else {})}
        page = api.get("/cases", "office_handler", params=params).json()
        repairs += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert repairs == sorted(made[0::2], reverse=True)
    # Exactly one page: no cursor.
    assert api.get("/cases", "office_handler", params={"limit": 8}).json()["next_cursor"] is None
    body = problem(api.get("/cases", "office_handler", params={"cursor": "not-a-cursor"}), 422)
    assert fields(body) == {"cursor": "invalid"}


# -- one case ----------------------------------------------------------------------------------


def test_read_a_case(api: Api) -> None:
    opened = api.open_case("objection")
    cid = opened["case_id"]
    r = api.get(f"/cases/{cid}", "office_handler")
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    view = r.json()
    assert view["case_no"] == opened["case_no"] and view["state"] == "submitted"
    assert view["state_label"] == "已提交" and view["terminal"] is False and view["closed"] is False
    assert view["assignee_id"] is None and view["attachments"] == []
    assert view["record"]["status"] == "published" and view["record"]["disputed"] is False
    assert view["filed_on"] == "2026-04-07" and view["opened_at"] == "2026-04-07T01:00:00Z"
    [deadline] = view["deadlines"]
    assert deadline == {
        "timer": "formal_check",
        "label": "形式审查期限",
        "status": "active",
        "due_day": "2026-04-09",
        "due_at": "2026-04-09T16:00:00Z",
        "provisional": False,
        "overdue": False,
        "remaining": None,
        "extended_days": 0,
        "period": "2 working days",
    }
    actions = {a["trigger"]: a for a in view["allowed_actions"]}
    assert set(actions) == {"accept", "reject", "request_supplement", "withdraw"}
    assert actions["reject"]["required"] == ["reasons", "legal_basis"]
    assert actions["request_supplement"]["label"] == {
        "zh": "要求补正",
        "en": "request missing documents",
    }
    assert {a["trigger"] for a in api.case(cid, "office_reviewer")["allowed_actions"]} == {
        "accept",
        "reject",
        "request_supplement",
    }
    assert api.case(cid, "amr_handler")["allowed_actions"] == []

    en = api.get(f"/cases/{cid}", "office_handler", params={"lang": "en"}).json()
    assert en["state_label"] == "Submitted" and en["deadlines"][0]["label"] == "formal check"
    en2 = api.get(f"/cases/{cid}", "office_handler", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert en2.json()["state_label"] == "Submitted"
    problem(api.get(f"/cases/{cid}", "office_handler", params={"lang": "fr"}), 422)

    handler = api.world.actors["office_handler"].user_id
    api.post(f"/cases/{cid}/assign", "office_head", json={"assignee_id": handler})
    assert api.case(cid)["assignee_id"] == handler

    problem(api.get("/cases/999999", "office_handler"), 404, "not_found")
    body = problem(api.get("/cases/0", "office_handler"), 422, "invalid_request")
    assert set(fields(body)) == {"case_id"}


def test_deadlines_in_a_year_without_an_official_notice_are_provisional(api: Api) -> None:
    api.world.clock.set(at("2026-12-25 09:00"))
    cid, version = api.case_in("objection", ["request_supplement"])
    view = api.case(cid)
    deadlines = {d["timer"]: d for d in view["deadlines"]}
    assert deadlines["supplement_due"]["due_day"] == "2027-01-11"
    assert deadlines["supplement_due"]["provisional"] is True
    assert deadlines["formal_check"]["status"] == "paused"
    assert deadlines["formal_check"]["provisional"] is False
    assert view["version"] == version


# -- actions -----------------------------------------------------------------------------------


def test_if_match_forms_and_etag(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    for trigger, if_match, version in (
        ("accept", "1", 2),
        ("mark_disputed", '"2"', 3),
        ("forward", 'W/"3"', 4),
        ("unit_answer", ' "4" ', 5),
    ):
        user = "amr_handler" if trigger == "unit_answer" else "office_handler"
        r = api.post(
            f"/cases/{cid}/actions/{trigger}",
            user,
            headers={"If-Match": if_match},
            json=PAYLOADS[trigger],
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"] == version and r.headers["etag"] == f'"{version}"'
    out = r.json()
    assert out == {
        "case_id": cid,
        "state": "answered",
        "version": 5,
        "seq": 5,
        "replayed": False,
        "notices": [],
        "record_version": None,
    }
    assert api.get(f"/cases/{cid}", "office_handler").headers["etag"] == '"5"'


def test_action_response_reports_notices_and_record_versions(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    r = api.act(cid, "accept", "office_handler", 1)
    assert r.json()["notices"] == ["acceptance"] and r.json()["record_version"] is None
    r = api.act(cid, "mark_disputed", "office_handler", 2)
    assert r.json()["record_version"] == 2 and r.json()["state"] == "verifying"
    assert api.case(cid)["record"] == {**api.case(cid)["record"], "disputed": True, "version": 2}


def test_action_errors(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    before = snapshot(api.world.engine)

    body = problem(api.act(cid, "accept", "office_handler", None), 428, "precondition_required")
    assert "If-Match" in body["detail"]

    r = api.act(cid, "accept", "office_handler", 7)
    body = problem(r, 412, "stale_version")
    assert body["current_version"] == 1 and r.headers["etag"] == '"1"'

    body = problem(api.act(cid, "accept", "office_handler", "abc"), 422, "invalid_payload")
    assert fields(body) == {"If-Match": "format"}
    body = problem(api.act(cid, "accept", "office_handler", "1" * 13), 422)
    assert fields(body) == {"If-Match": "format"}

    # 409 names what this caller may do now.
    body = problem(
        api.act(cid, "approve_decision", "office_handler", 1), 409, "transition_not_allowed"
    )
    assert body["allowed"] == ["accept", "reject", "request_supplement", "withdraw"]
    body = problem(api.act(cid, "approve_decision", "office_reviewer", 1), 409)
    assert body["allowed"] == ["accept", "reject", "request_supplement"]
    assert problem(api.act(cid, "approve_decision", "amr_head", 1), 409)["allowed"] == []
    assert problem(api.act(cid, "no_such_trigger", "office_handler", 1), 409)["allowed"] == [
        "accept",
        "reject",
        "request_supplement",
        "withdraw",
    ]

    body = problem(
        api.act(cid, "request_supplement", "office_handler", 1, {}), 422, "invalid_payload"
    )
    assert fields(body) == {"items": "required"}
    body = problem(api.act(cid, "request_supplement", "office_handler", 1, {"items": "one"}), 422)
    assert fields(body) == {"items": "type"}
    body = problem(api.act(cid, "accept", "office_handler", 1, {"colour": "red"}), 422)
    assert fields(body) == {"colour": "unknown"}
    body = problem(
        api.act(cid, "reject", "office_handler", 1, {"reasons": " ", "legal_basis": 3}), 422
    )
    assert fields(body) == {"reasons": "required", "legal_basis": "type"}
    body = problem(
        api.post(
            f"/cases/{cid}/actions/accept", "office_handler", headers={"If-Match": "1"}, json=[1]
        ),
        422,
    )
    assert set(fields(body)) == {"request"}  # the body as a whole

    problem(api.act(999999, "accept", "office_handler", 1), 404, "not_found")
    problem(api.act(cid, "accept", "office_reviewer", 1, {"comment": "\u0000"}), 422)
    assert snapshot(api.world.engine) == before

    # The objection's guard on the record: a revoked record cannot be disputed any more.
    vid, v = api.case_in("objection", OBJECTION_PATHS["verifying"])
    r = api.act(
        vid,
        "propose_decision",
        "office_handler",
        v,
        {"outcome": "corrected", "reasons": "x", "legal_basis": "y"},
    )
    body = problem(r, 409, "transition_not_allowed")
    assert "corrections" in body["detail"]
    r = api.act(vid, "request_extension", "office_handler", v, {"days": 31, "reason": "x"})
    assert fields(problem(r, 422)) == {"days": "range"}
    r = api.act(vid, "request_extension", "office_handler", v, {"days": 16, "reason": "x"})
    assert r.status_code == 200
    r = api.act(vid, "approve_extension", "office_reviewer", v + 1)
    body = problem(r, 409)
    assert "at most 15 more" in body["detail"]


def test_action_idempotency(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    first = api.act(cid, "accept", "office_handler", 1, key="accept-1")
    assert first.status_code == 200
    before = snapshot(api.world.engine)
    again = api.act(cid, "accept", "office_handler", 1, key="accept-1")
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    for k in ("case_id", "state", "version", "seq"):
        assert again.json()[k] == first.json()[k]
    assert again.headers["etag"] == '"2"'
    assert snapshot(api.world.engine) == before

    # The case moves on; a late retry is still answered from the record, not as stale.
    api.act(cid, "mark_disputed", "office_handler", 2)
    late = api.act(cid, "accept", "office_handler", 1, key="accept-1")
    assert late.status_code == 200 and late.json()["replayed"] is True
    assert late.json()["version"] == 2

    # Same key, different command.
    problem(
        api.act(cid, "accept", "office_handler", 1, {"comment": "x"}, key="accept-1"),
        422,
        "idempotency_conflict",
    )
    problem(
        api.act(cid, "forward", "office_handler", 3, key="accept-1"), 422, "idempotency_conflict"
    )
    assert api.case(cid)["version"] == 3
    # Keys are per case: the same key on another case is a new command.
    other = api.open_case("objection")["case_id"]
    assert api.act(other, "accept", "office_handler", 1, key="accept-1").json()["replayed"] is False


def test_action_replay_returns_the_original_result(api: Api) -> None:
    cid, version = api.case_in("objection", ["accept"])
    first = api.act(cid, "mark_disputed", "office_handler", version, key="k")
    again = api.act(cid, "mark_disputed", "office_handler", version, key="k")
    assert first.json()["record_version"] == 2
    assert {**again.json(), "replayed": False} == first.json()


# -- events ------------------------------------------------------------------------------------


def test_events(api: Api) -> None:
    cid, version = api.case_in("objection", ["accept", "mark_disputed"])
    handler = api.world.actors["office_handler"].user_id
    api.post(f"/cases/{cid}/assign", "office_reviewer", json={"assignee_id": handler})
    r = api.get(f"/cases/{cid}/events", "amr_handler")
    assert r.status_code == 200
    events = r.json()
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["trigger"] for e in events] == ["submit", "accept", "mark_disputed", "assign"]
    assert [(e["from"], e["to"]) for e in events] == [
        (None, "submitted"),
        ("submitted", "accepted"),
        ("accepted", "verifying"),
        ("verifying", "verifying"),
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 3]  # assigning makes no new version
    assert [e["actor"] for e in events] == [
        "office_handler",
        "office_handler",
        "office_handler",
        "clock",
    ]
    assert events[3]["detail"] == {
        "assignee_id": handler,
        "assignee": "office_handler",
        "by": "office_reviewer",
    }
    assert events[2]["detail"]["record_version"] == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["hash"]) for e in events)
    assert len({e["hash"] for e in events}) == 4
    assert api.case(cid)["version"] == version
    problem(api.get("/cases/999999/events", "office_handler"), 404, "not_found")


# -- assignment --------------------------------------------------------------------------------


def test_assign(api: Api) -> None:
    w = api.world
    cid = api.open_case("objection")["case_id"]
    uid = {name: a.user_id for name, a in w.actors.items()}

    r = api.post(
        f"/cases/{cid}/assign", "office_reviewer", json={"assignee_id": uid["office_handler"]}
    )
    assert r.status_code == 200
    assert r.json() == {
        "case_id": cid,
        "assignee_id": uid["office_handler"],
        "assignee": "office_handler",
    }
    # The determining unit's staff may be given the case too, by the handling department;
    # they do not assign the office's cases themselves.
    r = api.post(f"/cases/{cid}/assign", "amr_head", json={"assignee_id": uid["amr_handler"]})
    problem(r, 403, "forbidden")
    r = api.post(f"/cases/{cid}/assign", "office_head", json={"assignee_id": uid["amr_handler"]})
    assert r.status_code == 200 and api.case(cid)["assignee_id"] == uid["amr_handler"]
    # A handler may take a case for themselves, not give it to someone else.
    r = api.post(
        f"/cases/{cid}/assign", "office_handler", json={"assignee_id": uid["office_handler"]}
    )
    assert r.status_code == 200
    r = api.post(
        f"/cases/{cid}/assign", "office_handler", json={"assignee_id": uid["office_reviewer"]}
    )
    problem(r, 403, "forbidden")
    problem(
        api.post(f"/cases/{cid}/assign", "office_credit_office", json={"assignee_id": None}), 403
    )
    # Only users of the case's departments, and only real ones.
    for bad in (uid["hrss_handler"], 999999):
        body = problem(
            api.post(f"/cases/{cid}/assign", "office_head", json={"assignee_id": bad}), 422
        )
        assert fields(body) == {"assignee_id": "unknown"}
    body = problem(api.post(f"/cases/{cid}/assign", "office_head", json={"assignee_id": 0}), 422)
    assert set(fields(body)) == {"assignee_id"}
    body = problem(api.post(f"/cases/{cid}/assign", "office_head", json={}), 422)
    assert set(fields(body)) == {"assignee_id"}
    problem(api.post("/cases/999999/assign", "office_head", json={"assignee_id": None}), 404)

    r = api.post(f"/cases/{cid}/assign", "office_admin", json={"assignee_id": None})
    assert r.json() == {"case_id": cid, "assignee_id": None, "assignee": None}
    assert api.case(cid)["assignee_id"] is None


def test_bulk_assign_answers_each_case(api: Api) -> None:
    w = api.world
    uid = {name: a.user_id for name, a in w.actors.items()}
    a = api.open_case("objection")["case_id"]
    b = api.open_case("repair")["case_id"]
    theirs = api.open_case("objection", user="hrss_handler")["case_id"]  # hrss handles it
    r = api.post(
        "/cases/bulk/assign",
        "office_reviewer",
        json={"case_ids": [a, 999999, theirs, b, a], "assignee_id": uid["office_handler"]},
    )
    assert r.status_code == 200, r.text
    results = {x["case_id"]: x for x in r.json()["results"]}
    assert list(results) == [a, 999999, theirs, b]  # in order, each once
    assert results[a]["ok"] is True and results[a]["assignee_id"] == uid["office_handler"]
    assert results[b]["ok"] is True
    assert results[999999] == {**results[999999], "ok": False, "status": 404}
    assert results[theirs] == {**results[theirs], "ok": False, "status": 404}
    assert results[theirs]["detail"] == f"no case {theirs}"
    assert api.case(a)["assignee_id"] == uid["office_handler"]
    assert api.case(theirs, "hrss_handler")["assignee_id"] is None

    # An assignee from outside the case's departments: refused for that case alone.
    r = api.post(
        "/cases/bulk/assign",
        "office_admin",
        json={"case_ids": [theirs, a], "assignee_id": uid["hrss_handler"]},
    )
    results = {x["case_id"]: x for x in r.json()["results"]}
    assert results[theirs]["ok"] is True
    assert results[a]["ok"] is False and results[a]["status"] == 422
    # Roles that may not assign are refused case by case.
    r = api.post(
        "/cases/bulk/assign", "office_credit_office", json={"case_ids": [a], "assignee_id": None}
    )
    assert r.json()["results"] == [
        {
            "case_id": a,
            "ok": False,
            "assignee_id": None,
            "status": 403,
            "detail": "role 'credit_office' may not assign cases",
        }
    ]

    for bad in (
        {"case_ids": [], "assignee_id": None},
        {"case_ids": list(range(1, 502)), "assignee_id": None},
        {"case_ids": [0], "assignee_id": None},
        {"assignee_id": None},
    ):
        body = problem(api.post("/cases/bulk/assign", "office_admin", json=bad), 422)
        assert any(f.startswith("case_ids") for f in fields(body)), body


# -- attachments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "claimed", "kind"),
    [
        ("撤销决定书.pdf", PDF, "application/pdf", "application/pdf"),
        ("scan.png", PNG, "image/png", "image/png"),
        ("photo.jpg", JPEG, "image/jpeg", "image/jpeg"),
        ("mislabelled.txt", PDF, "text/plain", "application/pdf"),
        (
            "letter.docx",
            b"PK\x03\x04" + bytes(40),
            "application/octet-stream",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_upload_and_download(api: Api, name: str, data: bytes, claimed: str, kind: str) -> None:
    cid = api.open_case("objection")["case_id"]
    r = api.post(
        f"/cases/{cid}/attachments", "office_handler", files={"file": (name, data, claimed)}
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["filename"] == name and meta["content_type"] == kind
    assert meta["size"] == len(data) and meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["uploaded_by"] == "office_handler" and meta["uploaded_at"] == "2026-04-07T01:00:00Z"
    assert api.case(cid)["attachments"] == [meta]
    assert api.case(cid)["version"] == 1  # evidence does not move the case
    assert (
        api.get(f"/cases/{cid}/events", "office_handler").json()[-1]["detail"]["sha256"]
        == meta["sha256"]
    )

    got = api.get(f"/attachments/{meta['id']}", "amr_reviewer")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"].startswith(kind)
    assert hashlib.sha256(got.content).hexdigest() == meta["sha256"]


def test_upload_errors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = api.open_case("objection")["case_id"]
    before = snapshot(api.world.engine)

    def up(name: str, data: bytes, user: str = "office_handler", case: int = cid) -> Any:
        return api.post(
            f"/cases/{case}/attachments", user, files={"file": (name, data, "application/pdf")}
        )

    for name, data in (
        ("setup.exe", EXE),
        ("setup.pdf", EXE),
        ("archive.zip", b"PK\x03\x04" + bytes(9)),
        ("notes.txt", b"hello"),
    ):
        body = problem(up(name, data), 422, "invalid_payload")
        assert fields(body) == {"file": "type"}, name
    assert fields(problem(up("empty.pdf", b""), 422)) == {"file": "empty"}
    body = problem(api.post(f"/cases/{cid}/attachments", "office_handler", data={"x": "1"}), 422)
    assert fields(body) == {"file": "missing"}
    problem(up("a.pdf", PDF, case=999999), 404, "not_found")

    monkeypatch.setattr(api.world.engine.settings, "max_upload_bytes", 1024)
    body = problem(up("big.pdf", PDF + bytes(1024)), 413, "too_large")
    assert "1024" in body["detail"]
    assert up("small.pdf", PDF + bytes(1024 - len(PDF))).status_code == 201  # exactly the limit
    assert api.case(cid)["attachments"][0]["size"] == 1024
    after = snapshot(api.world.engine)
    assert after == {**before, "case_events": before["case_events"] + 1}

    problem(api.get("/attachments/999999", "office_handler"), 404, "not_found")
    problem(api.get("/attachments/0", "office_handler"), 422)


def test_refused_upload_stores_nothing(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    store = Path(api.world.engine.settings.var_dir) / "attachments"
    for user, case in (("hrss_handler", cid), ("office_handler", 999999)):
        r = api.post(
            f"/cases/{case}/attachments",
            user,
            files={"file": ("x.pdf", PDF + user.encode(), "application/pdf")},
        )
        problem(r, 404, "not_found")
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


# -- procedures --------------------------------------------------------------------------------


def test_procedures(api: Api) -> None:
    r = api.get("/procedures")
    assert r.status_code == 200
    listed = {p["name"]: p for p in r.json()}
    assert set(listed) == {"objection", "repair", "identification", "complaint"}
    assert [v["version"] for v in listed["repair"]["versions"]] == [1, 2]
    assert listed["repair"]["versions"][0]["effective_until"] == "2026-03-31"
    assert listed["repair"]["versions"][1]["effective_from"] == "2026-04-01"
    assert listed["objection"]["versions"][0]["title"] == {
        "zh": "信用信息异议处理",
        "en": "Objection to a credit record",
    }

    latest = api.get("/procedures/repair").json()
    assert latest["version"] == 2 and latest["name"] == "repair"
    assert latest["definition"]["name"] == "repair" and latest["definition"]["version"] == 2
    assert latest["mermaid"].startswith("stateDiagram-v2")
    assert "submitted --> forwarded: forward" in latest["mermaid"]
    assert "已提交" in latest["mermaid"]
    v1 = api.get("/procedures/repair", params={"version": 1}).json()
    assert v1["version"] == 1 and v1["definition"]["effective_until"] == "2026-03-31"
    assert [v["version"] for v in v1["versions"]] == [1, 2]
    en = api.get("/procedures/objection", params={"lang": "en"}).json()
    assert en["mermaid"].startswith("stateDiagram-v2") and "Submitted" in en["mermaid"]

    problem(api.get("/procedures/appeal"), 404, "not_found")
    problem(api.get("/procedures/repair", params={"version": 3}), 404, "not_found")
    for params in ({"version": 0}, {"version": "one"}, {"lang": "de"}):
        problem(api.get("/procedures/repair", params=params), 422, "invalid_request")
    problem(api.get("/procedures/Repair!"), 422, "invalid_request")


# -- health and metrics ------------------------------------------------------------------------


def test_healthz(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": api.world.engine.db.dialect}
    assert r.json()["database"] in ("sqlite", "postgresql")


def test_metrics(api: Api) -> None:
    api.open_case("objection")
    api.open_case("objection")
    api.case_in("objection", ["accept"])
    api.open_case("repair")
    r = api.client.get("/metrics", headers=api.headers("office_admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'redress_cases{procedure="objection",state="submitted"} 2.0' in text
    assert 'redress_cases{procedure="objection",state="accepted"} 1.0' in text
    assert 'redress_cases{procedure="repair",state="submitted"} 1.0' in text
    assert "redress_cases_overdue 0.0" in text
    assert "redress_http_request_duration_seconds_bucket{" in text
    assert re.search(
        r"redress_http_request_duration_seconds_count"
        r'\{method="POST",route="[^"]*cases",status="201"\} 4\.0',
        text,
    ), text

    api.world.clock.set(at("2026-04-10 09:00"))
    admin = api.headers("office_admin")
    assert "redress_cases_overdue 4.0" in api.client.get("/metrics", headers=admin).text
