"""The two procedures of the bodies of seed 000 item 2 through HTTP: a complaint filed by the
public (anonymously too) and followed with its code, its re-examination asked for through the
generic step; staff filing an identification without a record; a party's statement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import Api, fields, make_api, problem
from conftest import World, snapshot

from engine.demo import drive
from engine.service import SYSTEM
from states.identifiers import make_uscc

COMPLAINT = {
    "complainant": {"kind": "person", "name": "张某", "phone": "13800000000"},
    "subject_kind": "government",
    "subject_name": "某区城市管理局",
    "grounds": "该局拖欠我公司工程款两年未付",
}


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def test_a_complaint_filed_and_followed(api: Api) -> None:
    r = api.post("/complaints", json=COMPLAINT)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["case_no"].startswith("TS") and filed["state_label"] == "已收到"
    code = {"X-Access-Code": filed["access_code"]}
    status = api.get(f"/status/{filed['case_no']}", headers=code)
    assert status.status_code == 200 and status.json()["state"] == "received"
    case_id = api.world.engine.case_view(
        int(
            api.get("/cases", "office_handler", params={"case_no": filed["case_no"]}).json()[
                "items"
            ][0]["id"]
        ),
        SYSTEM,
    )["id"]
    view = api.world.engine.case_view(case_id, SYSTEM)
    assert view["data"]["channel"] == "web"  # what the public files here is the web channel
    drive(
        api.world.engine, api.world.staff, case_id, "complaint", ["register", "accept", "conclude"]
    )
    page = api.get(f"/status/{filed['case_no']}", headers=code).json()
    assert [a["trigger"] for a in page["other_actions"]] == ["request_reexamination"]
    asked = api.post(
        f"/status/{filed['case_no']}/actions",
        headers=code,
        json={"trigger": "request_reexamination", "payload": {"reexam_grounds": "不认可"}},
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "reexamining"
    # A step the applicant may not take is refused, and says so.
    staff_only = api.post(
        f"/status/{filed['case_no']}/actions",
        headers=code,
        json={"trigger": "answer_reexamination", "payload": {}},
    )
    assert staff_only.status_code in (403, 409)


def test_anonymous_without_a_code_cannot_follow(api: Api) -> None:
    body = {**COMPLAINT, "complainant": {"anonymous": True}, "keep_access_code": False}
    r = api.post("/complaints", json=body)
    assert r.status_code == 201 and r.json()["access_code"] is None
    kept = api.post("/complaints", json={**body, "keep_access_code": True})
    assert kept.status_code == 201 and kept.json()["access_code"]
    # Anonymous means no name kept: a name beside it is refused, nothing stored.
    before = snapshot(api.world.engine)
    bad = api.post(
        "/complaints", json={**COMPLAINT, "complainant": {"anonymous": True, "name": "张某"}}
    )
    assert "applicant.name" in fields(problem(bad, 422, "invalid_payload"))
    assert snapshot(api.world.engine) == before


def test_an_empty_idempotency_key_is_no_key(api: Api) -> None:
    """An empty Idempotency-Key header was stored as a key: the second filing with it failed
    the unique index (a 500 found by the contract test)."""
    one = api.post("/complaints", json=COMPLAINT, headers={"Idempotency-Key": ""})
    two = api.post("/complaints", json=COMPLAINT, headers={"Idempotency-Key": ""})
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["case_no"] != two.json()["case_no"]


def test_staff_file_an_identification_and_the_party_states_their_case(api: Api) -> None:
    party = {
        "kind": "government",
        "name": "某区城市管理局",
        "identifier": make_uscc("11310000MB2C3D4E5"),
    }
    r = api.post(
        "/cases",
        "amr_lead_department",
        json={
            "procedure": "identification",
            "applicant": party,
            "payload": {"facts": "拖欠中小企业账款逾期两年未支付"},
        },
    )
    assert r.status_code == 201, r.text
    opened = r.json()
    assert opened["case_no"].startswith("RD") and opened["state"] == "opened"
    engine = api.world.engine
    drive(
        engine,
        api.world.staff,
        opened["case_id"],
        "identification",
        ["propose", "send_prior_notice"],
    )
    with engine.db.read() as conn:
        payload = conn.execute(
            sa.text("SELECT payload FROM outbox WHERE case_id = :id AND name = 'prior_notice'"),
            {"id": opened["case_id"]},
        ).scalar()
    code = {"X-Access-Code": json.loads(payload)["context"]["access_code"]}
    # The code given when the case was opened is not the party's: the letter's is.
    if opened["access_code"]:
        old = api.get(
            f"/status/{opened['case_no']}", headers={"X-Access-Code": opened["access_code"]}
        )
        assert old.status_code == 404
    page = api.get(f"/status/{opened['case_no']}", headers=code)
    assert page.status_code == 200 and page.json()["state_label"] == "已事先告知"
    stated = api.post(
        f"/status/{opened['case_no']}/actions",
        headers=code,
        json={"trigger": "file_statement", "payload": {"statement": "款项已于三月付清"}},
    )
    assert stated.status_code == 200, stated.text
    assert stated.json()["state"] == "statement_review"
    # A record is refused for a procedure that has none, and staff see the case listed.
    bad = api.post(
        "/cases",
        "amr_lead_department",
        json={
            "procedure": "identification",
            "record_id": 1,
            "applicant": party,
            "payload": {"facts": "x"},
        },
    )
    assert "record_id" in fields(problem(bad, 422, "invalid_payload"))
    listed = api.get("/cases", "office_task_group", params={"procedure": "identification"})
    assert opened["case_no"] in {c["case_no"] for c in listed.json()["items"]}
