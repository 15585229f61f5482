"""Applicants without an account: filing, following a case with its access code, supplying
documents, withdrawing; isolation between applicants and the wrong-code limiter."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from api_support import PDF, PNG, Api, client_error, fields, make_api, problem, wrong_check_char
from conftest import APPLICANT, World, snapshot

from engine.demo import OBJECTION_PATHS


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's slow-down delays, recorded instead of slept."""
    seen: list[float] = []
    real: Callable[..., Awaitable[Any]] = asyncio.sleep

    async def fake(delay: float, *args: Any, **kwargs: Any) -> Any:
        if delay > 0:
            seen.append(delay)
            delay = 0
        return await real(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", fake)
    return seen


def applied(api: Api, procedure: str = "objection", **extra: Any) -> tuple[str, str]:
    r = api.apply(procedure, **extra)
    assert r.status_code == 201, r.text
    return r.json()["case_no"], r.json()["access_code"]


def case_id_of(api: Api, case_no: str) -> int:
    [item] = api.get("/cases", "office_admin", params={"case_no": case_no}).json()["items"]
    return int(item["id"])


# -- filing ------------------------------------------------------------------------------------


def test_apply_for_an_objection(api: Api) -> None:
    r = api.apply("objection", comment="附件另行提交")
    assert r.status_code == 201, r.text
    out = r.json()
    no = out["case_no"]
    assert no.startswith("YY20260407") and len(out["access_code"]) == 10
    assert out == {
        "case_no": no,
        "access_code": out["access_code"],
        "state": "submitted",
        "state_label": "已提交",
        "status_url": f"/api/v1/status/{no}",
        "replayed": False,
    }
    # The credit office handles what applicants file.
    cid = case_id_of(api, no)
    view = api.case(cid, "office_handler")
    assert (
        view["department_id"] == "office"
        and view["applicant"]["identifier"] == APPLICANT["identifier"]
    )
    assert view["data"]["comment"] == "附件另行提交"
    first = api.get(f"/cases/{cid}/events", "office_handler").json()[0]
    assert (first["actor"], first["role"]) == ("applicant", "applicant")

    en = api.post(
        "/applications",
        params={"lang": "en"},
        json={
            "procedure": "objection",
            "record_id": api.world.record(),
            "applicant": APPLICANT,
            "grounds": "revoked",
            "commitment_signed": True,
        },
    )
    assert en.status_code == 201 and en.json()["state_label"] == "Submitted"


def test_apply_for_credit_repair(api: Api) -> None:
    r = api.apply("repair")
    assert r.status_code == 201, r.text
    assert r.json()["case_no"].startswith("XF20260407") and r.json()["state"] == "submitted"
    cid = case_id_of(api, r.json()["case_no"])
    view = api.case(cid, "office_handler")
    assert view["procedure"] == "repair" and view["definition_version"] == 2
    assert view["data"]["obligations_met"] is True


def test_ineligible_repair(api: Api) -> None:
    recent = api.world.record(published_from=date(2026, 3, 1))
    before = snapshot(api.world.engine)
    body = problem(api.apply("repair", record_id=recent), 422, "ineligible")
    # 3 months from 03-01: the period's last day is 06-01, so one may apply from 06-02.
    assert body["earliest"] == "2026-06-02"
    assert "2026-06-02" in body["detail"] and "2026-06-02" in body["detail_zh"]
    serious = api.world.record(severity="serious", published_from=date(2025, 6, 1))
    assert (
        problem(api.apply("repair", record_id=serious), 422, "ineligible")["earliest"]
        == "2026-06-02"
    )

    body = problem(api.apply("repair", obligations_met=False), 422, "ineligible")
    assert "earliest" not in body and "obligations_met" in body["detail"]
    body = problem(api.apply("repair", commitment_signed=False), 422, "ineligible")
    assert "commitment_signed" in body["detail"]
    # A record no longer published has nothing to repair.
    cid, _ = api.case_in("repair", ["forward", "accept", "approve"])
    repaired = api.case(cid)["record"]["id"]
    before = snapshot(api.world.engine)
    problem(api.apply("repair", record_id=repaired), 422, "ineligible")
    assert snapshot(api.world.engine) == before


def test_application_errors(api: Api) -> None:
    rid = api.world.record()
    before = snapshot(api.world.engine)
    typo = {**APPLICANT, "identifier": wrong_check_char(APPLICANT["identifier"])}
    body = problem(api.apply("objection", record_id=rid, applicant=typo), 422, "invalid_payload")
    assert fields(body) == {"applicant.identifier": "check_char"}
    assert body["errors"][0]["message_zh"].startswith("第18位校验码")

    body = problem(api.apply("objection", record_id=rid, grounds=""), 422, "invalid_request")
    assert set(fields(body)) == {"grounds"}
    body = problem(api.apply("objection", record_id=rid, grounds="a\u0000b"), 422)
    assert set(fields(body)) == {"grounds"}
    body = problem(api.apply("objection", record_id=rid, commitment_signed="perhaps"), 422)
    assert set(fields(body)) == {"commitment_signed"}
    body = problem(api.apply("appeal", record_id=rid), 422)
    assert "procedure" in fields(body)
    problem(api.apply("objection", commitment_signed=False, record_id=rid), 422, "ineligible")
    problem(api.apply("objection", record_id=999999), 404, "not_found")
    assert snapshot(api.world.engine) == before

    applied(api, record_id=rid)
    problem(api.apply("objection", record_id=rid), 409, "conflict")


def test_application_idempotency(api: Api) -> None:
    rid = api.world.record()
    body = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "grounds": "该处罚决定已被依法撤销",
        "commitment_signed": True,
    }
    first = api.post("/applications", headers={"Idempotency-Key": "app-1"}, json=body)
    assert first.status_code == 201
    before = snapshot(api.world.engine)
    again = api.post("/applications", headers={"Idempotency-Key": "app-1"}, json=body)
    assert again.status_code == 201
    assert again.json()["replayed"] is True and again.json()["access_code"] is None
    assert again.json()["case_no"] == first.json()["case_no"]
    assert snapshot(api.world.engine) == before
    changed = api.post(
        "/applications", headers={"Idempotency-Key": "app-1"}, json={**body, "grounds": "另一理由"}
    )
    problem(changed, 422, "idempotency_conflict")
    assert snapshot(api.world.engine) == before


