"""Scale-out: the flows as deployments with cron schedules on a real Prefect server, run by
`prefect worker start --pool POOL` processes (any number, on any machine with this checkout)."""

from __future__ import annotations

from pathlib import Path

from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parent.parent
FLOWS = {
    "sweep-deadlines": "workflows/flows.py:sweep_deadlines",
    "deliver-outbox": "workflows/flows.py:deliver_outbox",
}


def deploy(
    pool: str,
    sweep_cron: str = "* * * * *",
    deliver_cron: str = "* * * * *",
    timezone: str = "Asia/Shanghai",
) -> list[str]:
    """Create (or update) both deployments in `pool`; returns their ids."""
    from prefect import flow

    ids = []
    for name, cron in (("sweep-deadlines", sweep_cron), ("deliver-outbox", deliver_cron)):
        remote = flow.from_source(source=str(ROOT), entrypoint=FLOWS[name])
        dep_id = remote.deploy(  # type: ignore[union-attr]
            name=name,
            work_pool_name=pool,
            schedules=[Cron(cron, timezone=timezone)],
            build=False,
            push=False,
            print_next_steps=False,
        )
        ids.append(str(dep_id))
    return ids
