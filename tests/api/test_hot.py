"""api/hot.py answers ordinary advances and status look-ups in front of FastAPI: every answer
must be the one the FastAPI route gives. Each request goes to two apps on the same engine, one
with the hot layer and one without, against two cases in the same state; the answers are
compared (case ids aside) and the hot layer's count shows which path answered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import V1, Api, make_api, problem
from conftest import World
from fastapi.testclient import TestClient

from api.app import create_app


class Pair:
    """The same engine behind two apps: hot (the default) and cold (FastAPI only)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.hot = api.client
        self.cold = TestClient(create_app(api.world.engine, hot_routes=False))
        assert api.app.hot is not None and self.cold.app.hot is None  # type: ignore[attr-defined]
        self.layer = api.app.hot

    def twin_cases(self, steps: list[str] | None = None) -> tuple[int, int, int]:
        """Two objection cases in the same state: (hot's case, cold's case, version)."""
        a, va = self.api.case_in("objection", steps or [])
        b, vb = self.api.case_in("objection", steps or [])
        assert va == vb
        return a, b, va

    def act(
        self,
        ids: tuple[int, int],
        trigger: str,
        user: str | None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[httpx.Response, httpx.Response]:
        out = []
        for client, cid in zip((self.hot, self.cold), ids, strict=True):
            h = dict(headers or {})
            if user is not None:
                h["Authorization"] = f"Bearer {self.api.world.tokens[user]}"
            out.append(client.post(f"{V1}/cases/{cid}/actions/{trigger}", headers=h, **kw))
        return out[0], out[1]


def same(hot: httpx.Response, cold: httpx.Response, ids: tuple[int, int] = (0, 0)) -> None:
    """The same status, type, ETag and body, with the cold case's id read as the hot one's."""

    def norm(value: Any, cid: int) -> Any:
        if isinstance(value, dict):
            return {k: "CASE" if k == "case_id" else norm(v, cid) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v, cid) for v in value]
        if isinstance(value, str) and cid:
            return re.sub(rf"(?<!\d){cid}(?!\d)", "CASE", value)
        return value

    assert hot.status_code == cold.status_code, (hot.text, cold.text)
    assert hot.headers["content-type"] == cold.headers["content-type"]
    assert hot.headers.get("etag") == cold.headers.get("etag")
    assert norm(hot.json(), ids[0]) == norm(cold.json(), ids[1])


