"""Every path of DOMAIN.md's objection and repair procedures, end to end through the engine.

Each test checks where the case ends, what happened to the credit record (its versions, never
overwritten), the outbox rows queued, and that the event hash chain verifies.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import World, at
from helpers import PAYLOADS, actor_for, drive, open_objection, open_repair

from engine.service import SYSTEM, Actor
from states.errors import Ineligible, TransitionNotAllowed


def record_history(w: World, record_id: int) -> list[tuple[str, bool]]:
    return [(v["status"], bool(v["disputed"])) for v in w.engine.record_versions(record_id)]


def triggers(w: World, case_id: int) -> list[str]:
    return [e["trigger"] for e in w.engine.events(case_id, SYSTEM)]


def outbox(w: World, case_id: int) -> list[str]:
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT name FROM outbox WHERE case_id = :c ORDER BY id"), {"c": case_id}
        ).all()
    return list(dict.fromkeys(r[0] for r in rows))  # one row per channel; each name once


def assert_chain(w: World, case_id: int) -> None:
    events = w.engine.events(case_id, SYSTEM)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert w.engine.verify_audit() == []


MAIN = ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"]
OUTCOME_STATUS = {
    "corrected": "published",
    "supplemented": "published",
    "publication_stopped": "publication_stopped",
    "removed": "removed",
    "revoked": "revoked",
    "upheld": "published",
    "unresolved": "published",
}


@pytest.mark.parametrize("outcome", sorted(OUTCOME_STATUS))
def test_objection_every_outcome(world: World, outcome: str) -> None:
    rec = world.record()
    case = open_objection(world, rec)
    proposal: dict[str, Any] = {**PAYLOADS["propose_decision"], "outcome": outcome}
    if outcome in ("corrected", "supplemented"):
        proposal["corrections"] = "处罚金额更正为5000元"
    drive(world, case.case_id, "objection", [*MAIN, "finalize"], {"propose_decision": proposal})
    view = world.engine.case_view(case.case_id, SYSTEM)
    wrongful = outcome in ("revoked", "removed")
    assert view["state"] == ("restoring" if wrongful else "closed")
    if wrongful:
        drive(world, case.case_id, "objection", ["restore_reputation"])
        assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "closed"

    history = record_history(world, rec)
    # published → disputed → decision (dispute mark lifted) [→ reputation restored]
    assert history[:3] == [
        ("published", False),
        ("published", True),
        (OUTCOME_STATUS[outcome], False),
    ]
    assert len(history) == (4 if wrongful else 3)
    content = world.engine.case_view(case.case_id, SYSTEM)["record"]["content"]
    assert content["last_decision"]["outcome"] == outcome
    if outcome == "corrected":
        assert content["corrected_text"] == "处罚金额更正为5000元"
    if outcome == "unresolved":
        assert content["objection_annotations"][0]["case_no"] == case.case_no
    if wrongful:
        assert "reputation_restored" in content
    notices = outbox(world, case.case_id)
    assert notices[:2] == ["receipt", "acceptance"]
    assert "objection_result" in notices
    assert_chain(world, case.case_id)


def test_objection_content_outcome_needs_corrections(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["accept", "mark_disputed"])
    with pytest.raises(TransitionNotAllowed, match="corrections"):
        world.engine.advance(
            case.case_id,
            "propose_decision",
            world.actor("office_handler"),
            {**PAYLOADS["propose_decision"], "outcome": "corrected"},
            3,
        )


def test_objection_forwarded_to_determining_unit(world: World) -> None:
    case = open_objection(world)
    drive(
        world,
        case.case_id,
        "objection",
        [
            "accept",
            "mark_disputed",
            "forward",
            "unit_answer",
            *MAIN[2:],
            "finalize",
            "restore_reputation",
        ],
    )
    events = world.engine.events(case.case_id, SYSTEM)
    answer = next(e for e in events if e["trigger"] == "unit_answer")
    assert answer["actor"] == "amr_handler"  # the determining unit answered
    assert "forward_to_unit" in outbox(world, case.case_id)
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "closed"
    assert_chain(world, case.case_id)


def test_objection_supplement_loop_pauses_the_clock(world: World) -> None:
    case = open_objection(world)  # Tue 2026-04-07: formal check due Thu 04-09
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert view["deadlines"][0]["due_day"] == date(2026, 4, 9)
    drive(world, case.case_id, "objection", ["request_supplement"])
    world.clock.set(at("2026-04-13 10:00"))  # supplied the next Monday
    drive(world, case.case_id, "objection", ["supplement"])
    view = world.engine.case_view(case.case_id, SYSTEM)
    formal = next(d for d in view["deadlines"] if d["timer"] == "formal_check")
    supp = next(d for d in view["deadlines"] if d["timer"] == "supplement_due")
    assert supp["status"] == "stopped"
    # Paused on 04-07 with 2 working days left (04-08, 04-09); resumed 04-13 → due 04-15.
    assert (formal["status"], formal["due_day"]) == ("active", date(2026, 4, 15))
    drive(world, case.case_id, "objection", [*MAIN, "finalize", "restore_reputation"])
    assert triggers(world, case.case_id)[:3] == ["submit", "request_supplement", "supplement"]
    assert_chain(world, case.case_id)


def test_objection_deemed_withdrawn_by_the_clock(world: World) -> None:
    rec = world.record()
    case = open_objection(world, rec)
    drive(world, case.case_id, "objection", ["request_supplement"])
    result = world.engine.advance(case.case_id, "deem_withdrawn", SYSTEM, {}, None)
    assert result.state == "deemed_withdrawn"
    assert "deemed_withdrawal" in outbox(world, case.case_id)
    assert record_history(world, rec) == [("published", False)]  # never marked
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert all(d["status"] == "stopped" for d in view["deadlines"])
    assert view["closed_at"] is not None
    assert_chain(world, case.case_id)


def test_objection_not_accepted(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["reject"])
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "not_accepted"
    assert outbox(world, case.case_id)[-1] == "non_acceptance"
    assert_chain(world, case.case_id)


@pytest.mark.parametrize(
    ("steps", "was_marked"),
    [
        ([], False),
        (["request_supplement"], False),
        (["accept"], False),
        (["accept", "mark_disputed"], True),
        (["accept", "mark_disputed", "forward"], True),
        (["accept", "mark_disputed", "forward", "unit_answer"], True),
        (["accept", "mark_disputed", "propose_decision"], True),
    ],
)
def test_objection_withdrawal_until_decided(
    world: World, steps: list[str], was_marked: bool
) -> None:
    rec = world.record()
    case = open_objection(world, rec)
    drive(world, case.case_id, "objection", steps)
    version = world.engine.case_view(case.case_id, SYSTEM)["version"]
    # The applicant withdraws on their own (bound to their case).
    applicant = Actor(name=f"applicant:{case.case_no}", role="applicant", case_id=case.case_id)
    world.engine.advance(
        case.case_id, "withdraw", applicant, {"reason": "已与认定单位沟通"}, version
    )
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "withdrawn"
    history = record_history(world, rec)
    if was_marked:
        assert history == [("published", False), ("published", True), ("published", False)]
    else:
        assert history == [("published", False)]
    assert_chain(world, case.case_id)


def test_objection_withdrawal_refused_after_decision(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", MAIN[:4])
    with pytest.raises(TransitionNotAllowed) as err:
        world.engine.advance(case.case_id, "withdraw", world.actor("office_handler"), {}, 5)
    assert err.value.allowed == ["notify"]


def test_objection_review_confirmed_and_overturned(world: World) -> None:
    confirmed = open_objection(world)
    upheld = {**PAYLOADS["propose_decision"], "outcome": "upheld"}
    drive(
        world,
        confirmed.case_id,
        "objection",
        [*MAIN, "request_review", "review_confirm"],
        {"propose_decision": upheld},
    )
    assert world.engine.case_view(confirmed.case_id, SYSTEM)["state"] == "closed"
    assert "review_result" in outbox(world, confirmed.case_id)

    rec = world.record()
    overturned = open_objection(world, rec)
    drive(
        world,
        overturned.case_id,
        "objection",
        [*MAIN, "request_review", "review_overturn"],
        {"propose_decision": upheld},
    )
    # Re-verified after the review: this time the listing is found wrongful and revoked.
    drive(
        world,
        overturned.case_id,
        "objection",
        ["propose_decision", "approve_decision", "notify", "finalize", "restore_reputation"],
    )
    assert world.engine.case_view(overturned.case_id, SYSTEM)["state"] == "closed"
    # published → disputed → upheld → disputed again on review → revoked → reputation restored
    assert record_history(world, rec) == [
        ("published", False),
        ("published", True),
        ("published", False),
        ("published", True),
        ("revoked", False),
        ("revoked", False),
    ]
    assert_chain(world, overturned.case_id)


def test_objection_decision_returned_for_more_verification(world: World) -> None:
    case = open_objection(world)
    drive(
        world,
        case.case_id,
        "objection",
        [
            "accept",
            "mark_disputed",
            "propose_decision",
            "return_decision",
            "propose_decision",
            "approve_decision",
        ],
    )
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "decided"
    assert_chain(world, case.case_id)


def test_repair_granted_under_order_36(world: World) -> None:
    rec = world.record(severity="general", published_from=date(2025, 6, 1))
    case = open_repair(world, rec)
    assert case.definition_version == 2
    view = world.engine.case_view(case.case_id, SYSTEM)
    overall = next(d for d in view["deadlines"] if d["timer"] == "result_due")
    assert overall["due_day"] == date(2026, 4, 21)  # 10 working days from 04-07
    drive(world, case.case_id, "repair", ["forward", "accept", "approve"])
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert view["state"] == "repaired" and view["closed"]
    assert all(d["status"] == "stopped" for d in view["deadlines"])
    assert view["record"]["status"] == "repaired"
    assert view["record"]["content"]["measures_lifted"] is True
    assert record_history(world, rec) == [("published", False), ("repaired", False)]
    assert outbox(world, case.case_id)[-1] == "repair_decision"
    assert_chain(world, case.case_id)


def test_repair_overall_deadline_pauses_for_supplement(world: World) -> None:
    case = open_repair(world)
    drive(world, case.case_id, "repair", ["forward", "request_supplement"])
    world.clock.set(at("2026-04-14 09:30"))
    drive(world, case.case_id, "repair", ["supplement"])
    view = world.engine.case_view(case.case_id, SYSTEM)
    overall = next(d for d in view["deadlines"] if d["timer"] == "result_due")
    # Paused 04-07 with 10 working days left (04-08 … 04-21), resumed 04-14 → 04-28.
    assert overall["due_day"] == date(2026, 4, 28)
    drive(world, case.case_id, "repair", ["accept", "deny"])
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert view["state"] == "denied"
    assert view["record"]["status"] == "published"
    assert "repair_denial" in outbox(world, case.case_id)


def test_repair_paths_without_decision(world: World) -> None:
    for steps, final in (
        (["forward", "reject"], "not_accepted"),
        (["withdraw"], "withdrawn"),
        (["forward", "request_supplement"], "awaiting_supplement"),
    ):
        case = open_repair(world)
        drive(world, case.case_id, "repair", steps)
        assert world.engine.case_view(case.case_id, SYSTEM)["state"] == final
    world.engine.advance(case.case_id, "deem_withdrawn", SYSTEM, {}, None)
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "deemed_withdrawn"


def test_repair_revoked_for_fraud_bars_new_applications(world: World) -> None:
    rec = world.record(severity="general", published_from=date(2025, 6, 1))
    case = open_repair(world, rec)
    drive(world, case.case_id, "repair", ["forward", "accept", "approve", "revoke_repair"])
    view = world.engine.case_view(case.case_id, SYSTEM)
    assert view["state"] == "repair_revoked"
    assert view["record"]["status"] == "published"  # published again
    assert record_history(world, rec) == [
        ("published", False),
        ("repaired", False),
        ("published", False),
    ]
    with pytest.raises(Ineligible) as err:
        open_repair(world, rec)
    # A 3-year bar from the revocation on 2026-04-07: its last day is 2029-04-07.
    assert err.value.earliest == date(2029, 4, 8)
    assert "2029-04-08" in err.value.message_zh


def test_repair_eligibility_by_severity(world: World) -> None:
    # General: 3 months' minimum publicity; serious: 1 year; minor: none once obligations met.
    general = world.record(severity="general", published_from=date(2026, 2, 10))
    with pytest.raises(Ineligible) as err:
        open_repair(world, general)
    assert err.value.earliest == date(2026, 5, 11)  # the period's last day is 05-10
    serious = world.record(severity="serious", published_from=date(2025, 5, 1))
    with pytest.raises(Ineligible) as err:
        open_repair(world, serious)
    assert err.value.earliest == date(2026, 5, 2)
    minor = world.record(severity="minor", published_from=date(2026, 4, 6))
    assert open_repair(world, minor).state == "submitted"
    unpaid = world.record()
    with pytest.raises(Ineligible, match="obligations"):
        world.engine.open_case(
            procedure="repair",
            record_id=unpaid,
            applicant=__import__("conftest").APPLICANT,
            actor=world.actor("office_handler"),
            payload={"grounds": "x", "obligations_met": False, "commitment_signed": True},
        )


def test_repair_version_follows_filing_date(world: World) -> None:
    old = open_repair(world, filed_on=date(2026, 3, 31))
    new = open_repair(world, filed_on=date(2026, 4, 1))
    assert (old.definition_version, new.definition_version) == (1, 2)
    old_view = world.engine.case_view(old.case_id, SYSTEM)
    # Order 58 sets no overall deadline that we could cite: ours (33 working days, acceptance
    # plus the longest review) is marked as a default in the definition.
    result_due = next(d for d in old_view["deadlines"] if d["timer"] == "result_due")
    assert result_due["period"] == "33 working days"
    drive(world, old.case_id, "repair", ["forward", "accept", "approve"])
    assert world.engine.case_view(old.case_id, SYSTEM)["definition_version"] == 1


def test_natural_actors_are_authorised(world: World) -> None:
    # The helper's choice of actor (determining unit vs office) is itself checked elsewhere;
    # here: a unit's own staff cannot do the office's work and vice versa.
    case = open_repair(world)
    from states.errors import Forbidden

    with pytest.raises(Forbidden):
        world.engine.advance(case.case_id, "forward", world.actor("amr_handler"), {}, 1)
    world.engine.advance(case.case_id, "forward", actor_for(world, "repair", "forward"), {}, 1)
    with pytest.raises(Forbidden):
        world.engine.advance(case.case_id, "accept", world.actor("office_handler"), {}, 2)


def _timer_trace(w: World, case_id: int) -> tuple[list[Any], list[Any]]:
    details = [e["detail"] for e in w.engine.events(case_id, SYSTEM)]
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT name, status, period, due_day, due_at, provisional, remaining, "
                "extended_days, next_action, next_at, stopped_at FROM timers "
                "WHERE case_id = :c ORDER BY id"
            ),
            {"c": case_id},
        ).all()
    return details, [tuple(r) for r in rows]


def test_stopping_by_name_matches_reading_the_timers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transition that only stops and starts timers stops them with one UPDATE ... RETURNING
    instead of reading the live rows first. Every path, both ways: the same timer rows and the
    same deadline changes in the events."""
    from dataclasses import replace

    from helpers import OBJECTION_PATHS, REPAIR_PATHS

    from states.machine import Procedure

    real = Procedure.timer_plan
    paths = [("objection", p) for p in OBJECTION_PATHS.values()]
    paths += [("repair", p) for p in REPAIR_PATHS.values()]
    traces: dict[bool, list[Any]] = {}
    for reads_live in (False, True):
        if reads_live:  # every plan takes the path that reads the rows
            monkeypatch.setattr(
                Procedure,
                "timer_plan",
                lambda self, s, d: replace(real(self, s, d), reads_live=True),
            )
        traces[reads_live] = []
        for procedure, steps in paths:
            opened = (open_objection if procedure == "objection" else open_repair)(world)
            drive(world, opened.case_id, procedure, steps)
            traces[reads_live].append(_timer_trace(world, opened.case_id))
    for a, b in zip(traces[False], traces[True], strict=True):
        assert a == b
    stopped = [c for details, _ in traces[False] for d in details for c in d.get("deadlines", ())]
    assert any(c["change"] == "stopped" for c in stopped)
    assert world.engine.verify_audit() == []
