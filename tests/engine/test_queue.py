"""The work queue's order and filters, on both databases: sorted on the server across pages
(it was sorted within a page), open cases apart from closed ones."""

from __future__ import annotations

from conftest import World, at
from helpers import drive, open_objection

from engine.queries import CaseFilter, list_cases


def _all_pages(w: World, f: CaseFilter, limit: int = 2) -> list[int]:
    out: list[int] = []
    cursor = None
    while True:
        rows, cursor = list_cases(w.engine, w.actor("office_handler"), f, cursor, limit)
        out += [r["id"] for r in rows]
        if cursor is None:
            return out


def test_sorted_by_the_next_deadline_across_pages(world: World) -> None:
    opened: dict[str, int] = {}
    for day in ("2026-04-09", "2026-04-07", "2026-04-13", "2026-04-08", "2026-04-10"):
        world.clock.set(at(f"{day} 09:00"))
        opened[day] = open_objection(world).case_id
    world.clock.set(at("2026-04-13 10:00"))
    closed = open_objection(world).case_id
    drive(world, closed, "objection", ["reject"])
    by_due = _all_pages(world, CaseFilter(sort="due", closed=False))
    assert by_due == [opened[d] for d in sorted(opened)]  # formal check due in filing order
    newest = _all_pages(world, CaseFilter(sort="newest"))
    assert newest == sorted([*opened.values(), closed], reverse=True)
    filed = _all_pages(world, CaseFilter(sort="filed", closed=True))
    assert filed == [closed]
    assert closed not in _all_pages(world, CaseFilter(closed=False))
