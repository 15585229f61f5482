"""The FastAPI application: routers under /api/v1, errors as problem+json, metrics."""

from __future__ import annotations

import gc
import time
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems, web
from api.hot import HotRoutes
from api.routers import admin, applicants, cases, notices, ops, procedures, records
from api.routers.ops import make_registry
from api.security import SecurityHeaders
from engine.applicants import AccessGuard
from engine.lane import WriteLane
from engine.service import Engine
from engine.settings import check_secret

DESCRIPTION = """
redress moves objections (异议), verification (核查), correction or revocation (更正 / 撤销) and
credit repair (信用修复) cases along their legal procedures.

- **Staff** authenticate with `Authorization: Bearer <token>` (`redress user add`). Roles decide
  which triggers a user may fire; departments decide which cases they see (another department's
  case answers 404).
- **Applicants** file at `POST /applications` and follow their case at `GET /status/{case_no}`
  with the header `X-Access-Code`.
- **Changing a case** needs `If-Match: <version>` (from `GET /cases/{id}` or its `ETag`); an
  `Idempotency-Key` makes a retry safe.
- **Errors** are `application/problem+json` (RFC 9457) with `detail` (English) and `detail_zh`.
"""


class Latency:
    """The request-latency histogram by (method, route template, status), its labelled
    children kept: prometheus_client's `labels()` validates and locks on every call."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self._children: dict[tuple[str, str, int], Any] = {}

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        child = self._children.get(key)
        if child is None:
            child = self.histogram.labels(method, path, str(status))
            if len(self._children) < 4096:  # methods are the client's to choose
                self._children[key] = child
        child.observe(seconds)


class Timing:
    """Pure ASGI middleware: request latency by route template (cheap on the hot path)."""

    def __init__(self, app: ASGIApp, latency: Latency) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.latency.observe(scope["method"], path, status, time.perf_counter() - start)


class RedressAPI(FastAPI):
    """FastAPI, with the two busiest requests answered in front of its own machinery.

    `hot` (api/hot.py) answers ordinary advances and status look-ups before FastAPI's
    telemetry check, its middleware stack (error and exception layers, the latency
    middleware) and its routing and dependency solving; it hands every other request to
    FastAPI unchanged. Unset (`hot_routes=False`, or REDRESS_OTEL on, so that every request
    is traced), FastAPI answers everything."""

    hot: HotRoutes | None = None
    security: SecurityHeaders | None = None  # outermost: the hot layer's answers too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.security is not None and scope["type"] == "http":
            send = self.security.wrap(scope, send)
        if self.hot is not None and scope["type"] == "http":
            await self.hot(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


# FastAPI's native OpenTelemetry, off (REDRESS_OTEL): checking for a provider on every request
# alone cost ~3% of a status look-up's CPU.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(engine: Engine, *, hot_routes: bool = True) -> RedressAPI:
    s = engine.settings
    check_secret(s)  # no server with a key anyone could know (outside dev mode)
    app = RedressAPI(
        title="redress",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "cases", "description": "Handlers move cases forward"},
            {"name": "records", "description": "Published credit records (失信记录)"},
            {"name": "applicants", "description": "Applicants file and follow their cases"},
            {"name": "procedures", "description": "Procedure definitions"},
            {"name": "notices", "description": "Notices as sent, PDFs, dead letters"},
            {"name": "ops", "description": "Health and metrics"},
        ],
        telemetry=None if s.otel else TELEMETRY_OFF,
    )
    app.state.engine = engine
    app.state.lane = WriteLane(engine.db, max_group=engine.settings.write_group_max)
    app.state.access_guard = AccessGuard(
        engine,
        s.access_slow_after,
        s.access_lock_after,
        s.access_lock_window_s,
        s.access_client_lock_after,
    )
    registry, latency = make_registry(engine)
    app.state.metrics_registry = registry
    app.state.latency = Latency(latency)
    problems.install(app)
    for r in (
        cases.router,
        cases.attachments_router,
        records.router,
        procedures.router,
        applicants.router,
        notices.router,
        admin.router,
    ):
        app.include_router(r, prefix="/api/v1")
    app.include_router(ops.router)
    web.install(app, engine)
    app.add_middleware(Timing, latency=app.state.latency)
    app.security = SecurityHeaders(hsts=s.behind_https)
    if hot_routes and not s.otel:  # off in tests/api/test_hot.py, to compare the two paths
        app.hot = HotRoutes(app, partial(FastAPI.__call__, app))
    return app


def worker_app() -> RedressAPI:
    """One API worker of `redress serve --workers N` (uvicorn's factory): its own engine from
    the settings; the engine loop runs once, in the supervisor, and is watched through its
    heartbeat file (REDRESS_LOOP_HEARTBEAT, set by `serve`)."""
    import os
    from pathlib import Path

    from engine.factory import build_engine
    from workflows.loop import Heartbeat

    app = create_app(build_engine(migrated=True))
    beat = os.environ.get("REDRESS_LOOP_HEARTBEAT")
    app.state.engine_loop = Heartbeat(Path(beat)) if beat else None
    settle_heap()
    return app


def settle_heap() -> None:
    """Call once the app is built, before serving: what was made while starting (routes,
    models, procedures, the calendar, templates) lives as long as the process, so it is moved
    out of the collector's way (`gc.freeze`). Otherwise every full collection walks it all:
    about 100 ms, every few seconds under load, on the reference machine (docs/BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
