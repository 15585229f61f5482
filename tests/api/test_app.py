"""The application as a process serves it: what is done once, before serving."""

from __future__ import annotations

import gc

from api.app import settle_heap


def test_settle_heap_moves_what_startup_made_out_of_the_collectors_way() -> None:
    # Without it every full collection walks the app's routes, models and calendars:
    # ~100 ms every few seconds under load (docs/BENCHMARKS.md, session 7).
    made_at_startup = [{"route": i} for i in range(1000)]
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= before + len(made_at_startup)
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
