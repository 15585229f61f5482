"""The embedded default: both flows every N seconds, on Prefect's ephemeral API, in a thread
beside the HTTP server. The ephemeral API cannot schedule deployments, so this loop is the
schedule; for scale-out, `redress deploy` hands the schedule to a real Prefect server."""

from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger("redress.loop")


class EngineLoop(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="redress-engine-loop", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.runs = 0

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from workflows.flows import deliver_outbox, sweep_deadlines

        while not self.stopping.is_set():
            for flow in (sweep_deadlines, deliver_outbox):
                try:
                    result = await flow()
                    log.info("%s: %s", flow.name, result)
                except Exception:  # a failed round is logged; the next one tries again
                    log.exception("%s failed", flow.name)
            self.runs += 1
            await asyncio.to_thread(self.stopping.wait, self.interval)

    def stop(self) -> None:
        self.stopping.set()
