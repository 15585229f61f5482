"""The flows: as plain functions, and once under Prefect's own test harness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from conftest import World, at
from helpers import drive, open_objection

from engine.service import SYSTEM
from workflows import runtime
from workflows.flows import deliver_outbox, sweep_deadlines
from workflows.loop import EngineLoop


@pytest.fixture
def flows_on(world: World) -> Iterator[World]:
    runtime.use(world.engine)
    yield world
    runtime.use(None)


def test_flows_as_plain_functions(flows_on: World) -> None:
    w = flows_on
    case = open_objection(w)
    drive(w, case.case_id, "objection", ["request_supplement"])
    result = asyncio.run(sweep_deadlines.fn(now=at("2026-04-23 00:00")))
    assert result["actions"] == {"transition": 1} and result["errors"] == []
    assert w.engine.case_view(case.case_id, SYSTEM)["state"] == "deemed_withdrawn"
    sent = asyncio.run(deliver_outbox.fn(now=at("2026-04-23 00:00")))
    assert sent["sent"] >= 4 and sent["failed"] == 0  # receipt, request, withdrawal, sync …
    again = asyncio.run(deliver_outbox.fn(now=at("2026-04-23 00:00")))
    assert again["sent"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_flows_under_prefect_harness(flows_on: World) -> None:
    from prefect.testing.utilities import prefect_test_harness

    w = flows_on
    case = open_objection(w)
    with prefect_test_harness(server_startup_timeout=120):
        result = asyncio.run(sweep_deadlines(now=at("2026-04-10 00:00")))
        delivered = asyncio.run(deliver_outbox(now=at("2026-04-10 00:00")))
        # The embedded loop of `redress serve` runs both flows round after round.
        loop = EngineLoop(interval=0.1)
        loop.start()
        deadline = time.monotonic() + 60
        while loop.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        loop.stop()
        loop.join(30)
    assert loop.runs >= 2
    assert result["actions"] == {"escalate": 1}
    assert delivered["sent"] >= 1
    events = [e["trigger"] for e in w.engine.events(case.case_id, SYSTEM)]
    assert events[-1] == "deadline_expired"
