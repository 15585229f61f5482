"""Building the engine from settings: one place that knows how the parts fit together."""

from __future__ import annotations

from engine.clock import Clock
from engine.db import Database
from engine.service import Engine
from engine.settings import get_settings


def build_engine(url: str | None = None, *, clock: Clock | None = None) -> Engine:
    settings = get_settings()
    return Engine(Database(url or settings.database_url), clock=clock)