@pytest.fixture
def pair(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    return Pair(make_api(world, tmp_path, monkeypatch))


def test_ordinary_advances_are_answered_by_the_hot_layer_as_fastapi_would(pair: Pair) -> None:
    a, b, v = pair.twin_cases()
    pair.api.case(a)  # the handler's token is now known (cached), as in steady use
    before = pair.layer.answered
    hot, cold = pair.act((a, b), "accept", "office_handler", {"If-Match": f'"{v}"'}, json={})
    assert hot.status_code == 200 and hot.json()["state"] == "accepted"
    same(hot, cold, (a, b))
    assert pair.layer.answered == before + 1

    # Refusals from the engine, mapped by problems.from_error on both paths.
    a, b, v = pair.twin_cases(["accept"])
    cases: list[tuple[str, str, dict[str, str], dict[str, Any] | None]] = [
        ("forward", "office_handler", {"If-Match": str(v + 3)}, {}),  # stale: 412
        ("approve_decision", "office_handler", {"If-Match": str(v)}, {}),  # not now: 409
        ("propose_decision", "office_handler", {"If-Match": str(v)}, {"outcome": 7}),  # 422
        ("no_such_trigger", "office_handler", {"If-Match": str(v)}, {}),
        ("forward", "hrss_handler", {"If-Match": str(v)}, {}),  # another department: 404
        ("forward", "office_handler", {"If-Match": f'W/"{v}"'}, {"x": float("inf")}),
    ]
    for trigger, user, headers, body in cases:
        pair.api.case(a, "office_handler")
        pair.api.get("/cases", user)  # caches the user's token
        before = pair.layer.answered
        content = json.dumps(body) if body is not None else None
        ctype = {"Content-Type": "application/json"}
        hot, cold = pair.act((a, b), trigger, user, {**headers, **ctype}, content=content)
        assert 400 <= hot.status_code < 500, hot.text
        same(hot, cold, (a, b))
        assert pair.layer.answered == before + (0 if "x" in (body or {}) else 1), trigger


def test_idempotent_retries_on_the_hot_layer(pair: Pair) -> None:
    a, b, v = pair.twin_cases()
    pair.api.case(a)
    headers = {"If-Match": str(v), "Idempotency-Key": "retry-1"}
    first = pair.act((a, b), "accept", "office_handler", headers, json={})
    again = pair.act((a, b), "accept", "office_handler", headers, json={})
    other = pair.act((a, b), "accept", "office_handler", headers, json={"comment": "x"})
    for hot, cold in (first, again, other):
        same(hot, cold, (a, b))
    assert again[0].json()["replayed"] is True
    assert other[0].status_code == 422


def test_out_of_the_ordinary_requests_go_on_to_fastapi(pair: Pair) -> None:
    a, b, v = pair.twin_cases()
    pair.api.case(a)
    good = {"If-Match": str(v)}
    odd: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("office_handler", {}, {"json": {}}),  # no If-Match: 428
        ("office_handler", {"If-Match": "abc"}, {"json": {}}),  # 422
        ("office_handler", {"If-Match": "1" * 41}, {"json": {}}),  # too long for the header
        ("", good, {"json": {}}),  # no token: 401
        ("office_handler", good, {"json": [1, 2]}),  # not an object
        ("office_handler", good, {"content": b"{", "headers": {"Content-Type": "text/plain"}}),
        ("office_handler", good, {"content": b'{"a": NaN}'}),  # the standard library reads NaN
        ("office_handler", {**good, "Idempotency-Key": "k" * 201}, {"json": {}}),
    ]
    for user, headers, kw in odd:
        before = pair.layer.answered
        extra = kw.pop("headers", {})
        hot, cold = pair.act((a, b), "accept", user or None, {**headers, **extra}, **kw)
        assert pair.layer.answered == before, (headers, kw)
        assert 400 <= hot.status_code < 500, hot.text
        same(hot, cold, (a, b))
    # Path parameters FastAPI would refuse are its to refuse.
    for cid in ("0", "007", str(2**53 + 1)):
        hot, cold = pair.act((int(cid), int(cid)), "accept", "office_handler", good, json={})
        same(hot, cold)
    # An unknown token (tokens are read on every request, never cached): FastAPI's route
    # gives the documented 401.
    before = pair.layer.answered
    bad = {**good, "Authorization": "Bearer rd_not-a-token"}
    hot, cold = pair.act((a, b), "accept", None, bad, json={})
    assert pair.layer.answered == before and hot.status_code == 401
    same(hot, cold, (a, b))
    before = pair.layer.answered
    # A query string (FastAPI ignores what it does not know; so does it here, by passing on).
    a, b, v = pair.twin_cases()
    hot, cold = pair.act((a, b), "accept", "office_handler", good, json={}, params={"x": "1"})
    assert pair.layer.answered == before and hot.status_code == 200
    same(hot, cold, (a, b))


