"""The two flows the clock runs. Each is a thin wrapper: one engine call, its result returned.

They are async on purpose: a sync flow pays about a second for Prefect's heartbeat thread,
an async one about a fifth of that (measured with Prefect 3.8 on its ephemeral API).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from prefect import flow

from workflows import runtime


@flow(name="sweep-deadlines", retries=0)
async def sweep_deadlines(now: datetime | None = None, batch: int = 500) -> dict[str, Any]:
    """Fire every due timer (reminders, escalations, automatic transitions)."""
    result = runtime.deadlines().sweep(now=now, batch=batch)
    return asdict(result)


@flow(name="deliver-outbox", retries=0)
async def deliver_outbox(now: datetime | None = None, limit: int = 500) -> dict[str, Any]:
    """Send pending notices, staff messages and platform pushes; retries are the engine's."""
    result = runtime.delivery().deliver(now=now, limit=limit)
    return asdict(result)
