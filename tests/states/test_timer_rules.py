"""Every timer of every definition against the counting rules the README states once.

The table is written by hand: period, scope, the state that starts the timer, the states that
pause it, the day counting starts after (`entry`: the day the state is entered; `filing`: the
filing day the applicant gave; `delivery`: the day the notice is delivered; `decision`: the day
of a decision that changed the record), whether the figure is ours (its `basis` says
"(default)") or the law's (its `basis` cites the rule), and the due day for a start on Tuesday
2026-04-07, worked out on the 2026 calendar (Qingming 04-04–06, Labour Day 05-01–05, makeup
Saturday 05-09). A definition that changes any of these fails here until the table is updated.
"""

from __future__ import annotations

from datetime import date

import pytest

from engine.definitions import Builtin, builtin
from states.calendar import Period, WorkCalendar

Row = tuple[str, str, str, tuple[str, ...], str, bool, date]
V = "verification_supplement"

TABLE: dict[tuple[str, int], dict[str, Row]] = {
    ("objection", 1): {
        "formal_check": (
            "2 working days",
            "case",
            "submitted",
            ("awaiting_supplement",),
            "filing",
            True,
            date(2026, 4, 9),
        ),
        "supplement_due": (
            "15 calendar days",
            "state",
            "awaiting_supplement",
            (),
            "entry",
            True,
            date(2026, 4, 22),
        ),
        "mark_due": ("1 working day", "state", "accepted", (), "entry", False, date(2026, 4, 8)),
        "verify": (
            "5 working days",
            "case",
            "verifying",
            (V, "testing", "forwarded"),
            "entry",
            False,
            date(2026, 4, 14),
        ),
        "forward_due": (
            "2 working days",
            "case",
            "verifying",
            (V, "testing"),
            "entry",
            False,
            date(2026, 4, 9),
        ),
        "evidence_due": ("10 working days", "state", V, (), "entry", True, date(2026, 4, 21)),
        "testing_due": ("20 working days", "state", "testing", (), "entry", True, date(2026, 5, 8)),
        "unit_answer": (
            "5 working days",
            "state",
            "forwarded",
            (),
            "entry",
            False,
            date(2026, 4, 14),
        ),
        "notify_due": ("1 working day", "state", "decided", (), "entry", True, date(2026, 4, 8)),
        "withdraw_due": (
            "3 working days",
            "sync",
            "decided",
            (),
            "decision",
            False,
            date(2026, 4, 10),
        ),
        "review_window": (
            "15 calendar days",
            "state",
            "notified",
            (),
            "delivery",
            True,
            date(2026, 4, 22),
        ),
        "review_decision": (
            "5 working days",
            "state",
            "under_review",
            (),
            "entry",
            False,
            date(2026, 4, 14),
        ),
        "restore_due": (
            "10 working days",
            "state",
            "restoring",
            (),
            "entry",
            True,
            date(2026, 4, 21),
        ),
    },
    ("repair", 1): {
        "forward_due": (
            "2 working days",
            "state",
            "submitted",
            (),
            "filing",
            True,
            date(2026, 4, 9),
        ),
        "acceptance_due": (
            "3 working days",
            "case",
            "submitted",
            ("awaiting_supplement",),
            "filing",
            True,
            date(2026, 4, 10),
        ),
        "supplement_due": (
            "15 calendar days",
            "state",
            "awaiting_supplement",
            (),
            "entry",
            True,
            date(2026, 4, 22),
        ),
        "evidence_due": (
            "5 working days",
            "state",
            "review_supplement",
            (),
            "entry",
            True,
            date(2026, 4, 14),
        ),
        "review_due": (
            "15 working days",
            "case",
            "reviewing",
            ("review_supplement",),
            "entry",
            True,
            date(2026, 4, 28),
        ),
        "result_due": (
            "33 working days",
            "case",
            "submitted",
            ("awaiting_supplement", "review_supplement"),
            "filing",
            True,
            date(2026, 5, 26),
        ),
    },
    ("repair", 2): {
        "forward_due": (
            "1 working day",
            "state",
            "submitted",
            (),
            "filing",
            True,
            date(2026, 4, 8),
        ),
        "acceptance_due": (
            "3 working days",
            "case",
            "submitted",
            ("awaiting_supplement",),
            "filing",
            False,
            date(2026, 4, 10),
        ),
        "supplement_due": (
            "15 calendar days",
            "state",
            "awaiting_supplement",
            (),
            "entry",
            True,
            date(2026, 4, 22),
        ),
        "evidence_due": (
            "5 working days",
            "state",
            "review_supplement",
            (),
            "entry",
            True,
            date(2026, 4, 14),
        ),
        "review_due": (
            "5 working days",
            "case",
            "reviewing",
            ("review_supplement",),
            "entry",
            True,
            date(2026, 4, 14),
        ),
        "result_due": (
            "10 working days",
            "case",
            "submitted",
            ("awaiting_supplement", "review_supplement"),
            "filing",
            False,
            date(2026, 4, 21),
        ),
    },
    # Identification: every figure is ours (no national stage deadlines, DOMAIN.md).
    ("identification", 1): {
        "proposal_due": (
            "10 working days",
            "state",
            "opened",
            (),
            "filing",
            True,
            date(2026, 4, 21),
        ),
        "notice_due": ("3 working days", "state", "proposed", (), "entry", True, date(2026, 4, 10)),
        "statement_due": (
            "5 working days",
            "state",
            "notified",
            (),
            "delivery",
            True,
            date(2026, 4, 14),
        ),
        "statement_answer_due": (
            "5 working days",
            "state",
            "statement_review",
            (),
            "entry",
            True,
            date(2026, 4, 14),
        ),
        "opinion_due": (
            "10 working days",
            "state",
            "task_group_review",
            (),
            "entry",
            True,
            date(2026, 4, 21),
        ),
        "approval_due": (
            "15 working days",
            "state",
            "awaiting_approval",
            (),
            "entry",
            True,
            date(2026, 4, 28),
        ),
        # 17 working days to 04-30, Labour Day 05-01–05, 20 on 05-08, 21 on the makeup
        # Saturday 05-09, 26 on 05-15, 30 on Thursday 05-21.
        "rectification_due": (
            "30 working days",
            "state",
            "rectifying",
            (),
            "entry",
            True,
            date(2026, 5, 21),
        ),
        "supervision_due": (
            "10 working days",
            "state",
            "overdue",
            (),
            "entry",
            True,
            date(2026, 4, 21),
        ),
        "check_due": (
            "10 working days",
            "state",
            "rectification_check",
            (),
            "entry",
            True,
            date(2026, 4, 21),
        ),
    },
    ("complaint", 1): {
        "register_due": (
            "15 calendar days",
            "state",
            "received",
            (),
            "filing",
            False,
            date(2026, 4, 22),
        ),
        # SAMR's 7 working days count from receipt, across registration (15 days at most).
        "acceptance_due": (
            "7 working days",
            "case",
            "received",
            (),
            "filing",
            False,
            date(2026, 4, 16),
        ),
        # The 60th day is Saturday 06-06: the period ends on Monday 06-08 (Art. 203).
        "conclusion_due": (
            "60 calendar days",
            "state",
            "handling",
            (),
            "entry",
            False,
            date(2026, 6, 8),
        ),
        "reexam_window": (
            "30 calendar days",
            "state",
            "replied",
            (),
            "delivery",
            False,
            date(2026, 5, 7),
        ),
        "reexam_due": (
            "30 calendar days",
            "state",
            "reexamining",
            (),
            "entry",
            False,
            date(2026, 5, 7),
        ),
    },
}

