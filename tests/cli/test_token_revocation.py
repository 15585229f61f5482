"""A revoked token, a rotated one and a disabled user are refused at once by every server
process on one database: two real `redress serve` processes, PostgreSQL and SQLite.

The documented bound (README "Tokens") is zero: each request reads its token's row in its own
transaction, so the first request that starts after the revocation committed is refused,
whichever process it reaches. The test revokes through server A's API (and the CLI) and asks
server B immediately, with no wait in between.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import World
from server_support import Server, two_servers
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture
def servers(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, Server]]:
    with two_servers(db_url, tmp_path, monkeypatch) as pair:
        yield pair


def _queue(server: Server, token: str) -> int:
    return server.call("GET", "/cases", token).status_code


def _console_session(server: Server, token: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30)
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    signed_in = client.post("/console/login", data={"token": token, "csrf": csrf.group(1)})
    assert signed_in.status_code in (200, 303), signed_in.text
    assert client.get("/console", follow_redirects=False).status_code == 200
    return client


def test_a_revoked_token_is_refused_at_once_by_the_other_server(
    world: World, servers: tuple[Server, Server]
) -> None:
    a, b = servers
    admin = world.tokens["office_admin"]
    name = world.actors["amr_handler"].name
    issued = a.call("POST", f"/users/{name}/tokens", admin, json={"label": "two servers"})
    assert issued.status_code == 201, issued.text
    token, token_id = issued.json()["token"], issued.json()["id"]
    assert _queue(a, token) == 200 and _queue(b, token) == 200
    session_b = _console_session(b, token)  # a console session on B, opened with the token

    revoked = a.call("POST", f"/tokens/{token_id}/revoke", admin)
    assert revoked.status_code == 200, revoked.text
    # The very next request, on the other process: refused, and the console session too.
    answer = b.call("GET", "/cases", token)
    assert answer.status_code == 401 and "已过期或已停用" in answer.json()["detail_zh"]
    assert _queue(a, token) == 401
    gone = session_b.get("/console", follow_redirects=False)
    assert gone.status_code == 303 and "/console/login" in gone.headers["location"]
    session_b.close()

    # Rotation: the old text stops everywhere at once, the new one works everywhere.
    initial = world.tokens["amr_handler"]
    tid = next(
        t["id"]
        for t in a.call("GET", "/tokens", admin, params={"user": name}).json()
        if t["label"] == "initial"
    )
    rotated = b.call("POST", f"/tokens/{tid}/rotate", admin)
    assert rotated.status_code == 201, rotated.text
    assert _queue(a, initial) == 401 and _queue(b, initial) == 401
    assert _queue(a, rotated.json()["token"]) == 200


def test_a_user_disabled_by_the_cli_is_refused_by_both_servers(
    world: World, servers: tuple[Server, Server]
) -> None:
    a, b = servers
    token = world.tokens["hrss_handler"]
    session_a = _console_session(a, token)
    assert _queue(a, token) == 200 and _queue(b, token) == 200
    done = runner.invoke(app, ["user", "disable", world.actors["hrss_handler"].name])
    assert done.exit_code == 0, done.output
    assert _queue(b, token) == 401 and _queue(a, token) == 401
    assert session_a.get("/console", follow_redirects=False).status_code == 303
    session_a.close()
    assert runner.invoke(app, ["user", "enable", world.actors["hrss_handler"].name]).exit_code == 0
    assert _queue(b, token) == 200  # enabled again: its live token works again
