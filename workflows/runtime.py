"""The engine the flows use: built once per process from settings, replaceable in tests."""

from __future__ import annotations

from engine.deadlines import Deadlines
from engine.factory import build_delivery, build_engine
from engine.outbox import Delivery
from engine.service import Engine

_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = build_engine(migrated=True)
    return _engine


def use(e: Engine | None) -> None:
    """Point the flows at another engine (tests, or `redress serve` sharing its own)."""
    global _engine
    _engine = e


def deadlines() -> Deadlines:
    return Deadlines(engine())


def delivery() -> Delivery:
    return build_delivery(engine())
