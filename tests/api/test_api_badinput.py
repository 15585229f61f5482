"""Malformed requests answer 4xx problem+json, never a 500, and write nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from api_support import PDF, V1, Api, client_error, fields, make_api, problem
from conftest import APPLICANT, World, snapshot

from engine.demo import OBJECTION_INTAKE


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    # Wrong access codes are slowed by the limiter; answer at once here.
    real = asyncio.sleep

    async def no_wait(delay: float, *args: Any, **kwargs: Any) -> Any:
        return await real(0, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    return make_api(world, tmp_path, monkeypatch)


def b64(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return base64.urlsafe_b64encode(text.encode()).decode()


JSON = {"Content-Type": "application/json"}
BIG = 2**70


def bad_requests(
    rid: int, cid: int, no: str, code: str
) -> list[tuple[str, str, str, Any, dict[str, Any]]]:
    """(what, method, path, user, httpx keyword arguments)"""
    case = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "payload": OBJECTION_INTAKE,
    }
    record = {
        "subject_kind": "enterprise",
        "subject_name": "某公司",
        "subject_identifier": APPLICANT["identifier"],
        "source_category": "administrative_penalty",
        "severity": "general",
        "determining_unit": "amr",
        "decision_date": "2026-01-05",
        "published_from": "2026-01-06",
    }
    app = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "grounds": "x",
        "commitment_signed": True,
    }
    h, a = "office_handler", "office_admin"
    act = f"/cases/{cid}/actions"
    im = {"If-Match": "1"}
    return [
        # bodies
        ("non-JSON body", "POST", "/cases", h, {"content": b"{not json", "headers": JSON}),
        (
            "truncated JSON",
            "POST",
            "/cases",
            h,
            {"content": b'{"procedure": "obj', "headers": JSON},
        ),
        ("form instead of JSON", "POST", "/cases", h, {"data": {"procedure": "objection"}}),
        ("empty body", "POST", "/cases", h, {"content": b"", "headers": JSON}),
        ("body is a list", "POST", "/cases", h, {"json": [case]}),
        ("body is a string", "POST", "/cases", h, {"json": "objection"}),
        ("record_id as text", "POST", "/cases", h, {"json": {**case, "record_id": "one"}}),
        ("record_id 2**70", "POST", "/cases", h, {"json": {**case, "record_id": BIG}}),
        ("record_id negative", "POST", "/cases", h, {"json": {**case, "record_id": -5}}),
        ("record_id fractional", "POST", "/cases", h, {"json": {**case, "record_id": 1.5}}),
        (
            "record_id 1e308",
            "POST",
            "/cases",
            h,
            {"content": json.dumps({**case, "record_id": 1e308}).encode(), "headers": JSON},
        ),
        (
            "NUL in applicant name",
            "POST",
            "/cases",
            h,
            {"json": {**case, "applicant": {**APPLICANT, "name": "a\u0000b"}}},
        ),
        (
            "NUL in identifier",
            "POST",
            "/cases",
            h,
            {"json": {**case, "applicant": {**APPLICANT, "identifier": "9131\u0000"}}},
        ),
        (
            "NUL in grounds",
            "POST",
            "/cases",
            h,
            {"json": {**case, "payload": {**OBJECTION_INTAKE, "grounds": "\u0000"}}},
        ),
        (
            "grounds as a number",
            "POST",
            "/cases",
            h,
            {"json": {**case, "payload": {**OBJECTION_INTAKE, "grounds": 7}}},
        ),
        (
            "grounds as an object",
            "POST",
            "/cases",
            h,
            {"json": {**case, "payload": {**OBJECTION_INTAKE, "grounds": {"a": 1}}}},
        ),
        (
            "commitment as text",
            "POST",
            "/cases",
            h,
            {"json": {**case, "payload": {**OBJECTION_INTAKE, "commitment_signed": "yes"}}},
        ),
        ("applicant is text", "POST", "/cases", h, {"json": {**case, "applicant": "me"}}),
        ("payload is a list", "POST", "/cases", h, {"json": {**case, "payload": [1, 2]}}),
        ("filed_on impossible", "POST", "/cases", h, {"json": {**case, "filed_on": "2026-02-30"}}),
        (
            "filed_on before any version",
            "POST",
            "/cases",
            h,
            {"json": {**case, "filed_on": "1999-01-01"}},
        ),
        (
            "identifier 10 000 chars",
            "POST",
            "/cases",
            h,
            {"json": {**case, "applicant": {**APPLICANT, "identifier": "9" * 10000}}},
        ),
        (
            "name 10 000 chars",
            "POST",
            "/cases",
            h,
            {"json": {**case, "applicant": {**APPLICANT, "name": "名" * 10000}}},
        ),
        (
            "grounds 100 000 chars",
            "POST",
            "/cases",
            h,
            {"json": {**case, "payload": {**OBJECTION_INTAKE, "grounds": "理" * 100000}}},
        ),
        (
            "idempotency key 300 chars",
            "POST",
            "/cases",
            h,
            {"json": case, "headers": {"Idempotency-Key": "k" * 300}},
        ),
        (
            "department NUL",
            "POST",
            "/cases",
            h,
            {"json": {**case, "department_id": "off\u0000ice"}},
        ),
        # identifiers in paths and queries
        ("case id 2**70", "GET", f"/cases/{BIG}", h, {}),
        ("case id negative", "GET", "/cases/-1", h, {}),
        ("case id zero", "GET", "/cases/0", h, {}),
        ("case id text", "GET", "/cases/abc", h, {}),
        ("case id fractional", "GET", "/cases/1.5", h, {}),
        ("case id 1e3", "GET", "/cases/1e3", h, {}),
        ("events id 2**70", "GET", f"/cases/{BIG}/events", h, {}),
        ("events of a missing case", "GET", "/cases/987654/events", h, {}),
        ("limit negative", "GET", "/cases", h, {"params": {"limit": -1}}),
        ("limit 2**70", "GET", "/cases", h, {"params": {"limit": BIG}}),
        ("assignee 2**70", "GET", "/cases", h, {"params": {"assignee": BIG}}),
        ("assignee negative", "GET", "/cases", h, {"params": {"assignee": -3}}),
        ("q with NUL", "GET", "/cases", h, {"params": {"q": "a\u0000"}}),
        ("q too long", "GET", "/cases", h, {"params": {"q": "x" * 101}}),
        ("subject with NUL", "GET", "/cases", h, {"params": {"subject_identifier": "\u0000"}}),
        ("case_no with NUL", "GET", "/cases", h, {"params": {"case_no": "YY\u0000"}}),
        ("department with NUL", "GET", "/cases", h, {"params": {"department": "\u0000"}}),
        ("state as SQL", "GET", "/cases", h, {"params": {"state": "x' OR '1'='1"}}),
        ("procedure unknown", "GET", "/cases", h, {"params": {"procedure": "appeal"}}),
        ("overdue not a bool", "GET", "/cases", h, {"params": {"overdue": "sometimes"}}),
        ("due_before garbage", "GET", "/cases", h, {"params": {"due_before": "soon"}}),
        (
            "due_before year 99999",
            "GET",
            "/cases",
            h,
            {"params": {"due_before": "99999-01-01T00:00:00Z"}},
        ),
        ("cursor not base64", "GET", "/cases", h, {"params": {"cursor": "%%%"}}),
        ("cursor of a list", "GET", "/cases", h, {"params": {"cursor": b64([1])}}),
        ("cursor of a string", "GET", "/cases", h, {"params": {"cursor": b64({"before": "x"})}}),
        ("cursor of NaN", "GET", "/cases", h, {"params": {"cursor": b64('{"before": NaN}')}}),
        (
            "cursor of bytes",
            "GET",
            "/cases",
            h,
            {"params": {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}},
        ),
        ("cursor too long", "GET", "/cases", h, {"params": {"cursor": "A" * 201}}),
        ("lang unknown", "GET", f"/cases/{cid}", h, {"params": {"lang": "xx"}}),
        # actions
        ("unknown trigger", "POST", f"{act}/frobnicate", h, {"json": {}, "headers": im}),
        ("trigger with capitals", "POST", f"{act}/Accept", h, {"json": {}, "headers": im}),
        ("trigger with dots", "POST", f"{act}/..%2Faccept", h, {"json": {}, "headers": im}),
        ("trigger 61 chars", "POST", f"{act}/{'a' * 61}", h, {"json": {}, "headers": im}),
        (
            "action on case 2**70",
            "POST",
            f"/cases/{BIG}/actions/accept",
            h,
            {"json": {}, "headers": im},
        ),
        ("action payload a list", "POST", f"{act}/accept", h, {"json": [], "headers": im}),
        ("action payload a string", "POST", f"{act}/accept", h, {"json": "accept", "headers": im}),
        (
            "action payload not JSON",
            "POST",
            f"{act}/accept",
            h,
            {"content": b"accept", "headers": {**JSON, **im}},
        ),
        (
            "action NUL comment",
            "POST",
            f"{act}/accept",
            h,
            {"json": {"comment": "\u0000"}, "headers": im},
        ),
        (
            "action object comment",
            "POST",
            f"{act}/accept",
            h,
            {"json": {"comment": {"a": 1}}, "headers": im},
        ),
        ("action NUL key", "POST", f"{act}/accept", h, {"json": {"\u0000": 1}, "headers": im}),
        (
            "action items 2**70",
            "POST",
            f"{act}/request_supplement",
            h,
            {"json": {"items": [BIG]}, "headers": im},
        ),
        (
            "action huge comment",
            "POST",
            f"{act}/accept",
            h,
            {"json": {"comment": "x" * 100000}, "headers": im},
        ),
        (
            "If-Match negative",
            "POST",
            f"{act}/accept",
            h,
            {"json": {}, "headers": {"If-Match": "-1"}},
        ),
        (
            "If-Match 2**70",
            "POST",
            f"{act}/accept",
            h,
            {"json": {}, "headers": {"If-Match": str(BIG)}},
        ),
        (
            "If-Match 41 chars",
            "POST",
            f"{act}/accept",
            h,
            {"json": {}, "headers": {"If-Match": "1" * 41}},
        ),
        ("If-Match star", "POST", f"{act}/accept", h, {"json": {}, "headers": {"If-Match": "*"}}),
        (
            "If-Match list",
            "POST",
            f"{act}/accept",
            h,
            {"json": {}, "headers": {"If-Match": '"1", "2"'}},
        ),
        # assignment
        ("assign a list", "POST", f"/cases/{cid}/assign", a, {"json": [1]}),
        ("assign to 2**70", "POST", f"/cases/{cid}/assign", a, {"json": {"assignee_id": BIG}}),
        ("assignee text", "POST", f"/cases/{cid}/assign", a, {"json": {"assignee_id": "me"}}),
        (
            "bulk ids 2**70",
            "POST",
            "/cases/bulk/assign",
            a,
            {"json": {"case_ids": [BIG], "assignee_id": None}},
        ),
        (
            "bulk ids text",
            "POST",
            "/cases/bulk/assign",
            a,
            {"json": {"case_ids": "1,2", "assignee_id": None}},
        ),
        (
            "bulk ids nested",
            "POST",
            "/cases/bulk/assign",
            a,
            {"json": {"case_ids": [[1]], "assignee_id": None}},
        ),
        # attachments
        ("upload as JSON", "POST", f"/cases/{cid}/attachments", h, {"json": {"file": "x"}}),
        (
            "upload to case 2**70",
            "POST",
            f"/cases/{BIG}/attachments",
            h,
            {"files": {"file": ("a.pdf", PDF)}},
        ),
        ("attachment traversal", "GET", "/attachments/..%2F..%2Fetc%2Fpasswd", h, {}),
        ("attachment dot-dot", "GET", "/attachments/%2e%2e", h, {}),
        ("attachment NUL", "GET", "/attachments/%00", h, {}),
        ("attachment 2**70", "GET", f"/attachments/{BIG}", h, {}),
        ("attachment negative", "GET", "/attachments/-1", h, {}),
        ("attachment with slash", "GET", "/attachments/1/../../2", h, {}),
        # records
        ("record id 2**70", "GET", f"/records/{BIG}", h, {}),
        ("record id text", "GET", "/records/x", h, {}),
        ("records limit negative", "GET", "/records", h, {"params": {"limit": -1}}),
        ("records subject NUL", "GET", "/records", h, {"params": {"subject_id": "\u0000"}}),
        (
            "record not JSON",
            "POST",
            "/records",
            "office_credit_office",
            {"content": b"<xml/>", "headers": JSON},
        ),
        (
            "record content a list",
            "POST",
            "/records",
            "office_credit_office",
            {"json": {**record, "content": [1]}},
        ),
        (
            "record NUL name",
            "POST",
            "/records",
            "office_credit_office",
            {"json": {**record, "subject_name": "\u0000"}},
        ),
        (
            "record date nonsense",
            "POST",
            "/records",
            "office_credit_office",
            {"json": {**record, "decision_date": "2026-00-00"}},
        ),
        (
            "record kind unknown",
            "POST",
            "/records",
            "office_credit_office",
            {"json": {**record, "subject_kind": "alien"}},
        ),
        (
            "record unit NUL",
            "POST",
            "/records",
            "office_credit_office",
            {"json": {**record, "determining_unit": "a\u0000"}},
        ),
        # procedures
        ("procedure traversal", "GET", "/procedures/..%2F..%2Fetc", None, {}),
        (
            "procedure version 2**70",
            "GET",
            "/procedures/repair",
            None,
            {"params": {"version": BIG}},
        ),
        (
            "procedure version negative",
            "GET",
            "/procedures/repair",
            None,
            {"params": {"version": -1}},
        ),
        ("procedure name too long", "GET", f"/procedures/{'a' * 41}", None, {}),
        # applicants
        (
            "application not JSON",
            "POST",
            "/applications",
            None,
            {"content": b"grounds=x", "headers": JSON},
        ),
        (
            "application record 2**70",
            "POST",
            "/applications",
            None,
            {"json": {**app, "record_id": BIG}},
        ),
        (
            "application NUL grounds",
            "POST",
            "/applications",
            None,
            {"json": {**app, "grounds": "\u0000"}},
        ),
        (
            "application NUL comment",
            "POST",
            "/applications",
            None,
            {"json": {**app, "comment": "a\u0000"}},
        ),
        (
            "application kind unknown",
            "POST",
            "/applications",
            None,
            {"json": {**app, "applicant": {**APPLICANT, "kind": "robot"}}},
        ),
        (
            "application obligations text",
            "POST",
            "/applications",
            None,
            {"json": {**app, "obligations_met": "maybe"}},
        ),
        (
            "application lang unknown",
            "POST",
            "/applications",
            None,
            {"json": app, "params": {"lang": "fr"}},
        ),
        ("status short number", "GET", "/status/YY", None, {"headers": {"X-Access-Code": code}}),
        (
            "status long number",
            "GET",
            f"/status/{'Y' * 33}",
            None,
            {"headers": {"X-Access-Code": code}},
        ),
        (
            "status traversal",
            "GET",
            "/status/..%2F..%2Fcases",
            None,
            {"headers": {"X-Access-Code": code}},
        ),
        (
            "status huge code",
            "GET",
            f"/status/{no}",
            None,
            {"headers": {"X-Access-Code": "C" * 5000}},
        ),
        (
            "supplement NUL comment",
            "POST",
            f"/status/{no}/supplement",
            None,
            {"headers": {"X-Access-Code": code}, "data": {"comment": "\u0000"}},
        ),
        (
            "supplement not multipart",
            "POST",
            f"/status/{no}/supplement",
            None,
            {"headers": {"X-Access-Code": code}, "json": {"comment": "x"}},
        ),
        (
            "withdraw a list",
            "POST",
            f"/status/{no}/withdraw",
            None,
            {"headers": {"X-Access-Code": code}, "json": ["x"]},
        ),
        (
            "withdraw NUL reason",
            "POST",
            f"/status/{no}/withdraw",
            None,
            {"headers": {"X-Access-Code": code}, "json": {"reason": "\u0000"}},
        ),
    ]


def test_malformed_requests_answer_4xx_problems(api: Api) -> None:
    rid = api.world.record()
    opened = api.open_case("objection", record_id=api.world.record())
    applied = api.apply("objection")
    assert applied.status_code == 201
    no, code = applied.json()["case_no"], applied.json()["access_code"]
    table = bad_requests(rid, opened["case_id"], no, code)
    assert len({what for what, *_ in table}) == len(table)
    before = snapshot(api.world.engine)
    wrong = []
    for what, method, path, user, kw in table:
        kw = dict(kw)
        headers = api.headers(user, kw.pop("headers", None))
        r = api.client.request(method, V1 + path, headers=headers, **kw)
        try:
            client_error(r)
        except (AssertionError, ValueError, KeyError) as exc:
            wrong.append(f"{what}: {r.status_code} {r.text[:150]} ({exc!r:.80})")
    assert not wrong, "\n".join(wrong)
    assert snapshot(api.world.engine) == before
    # And the app still answers normally.
    assert api.case(opened["case_id"])["version"] == 1
    assert api.status(no, code).status_code in (200, 429)


def test_problem_members_on_validation_errors(api: Api) -> None:
    r = api.post("/cases", "office_handler", json={"procedure": "objection", "record_id": "x"})
    body = problem(r, 422, "invalid_request")
    assert set(fields(body)) == {"record_id", "applicant"}
    assert body["detail"].startswith("record_id: ") and body["detail_zh"].startswith("请求内容有误")
    for e in body["errors"]:
        assert set(e) == {"field", "code", "message", "message_zh"}


# -- bugs: 500s and gaps -----------------------------------------------------------------------


def test_cursor_with_an_out_of_range_number(api: Api) -> None:
    for cursor in (b64('{"before": 1e999}'), b64({"before": BIG})):
        r = api.get("/cases", "office_handler", params={"cursor": cursor})
        assert fields(problem(r, 422)) == {"cursor": "invalid"}, r.status_code


def test_filing_into_an_unknown_department(api: Api) -> None:
    before = snapshot(api.world.engine)
    body = {
        "procedure": "objection",
        "record_id": api.world.record(),
        "applicant": APPLICANT,
        "payload": OBJECTION_INTAKE,
        "department_id": "nowhere",
    }
    r = api.post("/cases", "office_credit_office", json=body)
    assert snapshot(api.world.engine)["cases"] == before["cases"]
    assert fields(problem(r, 422)) == {"department_id": "unknown"}


def test_a_handler_files_into_their_own_department_only(api: Api) -> None:
    """Issue 21: a handler of `office` filed into `hrss` (201), then could not see the case."""
    body = {
        "procedure": "objection",
        "record_id": api.world.record(),
        "applicant": APPLICANT,
        "payload": OBJECTION_INTAKE,
        "department_id": "hrss",
    }
    before = snapshot(api.world.engine)
    for user in ("office_handler", "amr_handler", "amr_credit_office"):
        r = api.post("/cases", user, json=body)
        assert "credit office" in problem(r, 403, "forbidden")["detail"], user
    assert snapshot(api.world.engine) == before
    assert (
        api.post("/cases", "office_handler", json={**body, "department_id": "office"}).status_code
        == 201
    )
    # The credit office routes cases anywhere; the case shows in hrss's queue.
    body["record_id"] = api.world.record()
    r = api.post("/cases", "office_credit_office", json=body)
    assert r.status_code == 201, r.text
    assert api.get(f"/cases/{r.json()['case_id']}", "hrss_handler").status_code == 200


def test_lone_surrogates_and_nul_in_lists_and_content(api: Api) -> None:
    # Not reachable through httpx's json=, but any client can send the escape itself.
    cid = api.open_case("objection")["case_id"]
    raw = b'{"items": ["\\ud800"]}'
    r = api.post(
        f"/cases/{cid}/actions/request_supplement",
        "office_handler",
        headers={**JSON, "If-Match": "1"},
        content=raw,
    )
    assert r.status_code == 422, r.status_code
    r = api.act(cid, "request_supplement", "office_handler", 1, {"items": ["a\u0000b"]})
    assert r.status_code == 422, r.status_code
    fields_ = {
        "subject_kind": "enterprise",
        "subject_name": "x",
        "subject_identifier": APPLICANT["identifier"],
        "source_category": "administrative_penalty",
        "severity": "general",
        "determining_unit": "amr",
        "decision_date": "2026-01-05",
        "published_from": "2026-01-06",
        "content": {"summary": "LONE"},
    }
    record = json.dumps(fields_).replace("LONE", "\\ud800")
    r = api.post("/records", "office_credit_office", headers=JSON, content=record.encode())
    assert r.status_code == 422, r.status_code


def test_routing_errors_are_full_problems(api: Api) -> None:
    problem(api.get("/no/such/path", "office_handler"), 404)
    problem(api.client.delete(f"{V1}/cases/1", headers=api.headers("office_handler")), 405)


def test_a_nul_in_the_case_number(api: Api) -> None:
    applied = api.apply("objection")
    no, code = applied.json()["case_no"], applied.json()["access_code"]
    for path in ("", "/supplement", "/withdraw"):
        r = api.status(f"{no}%00", code, path, method="POST" if path else "GET")
        client_error(r)
    client_error(api.status("%00", code))
