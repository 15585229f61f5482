"""Notices through HTTP: the list kept with a case, PDFs for staff and for the applicant, and the
dead letters a handler can see and send again."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_support import Api, make_api, problem
from conftest import World
from pypdf import PdfReader

from engine.channels import Channel, LogChannel, Message, Sent
from engine.outbox import Delivery, Policy, router


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


class Down:
    name = "email"

    def send(self, message: Message) -> Sent:
        return Sent(False, "421 service not available")


def _deliver(api: Api, email: Channel | None = None) -> None:
    channels: dict[str, Channel] = {"log": LogChannel(), "inapp": LogChannel()}
    if email is not None:
        channels["email"] = email
    Delivery(api.world.engine, router(channels, {}), Policy(max_attempts=2)).deliver()


def _case_id(api: Api, case_no: str) -> int:
    (item,) = api.get("/cases", "office_handler", params={"case_no": case_no}).json()["items"]
    return int(item["id"])


def _pdf_text(content: bytes) -> str:
    return "".join("".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(content)).pages)


def test_notices_listed_and_downloaded_by_staff_and_applicant(api: Api) -> None:
    applied = api.apply("objection").json()
    no, code = applied["case_no"], applied["access_code"]
    cid = _case_id(api, no)
    api.drive(cid, "objection", ["request_supplement"], 1)
    _deliver(api)

    listed = api.get(f"/cases/{cid}/notices", "office_handler", params={"lang": "zh"}).json()
    names = [n["name"] for n in listed]
    assert names == ["receipt", "supplement_request"]
    request = listed[1]
    assert request["template"] == "supplement_request" and request["template_version"] == 3
    pdf = api.client.get(
        f"/api/v1/notices/{request['id']}/pdf", headers=api.headers("office_handler")
    )
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = _pdf_text(pdf.content)
    assert "补正通知书" in text and no in text and "营业执照副本" in text

    status = api.status(no, code).json()
    mine = {n["name"]: n for n in status["notices"]}
    assert set(mine) == {"receipt", "supplement_request"}
    got = api.client.get(mine["supplement_request"]["pdf_url"], headers={"X-Access-Code": code})
    assert got.status_code == 200 and "补正通知书" in _pdf_text(got.content)
    # Another department sees neither the list nor the letters; a wrong code opens nothing.
    problem(api.get(f"/cases/{cid}/notices", "hrss_handler"), 404, "not_found")
    problem(
        api.client.get(f"/api/v1/notices/{request['id']}/pdf", headers=api.headers("hrss_handler")),
        404,
        "not_found",
    )
    problem(api.client.get(mine["receipt"]["pdf_url"], headers={"X-Access-Code": "WRONG"}), 404)


def test_applicant_cannot_fetch_letters_to_the_unit_or_other_cases(api: Api) -> None:
    a = api.apply("objection").json()
    b = api.apply("objection").json()
    cid = _case_id(api, a["case_no"])
    api.drive(cid, "objection", ["accept", "mark_disputed", "forward"], 1)
    _deliver(api)
    unit_letter = next(
        n
        for n in api.get(f"/cases/{cid}/notices", "office_handler").json()
        if n["recipient"] == "determining_unit"
    )
    problem(
        api.client.get(
            f"/api/v1/status/{a['case_no']}/notices/{unit_letter['id']}/pdf",
            headers={"X-Access-Code": a["access_code"]},
        ),
        404,
    )
    other = api.status(b["case_no"], b["access_code"]).json()["notices"][0]
    problem(
        api.client.get(
            f"/api/v1/status/{a['case_no']}/notices/{other['id']}/pdf",
            headers={"X-Access-Code": a["access_code"]},
        ),
        404,
    )


def test_dead_letters_listed_and_retried(api: Api) -> None:
    applied = api.apply("objection").json()  # APPLICANT has an email address
    for _ in range(2):
        _deliver(api, Down())
        api.world.clock.advance(hours=1)
    dead = api.get("/outbox", "office_reviewer", params={"status": "dead"}).json()
    assert [d["name"] for d in dead] == ["receipt"]
    assert dead[0]["channel"] == "email" and dead[0]["attempts"] == 2
    assert dead[0]["last_error"].startswith("421") and dead[0]["case_no"] == applied["case_no"]
    assert api.get("/outbox", "hrss_reviewer", params={"status": "dead"}).json() == []
    problem(api.post(f"/outbox/{dead[0]['id']}/retry", "office_handler"), 403, "forbidden")
    problem(api.post(f"/outbox/{dead[0]['id']}/retry", "hrss_head"), 404, "not_found")
    r = api.post(f"/outbox/{dead[0]['id']}/retry", "office_reviewer")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    _deliver(api, LogChannel())
    assert api.get("/outbox", "office_reviewer", params={"status": "dead"}).json() == []
    sent = api.get("/outbox", "office_reviewer", params={"status": "sent"}).json()
    assert dead[0]["id"] in [s["id"] for s in sent]
