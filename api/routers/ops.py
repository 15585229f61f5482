"""Health and metrics (Prometheus text; a metrics token or an admin's token)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.deps import EngineDep, bearer_token, current_actor
from api.problems import Unauthenticated, responses
from api.schemas import Health
from engine.queries import case_counts
from engine.service import Engine

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
    registry = CollectorRegistry()
    registry.register(CaseCollector(engine))
    latency = Histogram(
        "redress_http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
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
