"""The two busiest operations, answered in front of FastAPI's per-request machinery.

`POST /api/v1/cases/{id}/actions/{trigger}` (every step of every case) and
`GET /api/v1/status/{case_no}` (applicants checking on their case, often from a phone) are most
of the API's traffic. For them FastAPI's routing, dependency solving and middleware cost more
than the engine's own work: about 0.4 ms a request on the reference machine against 0.15 ms
for an advance (docs/BENCHMARKS.md). `HotRoutes` is a pure ASGI layer in front of FastAPI
(`api.app.RedressAPI` hands it every HTTP request, before FastAPI's telemetry check and
middleware stack) that answers the *ordinary* form of these two requests itself, through the
same functions the FastAPI routes call: the same engine command on the same write lane, the
same answer (`action_response`, `model_response(StatusOut)`), the same errors
(`problems.from_error`; `problems.unexpected` for a bug), the same wrong-code guard and the same
latency metric (the request is labelled with the FastAPI route).

Anything out of the ordinary goes on to the FastAPI route unchanged (the body it read is
handed on): a missing or malformed header, a body that is not a plain JSON object, a token not
seen in the last few seconds, a query string other than `lang`. The FastAPI routes stay the one
documented contract (OpenAPI) and give their errors as before; tests/api/test_hot.py compares
the two paths answer by answer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.deps import (
    bearer_token,
    guarded_for,
    model_response,
    pick_language,
    run_read,
    scope_client,
)
from api.routers.cases import action_response, parse_if_match
from api.schemas import StatusOut
from engine.applicants import status_lookup
from engine.service import Engine
from states.errors import RedressError
from states.machine import is_clean_text

PREFIX = "/api/v1"
ACTION = re.compile(r"/api/v1/cases/([1-9][0-9]{0,15})/actions/([a-z_]{1,60})")
STATUS = re.compile(r"/api/v1/status/([A-Za-z0-9]{4,32})")
IF_MATCH = re.compile(r'(?:W/)?"?[0-9]{1,12}"?')
MAX_BODY = 64 * 1024  # larger action bodies take the FastAPI route
LANG_QUERY = {b"": None, b"lang=zh": "zh", b"lang=en": "en"}


class HotRoutes:
    """Answers ordinary advances and status look-ups; hands everything else to `fallback`
    (FastAPI's own handling of the request, from its start)."""

    def __init__(self, api: FastAPI, fallback: ASGIApp) -> None:
        self.api = api
        self.fallback = fallback
        self.action_route = RouteLabel(PREFIX + "/cases/{case_id}/actions/{trigger}")
        self.status_route = RouteLabel(PREFIX + "/status/{case_no}")
        self.answered = 0  # requests answered here (tests: the path is really taken)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "POST" and (m := ACTION.fullmatch(path)):
            await self._action(scope, receive, send, int(m[1]), m[2])
        elif method == "GET" and (m := STATUS.fullmatch(path)):
            await self._status(scope, receive, send, m[1])
        else:
            await self.fallback(scope, receive, send)

    async def _action(
        self, scope: Scope, receive: Receive, send: Send, case_id: int, trigger: str
    ) -> None:
        start = time.perf_counter()
        body, complete = await _read_body(receive, MAX_BODY)
        command = _ordinary_action(scope, body) if complete and case_id <= 2**53 else None
        if command is None:
            await self.fallback(scope, _replay(body, complete, receive), send)
            return
        token, version, key, payload = command
        engine: Engine = self.api.state.engine
        try:
            # Read on every request (no cache): a disabled user is refused at once.
            actor = await run_read(engine, partial(engine.authenticate, token))
        except Exception:  # FastAPI's route answers it: the documented 401, or a 503
            await self.fallback(scope, _replay(body, complete, receive), send)
            return
        scope["route"] = self.action_route  # as FastAPI sets it
        try:
            result = await self.api.state.lane.run(
                engine.advance, case_id, trigger, actor, payload, version, key
            )
        except RedressError as exc:
            response: Response = problems.from_error(exc)
        except Exception as exc:
            await self._answer(problems.unexpected(exc), scope, receive, send, start)
            raise  # as Starlette's error layer does: the server logs it too
        else:
            response = action_response(result)
        await self._answer(response, scope, receive, send, start)

    async def _status(self, scope: Scope, receive: Receive, send: Send, case_no: str) -> None:
        start = time.perf_counter()
        lang = LANG_QUERY.get(scope["query_string"], "?")
        headers = _headers(scope) if lang != "?" else None
        if headers is None:
            await self.fallback(scope, receive, send)
            return
        state = self.api.state
        engine: Engine = state.engine
        lang = pick_language(lang, headers.get("accept-language"))
        code = headers.get("x-access-code") or ""
        scope["route"] = self.status_route
        try:
            view = await guarded_for(
                state.access_guard,
                engine,
                scope_client(scope.get("client")),
                case_no,
                lambda guard, client: status_lookup(engine, case_no, code, lang, guard, client),
            )
        except RedressError as exc:
            response: Response = problems.from_error(exc)
        except Exception as exc:
            await self._answer(problems.unexpected(exc), scope, receive, send, start)
            raise
        else:
            response = model_response(StatusOut, view)
        await self._answer(response, scope, receive, send, start)

    async def _answer(
        self, response: Response, scope: Scope, receive: Receive, send: Send, start: float
    ) -> None:
        self.answered += 1
        try:
            await response(scope, receive, send)
        finally:
            # The latency metric, as api.app.Timing records FastAPI's answers.
            self.api.state.latency.observe(
                scope["method"],
                scope["route"].path,
                response.status_code,
                time.perf_counter() - start,
            )


@dataclass(frozen=True)
class RouteLabel:
    """What the latency metric (`api.app.Timing`) reads off a routed request: its template."""

    path: str


def _ordinary_action(
    scope: Scope, body: bytes
) -> tuple[str, int, str | None, dict[str, Any]] | None:
    """(bearer token, expected version, idempotency key, payload) of an ordinary advance, or
    None for anything the FastAPI route should see."""
    headers = None if scope["query_string"] else _headers(scope)
    if headers is None:
        return None
    token = bearer_token(headers.get("authorization"))
    if_match = headers.get("if-match")
    key = headers.get("idempotency-key")
    if not token or len(token) > 500 or if_match is None or not IF_MATCH.fullmatch(if_match):
        return None
    if key is not None and (len(key) > 200 or not is_clean_text(key)):
        return None
    payload = _json_object(body, headers.get("content-type"))
    if payload is None:
        return None
    return token, parse_if_match(if_match), key, payload


def _headers(scope: Scope) -> dict[str, str] | None:
    """The request's headers by lower-case name, as Starlette decodes them (latin-1); None
    if one that matters here is repeated (FastAPI decides what that means)."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key in out:
            return None
        out[key] = value.decode("latin-1")
    return out


def _json_object(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The action's payload as FastAPI reads it (an empty body: {}), or None for anything
    FastAPI might read differently: another content type, or JSON that is not an object, or
    that orjson is stricter about than the standard library (NaN, huge integers)."""
    if not body:
        return {}
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != (
        "application/json"
    ):
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the body; complete=False if there is more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A `receive` that gives the app the body already read, then the rest as it comes."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed
