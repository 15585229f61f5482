"""Issue 21's holes, each as a test that failed on the code before it: forgeable and endless
sessions, the development key, a disabled user's token, the wrong-code guard's race and its
trust in X-Forwarded-For, JSON that wrote and then broke every read, case numbers in 409s,
the public portal showing records no longer published, and the credit_office role outside
the credit office. (Headers, downloads, upload names and /metrics: test_api_hardening.py.)"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
import uvicorn
from api_support import APPLICANT, Api, make_api, problem
from conftest import World, snapshot
from fastapi.testclient import TestClient

from api.app import create_app
from cli.main import forwarded_options
from engine.settings import DEV_SECRET_KEY, InsecureSettings, Settings, check_secret


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m[1]


def _sign_in(client: TestClient, token: str) -> None:
    csrf = _csrf(client.get("/console/login").text)
    r = client.post(
        "/console/login",
        data={"token": token, "csrf": csrf, "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


# -- the secret key ---------------------------------------------------------------------------


def test_the_server_refuses_the_development_key_outside_dev_mode(tmp_path: Path) -> None:
    for key in (DEV_SECRET_KEY, "", "short-key"):
        with pytest.raises(InsecureSettings):
            check_secret(Settings(secret_key=key, var_dir=tmp_path, dev_mode=False))
    check_secret(Settings(secret_key="", var_dir=tmp_path, dev_mode=True))  # development
    check_secret(Settings(secret_key="r" * 40, var_dir=tmp_path))


def test_create_app_refuses_the_development_key(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.world.engine.settings, "secret_key", DEV_SECRET_KEY)
    monkeypatch.setattr(api.world.engine.settings, "dev_mode", False)
    with pytest.raises(InsecureSettings):
        create_app(api.world.engine)


def test_the_key_file_is_read_when_no_key_is_set(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("f" * 48 + "\n")
    assert Settings(secret_key="", var_dir=tmp_path).secret_key == "f" * 48


def test_a_forged_session_cookie_gives_nothing(api: Api) -> None:
    """Signed with the development key (or any key): a cookie naming a user id or a case was
    enough before; now the session must be one the server issued and has not ended."""
    admin_id = api.world.actor("office_admin").user_id
    cid = api.open_case("objection")["case_id"]
    for key in (DEV_SECRET_KEY, api.world.engine.settings.secret_key):
        signer = itsdangerous.TimestampSigner(key)
        for data in (
            {"user_id": admin_id, "sid": "made-up"},
            {"case_id": cid, "case_no": "YY", "case_sid": "made-up"},
        ):
            raw = base64.b64encode(json.dumps(data).encode())
            cookie = signer.sign(raw).decode()
            c = TestClient(api.app, cookies={"redress_session": cookie})
            r = c.get("/console", follow_redirects=False)
            assert r.status_code == 303 and "/console/login" in r.headers["location"], key


# -- sessions that end ------------------------------------------------------------------------


def test_a_session_replayed_after_sign_out_is_refused(api: Api) -> None:
    client = TestClient(api.app)
    _sign_in(client, api.world.tokens["office_handler"])
    assert client.get("/console", follow_redirects=False).status_code == 200
    saved = client.cookies.get("redress_session")
    csrf = _csrf(client.get("/console").text)
    r = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    replay = TestClient(api.app, cookies={"redress_session": saved})
    r = replay.get("/console", follow_redirects=False)
    assert r.status_code == 303 and "/console/login" in r.headers["location"]


def test_an_applicant_session_replayed_after_sign_out_is_refused(api: Api) -> None:
    filed = api.apply("objection").json()
    client = TestClient(api.app)
    csrf = _csrf(client.get("/status").text)
    r = client.post(
        "/status",
        data={"case_no": filed["case_no"], "access_code": filed["access_code"], "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/status/{filed['case_no']}", follow_redirects=False)
    assert page.status_code == 200 and filed["case_no"] in page.text
    saved = client.cookies.get("redress_session")
    r = client.post("/status/sign-out", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    replay = TestClient(api.app, cookies={"redress_session": saved})
    r = replay.get(f"/status/{filed['case_no']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/status"


def test_a_disabled_user_is_refused_at_once(api: Api) -> None:
    """Token and console session, in the very next request (no 30-second cache)."""
    token = api.world.tokens["office_handler"]
    client = TestClient(api.app)
    _sign_in(client, token)
    assert api.get("/cases", "office_handler").status_code == 200
    cid = api.open_case("objection")["case_id"]
    assert api.act(cid, "accept", "office_handler", 1).status_code == 200  # the hot path too
    api.world.engine.set_user_active("office_handler", False)
    problem(api.get("/cases", "office_handler"), 401, "unauthenticated")
    problem(api.act(cid, "mark_disputed", "office_handler", 2), 401, "unauthenticated")
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and "/console/login" in r.headers["location"]
    csrf = _csrf(client.get("/console/login").text)
    r = client.post("/console/login", data={"token": token, "csrf": csrf})
    assert r.status_code == 401 and "令牌无效、已过期或已停用" in r.text
    api.world.engine.set_user_active("office_handler", True)
    assert api.get("/cases", "office_handler").status_code == 200
    # Its sessions stay ended: signing in again is needed.
    assert client.get("/console", follow_redirects=False).status_code == 303


# -- the wrong-code guard ---------------------------------------------------------------------


def test_concurrent_wrong_codes_are_bounded(api: Api) -> None:
    """100 at once from one client: at most `access_lock_after` (10) are checked."""
    filed = api.apply("objection").json()
    transport = httpx.ASGITransport(app=api.app)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(
                *(
                    c.get(f"/api/v1/status/{filed['case_no']}", headers={"X-Access-Code": "WRONG"})
                    for _ in range(100)
                )
            )
        return [r.status_code for r in rs]

    codes = asyncio.run(burst())
    checked = sum(1 for s in codes if s == 404)
    assert checked <= api.world.engine.settings.access_lock_after, codes
    assert codes.count(429) == 100 - checked


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(api: Api) -> Iterator[str]:
    """The app under a real uvicorn, with `redress serve`'s forwarded-header options."""
    proxy_headers, allow = forwarded_options(api.world.engine.settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            api.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            proxy_headers=proxy_headers,
            forwarded_allow_ips=allow,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_a_forged_forwarded_for_does_not_pick_a_fresh_bucket(api: Api, served: str) -> None:
    filed = api.apply("objection").json()
    api.app.state.access_guard.slow_after = 100  # no slowing down: this is about counting
    got = []
    with httpx.Client(base_url=served) as c:
        for i in range(12):
            r = c.get(
                f"/api/v1/status/{filed['case_no']}",
                headers={"X-Access-Code": "WRONG", "X-Forwarded-For": f"10.0.0.{i}"},
            )
            got.append(r.status_code)
    assert got[:10] == [404] * 10 and got[10:] == [429, 429], got


def test_trusted_proxies_are_named_in_a_setting(tmp_path: Path) -> None:
    assert forwarded_options(Settings(secret_key="k" * 40, var_dir=tmp_path)) == (False, None)
    trusted = Settings(secret_key="k" * 40, var_dir=tmp_path, trusted_proxies=["10.1.1.1"])
    assert forwarded_options(trusted) == (True, "10.1.1.1")


# -- JSON bounds ------------------------------------------------------------------------------


def _record(api: Api, content: Any) -> httpx.Response:
    from states.identifiers import make_uscc

    return api.post(
        "/records",
        "office_credit_office",
        json={
            "subject_kind": "enterprise",
            "subject_name": "丁公司",
            "subject_identifier": make_uscc("91310000MA1FLD0D1"),
            "source_category": "administrative_penalty",
            "severity": "general",
            "determining_unit": "amr",
            "decision_date": "2026-01-05",
            "published_from": "2026-01-06",
            "content": content,
        },
    )


def test_record_content_is_bounded_and_nothing_is_written(api: Api) -> None:
    """300 levels deep answered 500 on PostgreSQL and was stored; then every read of it
    answered 500. Depth, values, text and integers are bounded; 422 names the field."""
    deep: Any = "x"
    for _ in range(300):
        deep = {"a": deep}
    wide = {f"k{i}": i for i in range(100_000)}
    big_text = {"t": "字" * (5 * 1024 * 1024 // 3)}
    before = snapshot(api.world.engine)
    cases = [
        (deep, "too_deep", "content.a.a"),
        (wide, "too_large", "content"),
        (big_text, "too_large", "content"),
        ({"n": 2**64}, "range", "content.n"),
        ({"list": [1, 2, {"n": -(2**60)}]}, "range", "content.list[2].n"),
    ]
    for content, code, where in cases:
        body = problem(_record(api, content), 422, "invalid_payload")
        (err,) = body["errors"]
        assert err["code"] == code and err["field"].startswith(where), err
    assert snapshot(api.world.engine) == before
    assert api.get("/records", "office_credit_office").status_code == 200
    ok = _record(api, {"measures": ["限制评优评先"], "n": 2**53 - 1})
    assert ok.status_code == 201, ok.text


def test_a_payload_with_100000_keys_is_one_clear_error(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    before = snapshot(api.world.engine)
    r = api.act(cid, "accept", "office_handler", 1, payload={f"k{i}": 1 for i in range(100_000)})
    body = problem(r, 422, "invalid_payload")
    assert [e["field"] for e in body["errors"]] == ["payload"]
    assert snapshot(api.world.engine) == before


# -- what refusals say ------------------------------------------------------------------------


def test_a_409_says_a_case_is_open_not_which(api: Api) -> None:
    rid = api.world.record()
    first = api.apply("objection", record_id=rid).json()
    again = api.apply("objection", record_id=rid)
    body = problem(again, 409, "conflict")
    assert first["case_no"] not in again.text, body
    theirs = api.post(
        "/cases",
        "hrss_handler",
        json={
            "procedure": "objection",
            "record_id": rid,
            "applicant": APPLICANT,
            "payload": {"grounds": "x", "commitment_signed": True},
        },
    )
    assert problem(theirs, 409, "conflict") and first["case_no"] not in theirs.text


# -- the credit office, the public ------------------------------------------------------------


def test_the_credit_office_role_outside_the_credit_office_is_a_unit_user(api: Api) -> None:
    rid = api.world.record()
    subject = api.get(f"/records/{rid}", "office_credit_office").json()["subject_identifier"]
    seen = api.get(f"/records/{rid}", "hrss_credit_office").json()["subject_identifier"]
    assert seen != subject and "*" in seen
    # Only the credit office publishes records.
    r = api.post("/records", "hrss_credit_office", json={**_record_body(), "content": {}})
    problem(r, 403, "forbidden")


def _record_body() -> dict[str, Any]:
    from states.identifiers import make_uscc

    return {
        "subject_kind": "enterprise",
        "subject_name": "戊公司",
        "subject_identifier": make_uscc("91310000MA1FLE0E1"),
        "source_category": "administrative_penalty",
        "severity": "general",
        "determining_unit": "amr",
        "decision_date": "2026-01-05",
        "published_from": "2026-01-06",
    }


def test_the_portal_shows_only_published_records(api: Api) -> None:
    cid, _ = api.case_in("repair", ["forward", "accept", "approve"])
    repaired = api.case(cid)["record"]["id"]
    subject = api.get(f"/records/{repaired}", "office_credit_office").json()
    assert subject["status"] == "repaired"
    live = api.world.record()
    client = TestClient(api.app)
    assert client.get(f"/apply?record_id={live}").status_code == 200
    r = client.get(f"/apply?record_id={repaired}")
    assert r.status_code == 404 and "没有找到该公示记录" in r.text
    csrf = _csrf(client.get("/").text)
    r = client.post("/find", data={"subject": subject["subject_identifier"], "csrf": csrf})
    assert r.status_code == 200
    assert f"record_id={repaired}" not in r.text