CAL = WorkCalendar()


def _registry() -> Builtin:
    return builtin()


def _counted_from(proc_key: tuple[str, int], name: str) -> str:
    proc = _registry().get(*proc_key)
    tm = proc.timers[name]
    if tm.starts_on_delivery:
        return "delivery"
    if tm.scope == "sync":
        return "decision"
    # Timers the initial state starts are anchored on the filing day (engine.start_timers).
    return "filing" if name in proc.spec.initial_state.starts else "entry"


def test_table_covers_every_timer_of_every_definition() -> None:
    reg = _registry()
    seen = {(p.name, p.version) for n in reg.names() for p in reg.versions(n)}
    assert seen == set(TABLE)
    for key, rows in TABLE.items():
        assert set(reg.get(*key).timers) == set(rows), key


CASES = [(key, name) for key, rows in TABLE.items() for name in rows]


@pytest.mark.parametrize(("key", "name"), CASES)
def test_timer_follows_the_counting_rules(key: tuple[str, int], name: str) -> None:
    period, scope, starts, pauses, counted_from, ours, due = TABLE[key][name]
    proc = _registry().get(*key)
    tm = proc.timers[name]
    assert (tm.period, tm.scope) == (period, scope)
    assert [s.name for s in proc.spec.states if name in s.starts] == [starts]
    assert tuple(s.name for s in proc.spec.states if name in s.pauses) == pauses
    assert _counted_from(key, name) == counted_from
    # The day of the start is not counted; the period ends at the end of its last day, a
    # working day (Art. 201, 203).
    day = CAL.add(date(2026, 4, 7), Period.parse(tm.period)).day
    assert day == due and CAL.is_working_day(day)
    # Where the figure is ours the definition says so beside it; otherwise it cites a rule.
    assert tm.basis, f"{key} {name}: no basis"
    assert tm.basis.startswith("(default)") == ours, tm.basis
    # Every deadline either moves the case by itself or tells someone.
    assert tm.expiry_trigger or tm.escalation
    if tm.extension is not None:
        # One extension, bounded in total; within the overall deadline where there is one.
        assert tm.extension.max_count == 1
        assert Period.parse(tm.extension.max_total).amount > Period.parse(tm.period).amount
        if "result_due" in proc.timers:
            assert tm.extension.within == "result_due"
