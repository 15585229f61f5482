"""The administrators' API: departments, users, tokens (expiry, list, rotate, revoke) and the
access log, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import PDF, Api, make_api
from conftest import APPLICANT, World, count

from engine import access
from engine.channels import Channel, LogChannel
from engine.outbox import Delivery, Policy, router


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_sets_up_departments_and_users_and_the_new_token_works(api: Api) -> None:
    r = api.post(
        "/departments",
        "office_admin",
        json={
            "id": "tax",
            "name_zh": "市税务局",
            "name_en": "City Tax Bureau",
            "email": "xy@tax.example.gov.cn",
            "parent": "office",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json() | {"users": 0} == {
        "id": "tax",
        "name_zh": "市税务局",
        "name_en": "City Tax Bureau",
        "kind": "unit",
        "jurisdiction": "default",
        "email": "xy@tax.example.gov.cn",
        "parent": "office",
        "users": 0,
    }
    r = api.post(
        "/users",
        "office_admin",
        json={"name": "wang.fang", "role": "handler", "department": "tax"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["department"] == "tax" and body["user"]["active"] is True
    token = body["token"]["token"]
    assert token.startswith("rd_") and body["token"]["label"] == "initial"
    # token_days from now (90 unless the installation says otherwise; the tests' 3650).
    days = api.world.engine.settings.token_days
    expires = datetime.fromisoformat(body["token"]["expires_at"])
    assert expires == api.world.clock.now() + timedelta(days=days)
    # The new user's token works: their department's (empty) queue.
    assert api.client.get("/api/v1/cases", headers=bearer(token)).status_code == 200
    depts = {d["id"]: d for d in api.get("/departments", "office_admin").json()}
    assert depts["tax"]["users"] == 1
    # Change role and department; the next request sees it.
    r = api.client.patch(
        "/api/v1/users/wang.fang",
        headers=api.headers("office_admin"),
        json={"role": "reviewer", "department": "amr"},
    )
    assert r.status_code == 200 and r.json()["role"] == "reviewer", r.text
    r = api.client.patch(
        "/api/v1/departments/tax",
        headers=api.headers("office_admin"),
        json={"name_en": "Tax Bureau", "jurisdiction": "shanghai"},
    )
    assert r.status_code == 200 and r.json()["jurisdiction"] == "shanghai", r.text


def test_bad_administrative_input_names_the_field_and_changes_nothing(api: Api) -> None:
    before = (count(api.world.engine, "departments"), count(api.world.engine, "users"))
    cases = [
        ("/departments", {"id": "Tax!", "name_zh": "x", "name_en": "x"}, 422, "id"),
        (
            "/departments",
            {"id": "tax", "name_zh": "x", "name_en": "x", "parent": "nope"},
            422,
            "parent",
        ),
        ("/departments", {"id": "amr", "name_zh": "x", "name_en": "x"}, 409, None),
        ("/users", {"name": "x", "role": "boss", "department": "amr"}, 422, "role"),
        ("/users", {"name": "x", "role": "handler", "department": "nope"}, 404, None),
        ("/users", {"name": "x y", "role": "handler", "department": "amr"}, 422, "name"),
    ]
    for path, body, status, field in cases:
        r = api.post(path, "office_admin", json=body)
        assert r.status_code == status, (path, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in [e["field"].split(".")[-1] for e in r.json()["errors"]], r.text
    loop = api.client.patch(
        "/api/v1/departments/office", headers=api.headers("office_admin"), json={"parent": "office"}
    )
    assert loop.status_code == 409 and "循环" in loop.json()["detail_zh"]
    assert (count(api.world.engine, "departments"), count(api.world.engine, "users")) == before


def test_only_administrators_administer(api: Api) -> None:
    for user in ("office_handler", "office_head", "office_credit_office", "amr_head"):
        assert api.get("/users", user).status_code == 403
        assert api.get("/tokens", user).status_code == 403
        r = api.post("/departments", user, json={"id": "x1", "name_zh": "x", "name_en": "x"})
        assert r.status_code == 403
    assert api.get("/users").status_code == 401
    # An administrator cannot lock themselves out.
    me = api.world.actors["office_admin"].name
    r = api.client.patch(
        f"/api/v1/users/{me}", headers=api.headers("office_admin"), json={"active": False}
    )
    assert r.status_code == 403


def test_tokens_are_listed_never_shown_rotated_and_revoked_at_once(api: Api) -> None:
    name = api.world.actors["amr_handler"].name
    old = api.world.tokens["amr_handler"]
    r = api.post(f"/users/{name}/tokens", "office_admin", json={"label": "script", "days": 7})
    assert r.status_code == 201, r.text
    second = r.json()
    assert api.client.get("/api/v1/cases", headers=bearer(second["token"])).status_code == 200
    listed = api.get("/tokens", "office_admin", params={"user": name}).json()
    assert [t["label"] for t in listed] == ["script", "initial"]
    assert all("token" not in t for t in listed) and old not in str(listed)
    assert {t["state"] for t in listed} == {"live"}
    # Rotate the initial one: the old text stops at once, the new one works.
    initial = next(t for t in listed if t["label"] == "initial")
    r = api.post(f"/tokens/{initial['id']}/rotate", "office_admin", json={"days": 30})
    assert r.status_code == 201, r.text
    new = r.json()["token"]
    refused = api.client.get("/api/v1/cases", headers=bearer(old))
    assert refused.status_code == 401 and "已过期或已停用" in refused.json()["detail_zh"]
    assert api.client.get("/api/v1/cases", headers=bearer(new)).status_code == 200
    states = {
        t["label"] + str(t["id"]): t["state"]
        for t in api.get("/tokens", "office_admin", params={"user": name}).json()
    }
    assert sorted(states.values()) == ["live", "live", "rotated"]
    # Revoke the script's token: refused from the very next request.
    r = api.post(f"/tokens/{second['id']}/revoke", "office_admin")
    assert r.status_code == 200 and r.json()["state"] == "revoked", r.text
    assert r.json()["revoked_by"] == api.world.actors["office_admin"].name
    assert api.client.get("/api/v1/cases", headers=bearer(second["token"])).status_code == 401
    again = api.post(f"/tokens/{second['id']}/revoke", "office_admin")
    assert again.status_code == 409
    assert api.post("/tokens/999999/revoke", "office_admin").status_code == 404


def test_a_token_expires(api: Api) -> None:
    name = api.world.actors["amr_handler"].name
    issued = api.post(f"/users/{name}/tokens", "office_admin", json={"label": "a day", "days": 1})
    token = issued.json()["token"]
    assert api.client.get("/api/v1/cases", headers=bearer(token)).status_code == 200
    api.world.clock.advance(days=1, seconds=1)
    assert api.client.get("/api/v1/cases", headers=bearer(token)).status_code == 401
    listed = api.get("/tokens", "office_admin", params={"user": name}).json()
    assert next(t for t in listed if t["label"] == "a day")["state"] == "expired"
    bad = api.post(f"/users/{name}/tokens", "office_admin", json={"label": "x", "days": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("days")


def test_disabling_a_user_stops_their_tokens_and_console_session(api: Api) -> None:
    name = api.world.actors["amr_handler"].name
    token = api.world.tokens["amr_handler"]
    page = api.client.get("/console/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = api.client.post(
        "/console/login",
        data={"token": token, "csrf": csrf, "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert api.client.get("/console", follow_redirects=False).status_code == 200
    r = api.client.patch(
        f"/api/v1/users/{name}", headers=api.headers("office_admin"), json={"active": False}
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.client.get("/api/v1/cases", headers=bearer(token)).status_code == 401
    gone = api.client.get("/console", follow_redirects=False)
    assert gone.status_code == 303 and "/console/login" in gone.headers["location"]
    listed = api.get("/tokens", "office_admin", params={"user": name}).json()
    assert {t["state"] for t in listed} == {"user_disabled"}


def test_revoking_the_token_ends_the_console_session_it_opened(api: Api) -> None:
    token = api.world.tokens["amr_handler"]
    page = api.client.get("/console/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    api.client.post("/console/login", data={"token": token, "csrf": csrf, "next": "/console"})
    assert api.client.get("/console", follow_redirects=False).status_code == 200
    name = api.world.actors["amr_handler"].name
    tid = api.get("/tokens", "office_admin", params={"user": name}).json()[0]["id"]
    assert api.post(f"/tokens/{tid}/revoke", "office_admin").status_code == 200
    assert api.client.get("/console", follow_redirects=False).status_code == 303


def test_the_access_log_lists_a_handler_s_views(api: Api) -> None:
    engine = api.world.engine
    opened = api.open_case()
    cid = opened["case_id"]
    up = api.client.post(
        f"/api/v1/cases/{cid}/attachments",
        headers=api.headers("office_handler"),
        files={"file": ("证据.pdf", PDF, "application/pdf")},
    )
    assert up.status_code == 201, up.text
    assert count(engine, "access_log") == 0  # filing and uploading are not views
    ident = api.case(cid)["applicant"]["identifier"]
    assert api.get(f"/attachments/{up.json()['id']}", "office_handler").status_code == 200
    channels: dict[str, Channel] = {"log": LogChannel(), "inapp": LogChannel()}
    Delivery(engine, router(channels, {}), Policy(max_attempts=2)).deliver()  # the receipt
    notices = api.get(f"/cases/{cid}/notices", "office_handler").json()
    assert api.get(f"/notices/{notices[0]['id']}/pdf", "office_handler").status_code == 200
    assert api.get("/records", "office_handler", params={"subject_id": ident}).status_code == 200
    # Nothing is logged for a refused look (another department's handler gets a 404).
    assert api.get(f"/cases/{cid}", "hrss_handler").status_code == 404
    log = api.get(
        "/access-log", "office_admin", params={"user": api.world.actors["office_handler"].name}
    )
    assert log.status_code == 200, log.text
    items = log.json()["items"]
    assert [i["what"] for i in items] == ["search", "notice", "notice", "attachment", "case"]
    assert items[-1]["case_no"] == opened["case_no"] and items[-1]["channel"] == "api"
    assert items[3]["detail"] == "证据.pdf" and items[0]["detail"] == ident
    assert all(i["actor"] == api.world.actors["office_handler"].name for i in items)
    # A handler may read the log of a case they see, not the whole log.
    assert api.get("/access-log", "office_handler").status_code == 403
    mine = api.get("/access-log", "office_handler", params={"case_id": cid})
    assert mine.status_code == 200 and len(mine.json()["items"]) == 4
    assert api.get("/access-log", "hrss_handler", params={"case_id": cid}).status_code == 404
    # Paging backwards.
    page1 = api.get("/access-log", "office_admin", params={"limit": 2}).json()
    page2 = api.get(
        "/access-log", "office_admin", params={"limit": 2, "before": page1["next_before"]}
    ).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == [i["id"] for i in items[:4]]


def test_the_access_log_is_append_only_in_the_database(world: World) -> None:
    engine = world.engine
    cid = engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant=APPLICANT,
        actor=world.actor("office_handler"),
        payload={"grounds": "记录有误", "commitment_signed": True},
    ).case_id
    access.seen(
        engine,
        world.actor("office_handler"),
        "case",
        "",
        channel="console",
        client="t",
        case_id=cid,
    )
    for statement in ("UPDATE access_log SET actor = 'nobody'", "DELETE FROM access_log"):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            engine.db.engine.begin() as conn,
        ):
            conn.execute(sa.text(statement))
    assert count(engine, "access_log") == 1
    rows = access.entries(engine, world.actor("office_admin"), case_id=cid)
    assert rows[0]["actor"] == world.actor("office_handler").name