# -- following the case ------------------------------------------------------------------------


def test_status(api: Api) -> None:
    no, code = applied(api)
    r = api.status(no, code)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["case_no"] == no and s["procedure"] == "objection"
    assert s["procedure_title"] == "信用信息异议处理"
    assert (s["state"], s["state_label"]) == ("submitted", "已提交")
    assert s["applicant_todo"] is None and s["closed"] is False and s["filed_on"] == "2026-04-07"
    assert s["next_step"] == {
        "what": "形式审查期限",
        "due_day": "2026-04-09",
        "due_at": "2026-04-09T16:00:00Z",
        "provisional": False,
        "paused": False,
        "on_delivery": False,
    }
    assert [(t["event"], t["state"]) for t in s["timeline"]] == [("submit", "submitted")]
    assert s["actions"] == ["withdraw"] and s["version"] == 1
    assert s["record"] == {"status": "published", "disputed": False}
    # The number and the code are typed by hand: case and spaces do not matter.
    assert api.status(no.lower(), f" {code.lower()} ").status_code == 200
    en = api.status(no, code, params={"lang": "en"}).json()
    assert en["state_label"] == "Submitted" and en["timeline"][0]["label"] == "application filed"
    assert api.status(no, code, headers={"Accept-Language": "en"}).json()["procedure_title"] == (
        "Objection to a credit record"
    )
    # Housekeeping does not show: assignment and evidence are not on the applicant's timeline.
    cid = case_id_of(api, no)
    api.post(
        f"/cases/{cid}/assign",
        "office_handler",
        json={"assignee_id": api.world.actors["office_handler"].user_id},
    )
    api.post(
        f"/cases/{cid}/attachments",
        "office_handler",
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    assert len(api.status(no, code).json()["timeline"]) == 1


def test_wrong_number_and_wrong_code_answer_alike(api: Api, delays: list[float]) -> None:
    mine, my_code = applied(api)
    theirs, their_code = applied(api, "repair")
    answers = [
        api.status(theirs, my_code),  # someone else's number with my code
        api.status(mine, their_code),  # my number with someone else's code
        api.status(mine, "WRONGCODE2"),
        api.status("YY20260407ZZZZZZ", my_code),  # no such number
        api.status(mine, ""),
        api.client.get(f"/api/v1/status/{mine}"),  # no code at all
    ]
    first = answers[0]
    body = problem(first, 404, "not_found")
    assert body["detail"] == "no case with this number and access code"
    for r in answers:
        assert (r.status_code, r.json(), r.headers["content-type"]) == (
            404,
            body,
            first.headers["content-type"],
        )
    # The same holds for supplying and withdrawing; and nothing is written.
    before = snapshot(api.world.engine)
    for path in ("/supplement", "/withdraw"):
        r = api.status(theirs, my_code, path, method="POST")
        assert (r.status_code, r.json()) == (404, body)
    assert snapshot(api.world.engine) == before
    assert api.status(mine, my_code).status_code == 200
    assert api.status(theirs, their_code).json()["procedure"] == "repair"


def test_applicants_cannot_use_staff_endpoints(api: Api) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    for method, path in (
        ("GET", "/cases"),
        ("GET", f"/cases/{cid}"),
        ("GET", f"/cases/{cid}/events"),
        ("POST", f"/cases/{cid}/actions/withdraw"),
        ("POST", f"/cases/{cid}/attachments"),
        ("GET", "/records"),
    ):
        for headers in (
            {"X-Access-Code": code},
            {"Authorization": f"Bearer {code}"},
            {"Authorization": f"Bearer {no}:{code}"},
        ):
            r = api.client.request(method, "/api/v1" + path, headers={**headers, "If-Match": "1"})
            problem(r, 401, "unauthenticated")
    assert api.case(cid)["state"] == "submitted"


def test_wrong_codes_are_slowed_then_refused(api: Api, delays: list[float]) -> None:
    no, code = applied(api)
    for _ in range(3):
        problem(api.status(no, "WRONGCODE2"), 404)
    assert delays == []  # three mistakes are free
    for _ in range(7):
        problem(api.status(no, "WRONGCODE2"), 404)
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    # The eleventh attempt within the window is refused, even with the right code.
    for attempt in (code, "WRONGCODE2"):
        r = api.status(no, attempt)
        body = problem(r, 429, "too_many_attempts")
        assert 0 < body["retry_after"] <= 900
        assert r.headers["retry-after"] == str(body["retry_after"])
    problem(api.status(no, code, "/withdraw", method="POST"), 429)
    assert api.case(case_id_of(api, no))["state"] == "submitted"
    # The counts are in the database: another worker process (app) refuses it as well.
    assert Api(api.world).status(no, code).status_code == 429


def test_a_right_code_does_not_reset_the_limiter(api: Api, delays: list[float]) -> None:
    mine, my_code = applied(api)
    theirs, _ = applied(api)
    statuses = []
    for _ in range(4):
        for _ in range(5):
            statuses.append(api.status(theirs, "GUESS23456").status_code)
        api.status(mine, my_code)
    assert 429 in statuses  # 20 wrong codes within the window


# -- supplying documents -----------------------------------------------------------------------


def test_supplement_only_when_requested(api: Api) -> None:
    no, code = applied(api)
    before = snapshot(api.world.engine)
    r = api.status(
        no, code, "/supplement", method="POST", files=[("files", ("a.pdf", PDF, "application/pdf"))]
    )
    body = problem(r, 409, "transition_not_allowed")
    assert body["allowed"] == ["withdraw"]
    assert snapshot(api.world.engine) == before
    assert api.case(case_id_of(api, no))["attachments"] == []


def test_supplement_documents(api: Api) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    assert api.act(cid, "request_supplement", "office_handler", 1).status_code == 200
    s = api.status(no, code).json()
    assert s["state"] == "awaiting_supplement" and s["actions"] == ["supplement", "withdraw"]
    assert s["applicant_todo"].startswith("请在期限内按补正通知书提交全部材料")

    r = api.status(
        no,
        code,
        "/supplement",
        method="POST",
        files=[
            ("files", ("营业执照副本.pdf", PDF, "application/pdf")),
            ("files", ("撤销决定书.png", PNG, "image/png")),
        ],
        data={"comment": "已补正全部材料"},
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["state"] == "submitted" and s["applicant_todo"] is None and s["version"] == 3
    assert [t["event"] for t in s["timeline"]] == ["submit", "request_supplement", "supplement"]
    view = api.case(cid)
    assert [(a["filename"], a["sha256"]) for a in view["attachments"]] == [
        ("营业执照副本.pdf", hashlib.sha256(PDF).hexdigest()),
        ("撤销决定书.png", hashlib.sha256(PNG).hexdigest()),
    ]
    assert {a["uploaded_by"] for a in view["attachments"]} == {f"applicant:{no}"}
    last = api.get(f"/cases/{cid}/events", "office_handler").json()[-1]
    assert (last["trigger"], last["role"], last["payload"]) == (
        "supplement",
        "applicant",
        {"comment": "已补正全部材料"},
    )
    # The formal check resumed where it paused.
    deadlines = {d["timer"]: d for d in view["deadlines"]}
    assert deadlines["formal_check"]["status"] == "active"
    assert deadlines["supplement_due"]["status"] == "stopped"
    # No second supplement without a new request.
    problem(api.status(no, code, "/supplement", method="POST", data={"comment": "again"}), 409)


def test_supplement_without_files(api: Api) -> None:
    no, code = applied(api, "repair")
    cid = case_id_of(api, no)
    api.act(cid, "forward", "office_handler", 1)
    api.act(cid, "request_supplement", "amr_handler", 2)
    r = api.status(no, code, "/supplement", method="POST")
    assert r.status_code == 200 and r.json()["state"] == "forwarded"
    assert api.case(cid, "amr_handler")["state"] == "forwarded"


def test_supplement_upload_errors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    api.act(cid, "request_supplement", "office_handler", 1)
    before = snapshot(api.world.engine)
    monkeypatch.setattr(api.world.engine.settings, "max_upload_bytes", 1024)
    big = [("files", ("big.pdf", PDF + bytes(2000), "application/pdf"))]
    problem(api.status(no, code, "/supplement", method="POST", files=big), 413, "too_large")
    exe = [("files", ("tool.exe", b"MZ" + bytes(30), "application/pdf"))]
    body = problem(api.status(no, code, "/supplement", method="POST", files=exe), 422)
    assert fields(body) == {"file": "type"}
    body = problem(
        api.status(no, code, "/supplement", method="POST", data={"comment": "x" * 4001}), 422
    )
    assert set(fields(body)) == {"comment"}
    assert snapshot(api.world.engine) == before
    assert api.status(no, code).json()["state"] == "awaiting_supplement"


def test_refused_supplement_writes_nothing(api: Api) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    api.act(cid, "request_supplement", "office_handler", 1)
    before = snapshot(api.world.engine)
    files = [
        ("files", ("ok.pdf", PDF, "application/pdf")),
        ("files", ("tool.exe", b"MZ" + bytes(30), "application/pdf")),
    ]
    problem(api.status(no, code, "/supplement", method="POST", files=files), 422)
    assert api.case(cid)["attachments"] == []
    assert snapshot(api.world.engine) == before


def test_status_next_step_while_documents_are_awaited(api: Api) -> None:
    no, code = applied(api)
    api.act(case_id_of(api, no), "request_supplement", "office_handler", 1)
    s = api.status(no, code).json()
    assert s["next_step"]["what"] == "补正期限"
    assert s["next_step"]["due_day"] == "2026-04-22" and s["next_step"]["paused"] is False


def test_status_offers_only_what_the_applicant_can_do(api: Api) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    api.drive(cid, "objection", OBJECTION_PATHS["notified"], 1)
    s = api.status(no, code).json()
    assert s["state"] == "notified"
    assert s["actions"] == ["request_review"]  # finalize is the clock's, not the applicant's
    r = api.status(no, code, "/review", method="POST", json={"grounds": "认定事实不清"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "under_review" and r.json()["actions"] == []
    last = api.get(f"/cases/{cid}/events", "office_handler").json()[-1]
    assert (last["trigger"], last["role"]) == ("request_review", "applicant")
    r = api.status(no, code, "/review", method="POST", json={"grounds": "再次复核"})
    problem(r, 409, "transition_not_allowed")
    r = api.status(no, code, "/review", method="POST", json={"grounds": ""})
    problem(r, 422)


# -- withdrawing -------------------------------------------------------------------------------


def test_withdraw(api: Api) -> None:
    no, code = applied(api)
    cid = case_id_of(api, no)
    api.drive(cid, "objection", ["accept", "mark_disputed"], 1)
    assert api.status(no, code).json()["record"]["disputed"] is True
    r = api.status(no, code, "/withdraw", method="POST", json={"reason": "已与认定单位沟通解决"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["state"], s["state_label"], s["closed"]) == ("withdrawn", "已撤回", True)
    assert s["next_step"] is None and s["deadlines"] == [] and s["actions"] == []
    assert s["record"] == {"status": "published", "disputed": False}  # the mark is removed
    assert s["timeline"][-1]["event"] == "withdraw"
    last = api.get(f"/cases/{cid}/events", "office_handler").json()[-1]
    assert last["payload"] == {"reason": "已与认定单位沟通解决"} and last["role"] == "applicant"

    before = snapshot(api.world.engine)
    body = problem(api.status(no, code, "/withdraw", method="POST"), 409, "transition_not_allowed")
    assert body["allowed"] == []
    assert snapshot(api.world.engine) == before
    # Following a closed case still works.
    assert api.status(no, code).json()["closed"] is True


def test_withdraw_without_a_body_and_errors(api: Api) -> None:
    no, code = applied(api, "repair")
    bad = api.status(no, code, "/withdraw", method="POST", json={"reason": 5})
    assert set(fields(problem(bad, 422))) == {"reason"}
    client_error(
        api.status(
            no,
            code,
            "/withdraw",
            method="POST",
            content=b"{",
            headers={"Content-Type": "application/json"},
        )
    )
    r = api.status(no, code, "/withdraw", method="POST")
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
