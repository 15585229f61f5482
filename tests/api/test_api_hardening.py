"""Hardening: security headers on every answer (the hot layer's too), HSTS and the Secure
session cookie behind TLS, attachments served as downloads under cleaned names, one file per
API upload, and /metrics behind a token."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api_support import PDF, V1, Api, fields, make_api, problem
from conftest import World, snapshot
from fastapi.testclient import TestClient

from engine.attachments import Attachments

MAX_NAME = 200  # engine.attachments.MAX_NAME (here too, so that old code fails, not errors)
STRICT = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def assert_strict(r: httpx.Response, *, cached: bool = False, docs: bool = False) -> None:
    for name, value in STRICT.items():
        assert r.headers.get(name) == value, (r.url, name, r.headers)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp
    script = re.search(r"script-src ([^;]*)", csp)
    assert script is not None
    assert ("'unsafe-inline'" in script[1]) is docs, csp  # only Swagger UI / ReDoc
    if cached:
        assert r.headers.get("cache-control") != "no-store", r.url
    else:
        assert r.headers.get("cache-control") == "no-store", (r.url, r.headers)
    assert "strict-transport-security" not in r.headers  # not behind TLS here


def test_every_page_and_api_answer_carries_the_security_headers(api: Api) -> None:
    c = api.client
    for r in (
        c.get("/"),
        c.get("/console/login"),
        c.get("/console"),  # a redirect to the login page
        c.get("/no/such/page"),
        c.get(f"{V1}/procedures"),
        c.get(f"{V1}/cases"),  # 401 problem+json
        c.get("/healthz"),
        c.get("/openapi.json"),
    ):
        assert r.status_code < 500, r.text
        assert_strict(r)
    css = c.get("/static/app.css")
    assert css.status_code == 200
    assert_strict(css, cached=True)
    for path in ("/docs", "/redoc"):
        r = c.get(path)
        assert r.status_code == 200
        assert_strict(r, docs=True)


def test_answers_of_the_hot_layer_carry_the_security_headers(api: Api) -> None:
    layer = api.app.hot
    assert layer is not None
    cid, version = api.case_in("objection", [])
    api.case(cid)  # the handler's token is known, as in steady use
    before = layer.answered
    r = api.act(cid, "accept", "office_handler", version)
    assert r.status_code == 200 and layer.answered == before + 1, r.text
    assert_strict(r)
    refused = api.act(cid, "accept", "office_handler", version)  # stale now: 412
    assert refused.status_code == 412 and layer.answered == before + 2
    assert_strict(refused)

    filed = api.apply().json()
    before = layer.answered
    r = api.status(filed["case_no"], filed["access_code"])
    assert r.status_code == 200 and layer.answered == before + 1, r.text
    assert_strict(r)
    r = api.status(filed["case_no"], "WRONG")
    assert r.status_code == 404 and layer.answered == before + 2
    assert_strict(r)


def test_behind_https_sends_hsts_and_a_secure_session_cookie(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = make_api(world, tmp_path, monkeypatch)
    cookie = plain.client.get("/console/login").headers["set-cookie"]
    assert "redress_session=" in cookie and "secure" not in cookie.lower()

    monkeypatch.setattr(world.engine.settings, "behind_https", True)
    api = Api(world)
    for r in (api.client.get("/console/login"), api.get("/procedures")):
        assert r.headers["strict-transport-security"].startswith("max-age=")
    cookie = api.client.get("/console/login").headers["set-cookie"]
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert "secure" in attrs and "httponly" in attrs and "samesite=lax" in attrs, cookie


# -- attachments -------------------------------------------------------------------------------


def upload(api: Api, cid: int, name: str, data: bytes = PDF) -> httpx.Response:
    """A multipart upload with `name` as sent, byte for byte (httpx would escape control
    characters in it)."""
    head = (
        f'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/html\r\n\r\n"
    )
    body = head.encode("utf-8", "surrogatepass") + data + b"\r\n--b0undary--\r\n"
    return api.post(
        f"/cases/{cid}/attachments",
        "office_handler",
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        content=body,
    )


def console_client(api: Api, user: str) -> TestClient:
    client = TestClient(api.app)
    form = client.get("/console/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    r = client.post(
        "/console/login",
        data={"csrf": csrf[1], "token": api.world.tokens[user], "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def test_attachments_are_served_as_downloads_under_their_stored_type(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    meta = upload(api, cid, "撤销决定书 v1.pdf").json()
    expected = "attachment; filename=\"v1.pdf\"; filename*=UTF-8''" + quote(
        "撤销决定书 v1.pdf", safe=""
    )
    staff = console_client(api, "office_handler")
    for r in (
        api.get(f"/attachments/{meta['id']}", "office_handler"),
        staff.get(f"/console/attachments/{meta['id']}"),
    ):
        assert r.status_code == 200 and r.content == PDF
        assert r.headers["content-disposition"] == expected, r.headers
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers.get_list("x-content-type-options") == ["nosniff"]  # not twice
        assert_strict(r)

    # A name with nothing ASCII in it still has a plain fallback.
    meta = upload(api, cid, "决定书.pdf").json()
    r = api.get(f"/attachments/{meta['id']}", "office_handler")
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"attachment.pdf\"; filename*=UTF-8''" + quote("决定书.pdf")
    )


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("evil\u202efdp.exe", "evilfdp.exe"),  # right-to-left override: "evilexe.pdf" shown
        ("\u2066report\u2069\u200e\u200f\u061c.pdf", "report.pdf"),
        ("\x07bell\x1b.pdf", "bell.pdf"),
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ("../../etc/passwd.pdf", "etc passwd.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("  many \t  spaces\n.pdf ", "many spaces .pdf"),
        ("e\u0301te\u0301.pdf", "\u00e9t\u00e9.pdf"),  # NFC
        ("\u202e", "attachment.pdf"),
        (".pdf", "attachment.pdf"),
        ("x" * 300 + ".pdf", "x" * (MAX_NAME - 4) + ".pdf"),
    ],
)
def test_upload_names_are_cleaned_before_they_are_stored(api: Api, sent: str, stored: str) -> None:
    cid = api.open_case("objection")["case_id"]
    r = upload(api, cid, sent)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == stored and r.json()["content_type"] == "application/pdf"
    assert [a["filename"] for a in api.case(cid)["attachments"]] == [stored]
    event = api.get(f"/cases/{cid}/events", "office_handler").json()[-1]
    assert event["detail"]["filename"] == stored
    with api.world.engine.db.read() as conn:
        row = conn.exec_driver_sql("SELECT filename FROM attachments").scalar_one()
    assert row == stored


def test_every_way_of_storing_an_upload_cleans_its_name(api: Api) -> None:
    # The portal, the console and the applicants' API all store through add_many.
    world = api.world
    cid = api.open_case("objection")["case_id"]
    out = Attachments(world.engine).add_many(
        cid, world.actor("office_handler"), [("a\u202eb.pdf", PDF), ("\x00.pdf", PDF)]
    )
    assert [s.filename for s in out] == ["ab.pdf", "attachment.pdf"]

    from engine.attachments import MAX_NAME as BOUND
    from engine.attachments import clean_filename

    assert BOUND == MAX_NAME
    assert clean_filename("", "image/png") == "attachment.png"
    # (python-multipart already keeps only what follows a backslash in an uploaded name)
    assert clean_filename("C:\\Users\\me\\scan.pdf") == "C: Users me scan.pdf"
    assert len(clean_filename("名" * 500 + ".docx")) == MAX_NAME


def test_an_api_upload_of_two_files_is_refused_and_stores_nothing(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    before = snapshot(api.world.engine)
    parts: list[tuple[str, Any]] = [
        ("file", ("a.pdf", PDF, "application/pdf")),
        ("file", ("b.pdf", PDF + b"b", "application/pdf")),
    ]
    r = api.post(f"/cases/{cid}/attachments", "office_handler", files=parts)
    body = problem(r, 422, "invalid_payload")
    assert fields(body) == {"file": "too_many"}
    assert body["errors"][0]["message"] == "one file per request"
    assert body["errors"][0]["message_zh"] == "每次只能上传一个文件"
    assert snapshot(api.world.engine) == before
    assert api.case(cid)["attachments"] == []
    store = Path(api.world.engine.settings.var_dir) / "attachments"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))
    assert upload(api, cid, "a.pdf").status_code == 201  # one is fine


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_need_the_metrics_token_or_an_admin(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scrape(authorization: str | bytes | None) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return api.client.get("/metrics", headers=headers)

    tokens = api.world.tokens
    for refused in (
        None,
        "",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        "Bearer rd_not-a-token",
        f"Bearer {tokens['office_handler']}",
        f"Bearer {tokens['office_head']}",
    ):
        body = problem(scrape(refused), 401, "unauthenticated")
        assert "redress_cases" not in str(body)
    r = scrape(f"Bearer {tokens['office_admin']}")
    assert r.status_code == 200 and "redress_cases_overdue" in r.text
    assert_strict(r)

    problem(scrape("Bearer scrape-me"), 401)  # no metrics token configured
    monkeypatch.setattr(api.world.engine.settings, "metrics_token", "scrape-me")
    assert scrape("Bearer scrape-me").status_code == 200
    assert scrape(f"Bearer {tokens['amr_admin']}").status_code == 200
    for refused in (
        "Bearer scrape-m",
        "Bearer scrape-me2",
        "Bearer \u00e9".encode("latin-1"),
        None,
    ):
        problem(scrape(refused), 401, "unauthenticated")