def test_status_look_ups_on_the_hot_layer(pair: Pair) -> None:
    filed = pair.api.apply().json()
    no, code = filed["case_no"], filed["access_code"]
    looks: list[tuple[str, dict[str, str], bool]] = [
        ("", {"X-Access-Code": code}, True),
        ("?lang=en", {"X-Access-Code": code}, True),
        ("", {"X-Access-Code": code, "Accept-Language": "en-GB,en"}, True),
        ("", {"X-Access-Code": code.lower()}, True),  # codes are read case-blind
        ("", {"X-Access-Code": "WRONG"}, True),  # 404, counted by the guard
        ("", {}, True),
        ("?lang=fr", {"X-Access-Code": code}, False),  # FastAPI's 422
        ("?lang=en&x=1", {"X-Access-Code": code}, False),
    ]
    for query, headers, answered_here in looks:
        before = pair.layer.answered
        hot = pair.hot.get(f"{V1}/status/{no}{query}", headers=headers)
        cold = pair.cold.get(f"{V1}/status/{no}{query}", headers=headers)
        same(hot, cold)
        assert pair.layer.answered == before + answered_here, (query, headers)
    hot = pair.hot.get(f"{V1}/status/x!", headers={"X-Access-Code": code})
    cold = pair.cold.get(f"{V1}/status/x!", headers={"X-Access-Code": code})
    same(hot, cold)


def test_wrong_codes_are_slowed_then_refused_on_the_hot_layer(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    filed = pair.api.apply().json()
    guard = pair.api.app.state.access_guard
    monkeypatch.setattr(guard, "slow_after", 100)  # no sleeping in this test
    before = pair.layer.answered
    answers = [
        pair.hot.get(f"{V1}/status/{filed['case_no']}", headers={"X-Access-Code": "NOPE"})
        for _ in range(12)
    ]
    assert [r.status_code for r in answers[:10]] == [404] * 10
    assert answers[-1].status_code == 429 and answers[-1].headers["Retry-After"]
    assert pair.layer.answered == before + 12
    # The right code is refused too while locked out: the guard is per client, not per code.
    r = pair.hot.get(f"{V1}/status/{filed['case_no']}", headers={"X-Access-Code": "x"})
    assert r.status_code == 429


def test_hot_requests_are_measured_under_their_route(pair: Pair) -> None:
    a, b, v = pair.twin_cases()
    pair.api.case(a)
    pair.act((a, b), "accept", "office_handler", {"If-Match": str(v)}, json={})
    metrics = pair.hot.get("/metrics", headers=pair.api.headers("office_admin")).text
    label = 'method="POST",route="/api/v1/cases/{case_id}/actions/{trigger}",status="200"} 1.0'
    assert re.search(r"_count\{" + re.escape(label), metrics), metrics
    paths = pair.api.app.openapi()["paths"]
    assert {pair.layer.action_route.path, pair.layer.status_route.path} <= set(paths)


def test_an_unexpected_error_on_the_hot_path_is_a_logged_500_problem(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug, not bad input: the same answer FastAPI's error layer gives, and the server
    # still sees the exception (logged and raised, as Starlette's error layer does).
    a, _, v = pair.twin_cases()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pair.api.world.engine, "advance", broken)
    client = TestClient(pair.api.app, raise_server_exceptions=False)
    before = pair.layer.answered
    h = {"Authorization": f"Bearer {pair.api.world.tokens['office_handler']}", "If-Match": str(v)}
    r = client.post(f"{V1}/cases/{a}/actions/accept", headers=h, json={})
    assert pair.layer.answered == before + 1
    body = problem(r, 500, "internal")
    assert "a bug" not in r.text and body["detail"].startswith("internal error")
    assert any("unhandled error" in rec.message for rec in caplog.records)
    metrics = client.get("/metrics", headers=pair.api.headers("office_admin")).text
    label = 'method="POST",route="/api/v1/cases/{case_id}/actions/{trigger}",status="500"} 1.0'
    assert re.search(r"_count\{" + re.escape(label), metrics), metrics


def test_with_opentelemetry_on_every_request_goes_through_fastapi(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REDRESS_OTEL: FastAPI's own telemetry, which wraps its routing, sees every request.
    monkeypatch.setattr(world.engine.settings, "otel", True)
    traced = create_app(world.engine)
    assert traced.hot is None and traced._telemetry["tracing"] is True
    monkeypatch.setattr(world.engine.settings, "otel", False)
    plain = create_app(world.engine)
    assert plain.hot is not None and plain._telemetry["tracing"] is False
