"""The FastAPI application: routers under /api/v1, errors as problem+json, metrics."""

from __future__ import annotations

import gc
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems, web
from api.hot import HotRoutes
from api.routers import applicants, cases, notices, ops, procedures, records
from api.routers.ops import make_registry
from engine.applicants import AccessGuard
from engine.lane import WriteLane
from engine.service import Engine

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


class Timing:
    """Pure ASGI middleware: request latency by route template (cheap on the hot path)."""

    def __init__(self, app: ASGIApp, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram

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
            self.histogram.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - start
            )


def create_app(engine: Engine, *, hot_routes: bool = True) -> FastAPI:
    app = FastAPI(
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
    )
    app.state.engine = engine
    app.state.lane = WriteLane(engine.db, max_group=engine.settings.write_group_max)
    s = engine.settings
    app.state.access_guard = AccessGuard(
        s.access_slow_after, s.access_lock_after, s.access_lock_window_s
    )
    registry, latency = make_registry(engine)
    app.state.metrics_registry = registry
    problems.install(app)
    for r in (
        cases.router,
        cases.attachments_router,
        records.router,
        procedures.router,
        applicants.router,
        notices.router,
    ):
        app.include_router(r, prefix="/api/v1")
    app.include_router(ops.router)
    web.install(app, engine)
    if hot_routes:  # off only to compare the two paths (tests/api/test_hot.py)
        app.add_middleware(HotRoutes, api=app)
    app.add_middleware(Timing, histogram=latency)
    return app


def settle_heap() -> None:
    """Call once the app is built, before serving: what was made while starting (routes,
    models, procedures, the calendar, templates) lives as long as the process, so it is moved
    out of the collector's way (`gc.freeze`). Otherwise every full collection walks it all:
    about 100 ms, every few seconds under load, on the reference machine (docs/BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
