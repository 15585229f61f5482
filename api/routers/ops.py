"""Health and metrics (Prometheus text; a metrics token or an admin's token)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import EngineDep, bearer_token, current_actor
from api.problems import Unauthenticated, responses
from api.schemas import Check, Health, Ready
from engine import schema as t
from engine.queries import case_counts
from engine.service import Engine

if TYPE_CHECKING:
    from workflows.loop import Watched

router = APIRouter(tags=["ops"])


class CaseCollector(Collector):
    """Counted at scrape time, straight from the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state, overdue = case_counts(self.engine)
        cases = GaugeMetricFamily(
            "redress_cases", "Cases by procedure and state", labels=["procedure", "state"]
        )
        for procedure, state, n in by_state:
            cases.add_metric([procedure, state], n)
        yield cases
        yield GaugeMetricFamily(
            "redress_cases_overdue",
            "Cases with at least one running deadline past due",
            value=overdue,
        )


def make_registry(engine: Engine) -> tuple[CollectorRegistry, Histogram]:
    """The scrape registry and the latency histogram. Under `redress serve --workers N` each
    worker process writes its samples to PROMETHEUS_MULTIPROC_DIR and a scrape, whichever
    worker answers it, adds up every worker's files (prometheus_client's multiprocess mode)."""
    registry = CollectorRegistry()
    registry.register(CaseCollector(engine))
    shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if shared:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    latency = Histogram(
        "redress_http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        # Multiprocess: samples go to the worker's files, read back by the collector above.
        registry=None if shared else registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
    return registry, latency


@router.get(
    "/healthz",
    response_model=Health,
    responses=responses(500),
    summary="Alive, and the database answers",
)
def healthz(engine: EngineDep) -> Health:
    with engine.db.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    return Health(status="ok", database=engine.db.dialect)


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready: the failing checks say why"}},
    summary="Ready to serve: database, migrations, the engine loop, due timers and messages",
)
def readyz(request: Request, engine: EngineDep) -> Response:
    """For a load balancer or an orchestrator: 200 when this process can do its work, 503
    (with the checks) when not. The engine loop (if this process runs it) must have had a
    good round within two intervals; in any process, the oldest due timer and the oldest
    pending message must not be older than two intervals (the loop or Prefect's workers are
    not keeping up, or not running)."""
    checks = readiness(engine, getattr(request.app.state, "engine_loop", None))
    ready = all(c.ok for c in checks.values())
    body = Ready(status="ready" if ready else "not_ready", checks=checks)
    return Response(
        body.model_dump_json(),
        status_code=200 if ready else 503,
        media_type="application/json",
        headers={} if ready else {"Retry-After": "5"},
    )


def readiness(engine: Engine, loop: Watched | None) -> dict[str, Check]:
    from engine.migrate import current, head

    interval = engine.settings.engine_interval
    late = 2 * interval
    checks: dict[str, Check] = {}
    try:
        with engine.db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
            now = engine.now()
            oldest_timer = conn.execute(
                sa.select(sa.func.min(t.timers.c.next_at)).where(t.timers.c.next_at.is_not(None))
            ).scalar()
            oldest_message = conn.execute(
                sa.select(sa.func.min(t.outbox.c.next_attempt_at)).where(
                    t.outbox.c.status == "pending"
                )
            ).scalar()
        checks["database"] = Check(ok=True, detail=f"{engine.db.dialect} answers")
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = Check(ok=False, detail=f"unreachable: {type(exc).__name__}")
        return checks
    at, want = current(engine.db.engine), head()
    checks["migrations"] = Check(
        ok=at == want, detail=f"at head {want}" if at == want else f"at {at}, head is {want}"
    )
    if loop is not None:
        h = loop.health()
        if not h.alive:
            checks["engine_loop"] = Check(ok=False, detail="stopped")
        elif h.since_last_ok is None:
            checks["engine_loop"] = Check(
                ok=False, detail=f"no good round yet ({h.failures_in_a_row} failed: {h.last_error})"
            )
        else:
            checks["engine_loop"] = Check(
                ok=h.since_last_ok <= late,
                detail=f"last good round {h.since_last_ok:.0f} s ago"
                + (
                    f"; {h.failures_in_a_row} failed since: {h.last_error}"
                    if h.failures_in_a_row
                    else ""
                ),
            )
    for name, oldest, what in (
        ("timers", oldest_timer, "due timer"),
        ("outbox", oldest_message, "message"),
    ):
        due = t.to_ts(oldest)
        if due is None or due > now:
            checks[name] = Check(ok=True, detail=f"no {what} waiting")
        else:
            waited = (now - due).total_seconds()
            checks[name] = Check(
                ok=waited <= late, detail=f"oldest {what} waiting {waited:.0f} s (bound {late:g} s)"
            )
    return checks


async def metrics_reader(
    engine: EngineDep,
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <REDRESS_METRICS_TOKEN>`, or an admin's staff token"),
    ] = None,
) -> None:
    """Case counts are not for everyone: the metrics token (compared in constant time) or an
    admin's staff token; anything else is a 401."""
    token = bearer_token(authorization)
    expected = engine.settings.metrics_token
    if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    if token:
        try:
            actor = await current_actor(engine, authorization)
        except Unauthenticated:
            actor = None
        if actor is not None and actor.role == "admin":
            return
    raise Unauthenticated(
        "metrics need the metrics token or an admin's token", "查看监控指标需要监控令牌或管理员令牌"
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    dependencies=[Depends(metrics_reader)],
    responses={
        **responses(401),
        200: {
            "content": {
                "text/plain": {
                    "example": 'redress_cases{procedure="objection",state="submitted"} 3.0\n'
                }
            },
            "description": "Prometheus text exposition",
        },
    },
)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
