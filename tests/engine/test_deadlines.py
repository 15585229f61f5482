"""The clock through the engine: reminders, escalations and automatic transitions fire once and
on time (injected clock); sweeps survive being killed; concurrent sweepers never double-fire."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import World, at
from helpers import drive, open_objection, open_repair

from engine.deadlines import Deadlines
from engine.service import SYSTEM, Engine


def staff_messages(w: World) -> list[tuple[str, str]]:
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT idempotency_key, recipient FROM outbox WHERE kind = 'staff' ORDER BY id"
            )
        ).all()
    return [(r[0].split(":", 2)[2], r[1]) for r in rows]


def sweep_at(w: World, when: str) -> dict[str, int]:
    w.clock.set(at(when))
    result = Deadlines(w.engine).sweep()
    assert result.errors == []
    return result.actions


def test_reminder_and_every_escalation_step_fire_once_on_time(world: World) -> None:
    case = open_objection(world)  # Tue 04-07 09:00; formal check due Thu 04-09
    view = world.engine.case_view(case.case_id, SYSTEM)
    formal = view["deadlines"][0]
    assert (formal["timer"], formal["due_day"]) == ("formal_check", date(2026, 4, 9))

    assert sweep_at(world, "2026-04-08 08:59") == {}
    assert sweep_at(world, "2026-04-08 09:00") == {"reminder": 1}  # one working day before
    assert sweep_at(world, "2026-04-08 18:00") == {}
    assert sweep_at(world, "2026-04-09 23:59") == {}  # the due day is not over yet
    assert sweep_at(world, "2026-04-10 00:00") == {"escalate": 1}  # assignee, at once
    assert sweep_at(world, "2026-04-10 23:59") == {}
    assert sweep_at(world, "2026-04-11 00:00") == {"escalate": 1}  # reviewer, +1 working day
    assert sweep_at(world, "2026-04-13 12:00") == {}  # the weekend does not count
    assert sweep_at(world, "2026-04-14 00:00") == {"escalate": 1}  # head, +1 more
    assert sweep_at(world, "2026-05-01 00:00") == {}  # the chain is over
    assert staff_messages(world) == [
        ("reminder", "assignee@office"),
        ("escalate:0", "assignee@office"),
        ("escalate:1", "reviewer@office"),
        ("escalate:2", "head@office"),
    ]
    events = [e["trigger"] for e in world.engine.events(case.case_id, SYSTEM)]
    assert events == [
        "submit",
        "deadline_reminder",
        "deadline_expired",
        "deadline_escalated",
        "deadline_escalated",
    ]
    # The clock's events do not bump the version a handler holds.
    assert world.engine.case_view(case.case_id, SYSTEM)["version"] == 1
    assert world.engine.verify_audit() == []


def test_late_sweep_catches_up_every_missed_step(world: World) -> None:
    open_objection(world)
    assert sweep_at(world, "2026-04-20 10:00") == {"escalate": 3}  # reminder skipped: too late
    assert [k for k, _ in staff_messages(world)] == ["escalate:0", "escalate:1", "escalate:2"]


def test_no_supplement_in_time_is_deemed_withdrawn(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["request_supplement"])
    # 15 calendar days from 04-07: 04-22 (a Wednesday); reminder two working days before.
    assert sweep_at(world, "2026-04-20 09:00") == {"reminder": 1}
    assert sweep_at(world, "2026-04-22 23:59") == {}
    assert sweep_at(world, "2026-04-23 00:00") == {"transition": 1}
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert view["state"] == "deemed_withdrawn"
    last = world.engine.events(case.case_id, SYSTEM)[-1]
    assert (last["trigger"], last["actor"], last["role"]) == ("deem_withdrawn", "clock", "system")
    assert sweep_at(world, "2026-05-30 00:00") == {}


def test_supplement_in_time_stops_the_withdrawal_clock(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["request_supplement"])
    world.clock.set(at("2026-04-21 16:00"))
    drive(world, case.case_id, "objection", ["supplement"])
    sweep_at(world, "2026-04-23 00:00")
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "submitted"


def test_review_window_closes_the_case(world: World) -> None:
    case = open_objection(world)
    upheld = {"outcome": "upheld", "reasons": "核查属实", "legal_basis": "《条例》"}
    drive(
        world,
        case.case_id,
        "objection",
        ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"],
        {"propose_decision": upheld},
    )
    # Notified 04-07, the letter delivered by post on 04-08 (recorded on 04-09): the window
    # counts from delivery, 15 calendar days → 04-23; the case closes when that day is over.
    world.clock.set(at("2026-04-09 10:00"))
    drive(
        world,
        case.case_id,
        "objection",
        ["record_delivery"],
        {"record_delivery": {"delivered_on": "2026-04-08"}},
    )
    sweep_at(world, "2026-04-23 12:00")
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "notified"
    sweep_at(world, "2026-04-24 00:00")
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "closed"


def test_publication_stops_when_the_maximum_period_ends(world: World) -> None:
    rec = world.record(severity="general", published_from=date(2025, 6, 1))
    # 12 months → 2026-06-01 (a Monday): publication ends when that day is over.
    assert sweep_at(world, "2026-06-01 23:00").get("publication_ended") is None
    assert sweep_at(world, "2026-06-02 00:00")["publication_ended"] >= 1
    versions = world.engine.record_versions(rec)
    assert [v["status"] for v in versions] == ["published", "expired"]


def test_repaired_record_does_not_expire_again(world: World) -> None:
    rec = world.record(severity="general", published_from=date(2025, 6, 1))
    case = open_repair(world, rec)
    drive(world, case.case_id, "repair", ["forward", "accept", "approve"])
    sweep_at(world, "2026-06-02 00:00")
    assert [v["status"] for v in world.engine.record_versions(rec)] == ["published", "repaired"]


def _many_due(w: World, n: int) -> list[int]:
    return [open_objection(w).case_id for _ in range(n)]


def test_killed_sweep_then_rerun_fires_each_timer_exactly_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _many_due(world, 12)
    real = Deadlines._staff_message
    calls = {"n": 0}

    def dying(self: Deadlines, *args: Any, **kw: Any) -> None:
        calls["n"] += 1
        real(self, *args, **kw)  # the write happens...
        if calls["n"] == 6:
            raise KeyboardInterrupt("killed")  # ...and the process dies before COMMIT

    monkeypatch.setattr(Deadlines, "_staff_message", dying)
    world.clock.set(at("2026-04-10 00:00"))
    with pytest.raises(KeyboardInterrupt):
        Deadlines(world.engine).sweep()
    monkeypatch.setattr(Deadlines, "_staff_message", real)
    assert len(staff_messages(world)) == 5  # five committed, the sixth rolled back
    result = Deadlines(world.engine).sweep()
    assert result.actions == {"escalate": 7}
    keys = [k for k, _ in staff_messages(world)]
    assert keys == ["escalate:0"] * 12
    for cid in cases:
        events = [e["trigger"] for e in world.engine.events(cid, SYSTEM)]
        assert events.count("deadline_expired") == 1
    assert Deadlines(world.engine).sweep().fired == 0
    assert world.engine.verify_audit() == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_sweepers_at_once_never_fire_twice(world: World) -> None:
    n = 60
    cases = _many_due(world, n)
    world.clock.set(at("2026-04-20 10:00"))  # every case: 3 escalation steps due
    results = []
    barrier = threading.Barrier(2)

    def run() -> None:
        engine = Engine(world.engine.db, clock=world.clock)
        barrier.wait()
        results.append(Deadlines(engine).sweep(batch=20))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert sum(r.fired for r in results) == 3 * n
    assert all(r.errors == [] for r in results)
    keys = [k for k, _ in staff_messages(world)]
    assert len(keys) == 3 * n and sorted(set(keys)) == ["escalate:0", "escalate:1", "escalate:2"]
    with world.engine.db.read() as conn:
        dupes = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT case_id, trigger, count(*) c FROM case_events "
                "WHERE trigger LIKE 'deadline_%' GROUP BY case_id, trigger "
                "HAVING count(*) > CASE WHEN trigger = 'deadline_escalated' THEN 2 ELSE 1 END) x"
            )
        ).scalar_one()
    assert dupes == 0
    assert len(cases) == n and world.engine.verify_audit() == []


def test_provisional_deadline_recomputed_when_the_year_is_loaded(world: World) -> None:
    world.clock.set(at("2026-12-24 10:00"))
    rec = world.record(severity="general", published_from=date(2026, 6, 1))
    case = open_repair(world, rec)
    overall = next(
        d
        for d in world.engine.case_view(case.case_id, SYSTEM)["deadlines"]
        if d["timer"] == "result_due"
    )
    # 10 working days from 12-24 run into 2027, a year without an official notice yet.
    assert overall["provisional"] and overall["due_day"] == date(2027, 1, 8)
    notice = {
        "kind": "official",
        "year": 2027,
        "days": [
            {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
            {"date": "2027-01-04", "kind": "holiday", "name": "元旦（调休）"},
            {"date": "2027-01-09", "kind": "workday", "name": "调休上班"},
        ],
    }
    result = Deadlines(world.engine).load_calendar(notice, "test notice")
    assert result.recomputed >= 1
    overall = next(
        d
        for d in world.engine.case_view(case.case_id, SYSTEM)["deadlines"]
        if d["timer"] == "result_due"
    )
    # 12-25, 28, 29, 30, 31, 01-05, 06, 07, 08, 09 (a makeup Saturday)
    assert not overall["provisional"] and overall["due_day"] == date(2027, 1, 9)
    event = world.engine.events(case.case_id, SYSTEM)[-1]
    assert event["trigger"] == "deadline_recomputed"
    change = next(c for c in event["detail"]["deadlines"] if c["timer"] == "result_due")
    assert change["from"] == "2027-01-08" and change["due"] == "2027-01-09"
    assert "2027" in change["reason"]
    assert world.engine.verify_audit() == []


def test_calendar_loaded_elsewhere_is_picked_up_by_the_next_sweep(world: World) -> None:
    other = Engine(world.engine.db, clock=world.clock)  # e.g. the server, while the CLI loads
    deadlines = Deadlines(other)
    assert deadlines.refresh_calendar().is_provisional_year(2027)
    cached = other.calendar
    assert deadlines.refresh_calendar() is cached  # nothing changed: no rebuild
    Deadlines(world.engine).load_calendar(
        {
            "kind": "official",
            "year": 2027,
            "days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}],
        },
        "test",
    )
    Deadlines(other).sweep()
    assert not other.calendar.is_provisional_year(2027)


def test_a_rebuilt_calendar_has_this_year_and_next_worked_out_before_any_command(
    world: World,
) -> None:
    # Building the first year imports the holidays package's data (over a second): that is
    # done when the calendar is (re)built at startup or by a sweep, not in a user's request.
    other = Engine(world.engine.db, clock=world.clock)
    cal = Deadlines(other).refresh_calendar()
    year = world.clock.now().year
    assert {year, year + 1} <= set(cal._cache)
