"""Command semantics: optimistic locking under concurrency, idempotency, refusals that write
nothing, visibility between departments, and cases pinned to their definition version."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import yaml
from conftest import APPLICANT, World, count, snapshot
from helpers import OBJECTION_INTAKE, PAYLOADS, builtin_document, drive, open_objection

from engine.service import SYSTEM, Actor, Engine
from states.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    InvalidPayload,
    NotFound,
    RedressError,
    StaleVersion,
    TransitionNotAllowed,
)


def test_sixteen_concurrent_advances_one_wins(world: World) -> None:
    case = open_objection(world)
    handler = world.actor("office_handler")
    events_before = count(world.engine, "case_events")
    barrier = threading.Barrier(16)
    results: list[Any] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            out: Any = world.engine.advance(case.case_id, "accept", handler, {}, 1)
        except RedressError as exc:
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    wins = [r for r in results if not isinstance(r, Exception)]
    stale = [r for r in results if isinstance(r, StaleVersion)]
    assert len(results) == 16
    assert len(wins) == 1, results
    assert len(stale) == 15, [type(r).__name__ for r in results]
    assert all(s.current == 2 and s.expected == 1 for s in stale)
    assert count(world.engine, "case_events") == events_before + 1
    assert world.engine.case_view(case.case_id, SYSTEM)["version"] == 2
    assert world.engine.verify_audit() == []


def test_idempotent_retry_returns_first_result(world: World) -> None:
    case = open_objection(world)
    handler = world.actor("office_handler")
    first = world.engine.advance(case.case_id, "accept", handler, {}, 1, idempotency_key="k-1")
    before = snapshot(world.engine)
    again = world.engine.advance(case.case_id, "accept", handler, {}, 1, idempotency_key="k-1")
    assert again.replayed and (again.state, again.version, again.seq) == (
        first.state,
        first.version,
        first.seq,
    )
    assert snapshot(world.engine) == before
    with pytest.raises(IdempotencyConflict):
        world.engine.advance(
            case.case_id, "accept", handler, {"comment": "不同"}, 1, idempotency_key="k-1"
        )
    assert snapshot(world.engine) == before


def test_idempotent_open_case(world: World) -> None:
    rec = world.record()
    first = open_objection(world, rec, idempotency_key="app-1")
    before = snapshot(world.engine)
    again = open_objection(world, rec, idempotency_key="app-1")
    assert again.replayed and again.case_id == first.case_id and again.access_code is None
    assert snapshot(world.engine) == before
    with pytest.raises(IdempotencyConflict):
        world.engine.open_case(
            procedure="objection",
            record_id=rec,
            applicant=APPLICANT,
            actor=world.actor("office_handler"),
            payload={**OBJECTION_INTAKE, "grounds": "另一理由"},
            idempotency_key="app-1",
        )


def test_refused_commands_write_nothing(world: World) -> None:
    case = open_objection(world)
    handler = world.actor("office_handler")
    before = snapshot(world.engine)
    refusals: list[tuple[type[RedressError], str, dict[str, Any], int | None, Actor]] = [
        (TransitionNotAllowed, "approve_decision", {}, 1, handler),
        (TransitionNotAllowed, "no_such_trigger", {}, 1, handler),
        (StaleVersion, "accept", {}, 7, handler),
        (InvalidPayload, "reject", {"reasons": ""}, 1, handler),
        (InvalidPayload, "accept", {"bogus": 1}, 1, handler),
        (NotFound, "accept", {}, 1, world.actor("hrss_handler")),
        (Forbidden, "deem_withdrawn", {}, 1, handler),  # the clock's trigger, not a handler's
    ]
    for exc_type, trig, payload, version, actor in refusals:
        if trig == "deem_withdrawn":
            drive(world, case.case_id, "objection", ["request_supplement"])
            before = snapshot(world.engine)
        if exc_type is not StaleVersion:
            version = world.engine.case_view(case.case_id, SYSTEM)["version"]
        with pytest.raises(exc_type):
            world.engine.advance(case.case_id, trig, actor, payload, version)
        assert snapshot(world.engine) == before, trig


def test_invalid_payload_names_every_field(world: World) -> None:
    case = open_objection(world)
    drive(world, case.case_id, "objection", ["accept", "mark_disputed"])
    with pytest.raises(InvalidPayload) as err:
        world.engine.advance(
            case.case_id,
            "propose_decision",
            world.actor("office_handler"),
            {"outcome": "maybe", "reasons": 3, "extra": "x"},
            3,
        )
    fields = {e.field: e.code for e in err.value.errors}
    assert fields == {
        "outcome": "choice",
        "reasons": "type",
        "legal_basis": "required",
        "extra": "unknown",
    }
    assert "maybe" in str(err.value) and "corrected" in str(err.value)


def test_effect_failure_rolls_back_everything(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the case row is updated (here: in the outbox write) leaves no trace."""
    case = open_objection(world)
    before = snapshot(world.engine)

    def boom(*args: Any, **kw: Any) -> list[str]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Engine, "_queue_notices", boom)
    with pytest.raises(RuntimeError):
        world.engine.advance(case.case_id, "accept", world.actor("office_handler"), {}, 1)
    assert snapshot(world.engine) == before
    assert world.engine.case_view(case.case_id, SYSTEM)["state"] == "submitted"


def test_other_department_sees_nothing(world: World) -> None:
    case = open_objection(world)
    stranger = world.actor("hrss_head")
    with pytest.raises(NotFound) as nf:
        world.engine.case_view(case.case_id, stranger)
    with pytest.raises(NotFound) as missing:
        world.engine.case_view(999999, stranger)
    # A case of another department and a missing case look the same, numbers aside.
    assert type(nf.value) is type(missing.value)
    # The determining unit sees the case (its own record) but identifiers are masked for it.
    view = world.engine.case_view(case.case_id, world.actor("amr_handler"))
    assert "*" in view["applicant"]["identifier"]
    own = world.engine.case_view(case.case_id, world.actor("office_handler"))
    assert own["applicant"]["identifier"] == APPLICANT["identifier"]


def test_applicant_only_reaches_own_case(world: World) -> None:
    mine, theirs = open_objection(world), open_objection(world)
    me = Actor(name="applicant", role="applicant", case_id=mine.case_id)
    assert world.engine.case_view(mine.case_id, me)["state"] == "submitted"
    with pytest.raises(NotFound):
        world.engine.advance(theirs.case_id, "withdraw", me, {}, 1)
    with pytest.raises(Forbidden):
        world.engine.advance(mine.case_id, "accept", me, {}, 1)


def test_bad_identifiers_are_refused_with_reason(world: World) -> None:
    rec = world.record()
    bad = {**APPLICANT, "identifier": APPLICANT["identifier"][:-1] + "0"}
    with pytest.raises(InvalidPayload) as err:
        world.engine.open_case(
            procedure="objection",
            record_id=rec,
            applicant=bad,
            actor=world.actor("office_handler"),
            payload=OBJECTION_INTAKE,
        )
    (fe,) = err.value.errors
    assert fe.field == "applicant.identifier" and fe.code == "check_char"
    assert "check character" in fe.message and "校验码" in fe.message_zh
    person = {"kind": "person", "name": "张三", "identifier": "11010519491231002"}
    with pytest.raises(InvalidPayload, match="18"):
        world.engine.open_case(
            procedure="objection",
            record_id=rec,
            applicant=person,
            actor=world.actor("office_handler"),
            payload=OBJECTION_INTAKE,
        )
    with pytest.raises(InvalidPayload) as err:
        world.engine.create_record(
            actor=world.actor("office_credit_office"),
            subject_kind="enterprise",
            subject_name="某公司",
            subject_identifier="91350100M000100Y4I",
            source_category="administrative_penalty",
            severity="general",
            determining_unit="amr",
            decision_date=__import__("datetime").date(2026, 1, 5),
            published_from=__import__("datetime").date(2026, 1, 6),
        )
    assert err.value.errors[0].field == "subject_identifier"
    assert err.value.errors[0].code == "charset"


def test_one_open_case_per_record_and_procedure(world: World) -> None:
    rec = world.record()
    open_objection(world, rec)
    with pytest.raises(Conflict):
        open_objection(world, rec)


def test_a_taken_case_number_is_drawn_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Case numbers are random; one already taken inserts nothing and the next is tried."""
    import engine.commands as service  # where cases are opened

    first = open_objection(world)
    taken = first.case_no[-6:]
    draws = iter([taken, taken, "ZZZZZZ"])
    real = service._random_code
    monkeypatch.setattr(service, "_random_code", lambda n: next(draws) if n == 6 else real(n))
    second = open_objection(world)
    assert second.case_no.endswith("ZZZZZZ") and second.case_no != first.case_no
    assert count(world.engine, "cases") == 2
    assert world.engine.case_view(second.case_id, SYSTEM)["data"]["case_no"] == second.case_no
    assert world.engine.verify_audit() == []


def test_codes_use_the_whole_alphabet() -> None:
    from engine.core import _CODE_ALPHABET, _random_code

    seen = "".join(_random_code(10) for _ in range(300))
    assert set(seen) == set(_CODE_ALPHABET)


def test_case_keeps_its_definition_version(database: Any, clock: Any) -> None:
    """A case opened under version 1 follows version 1 after version 2 is added."""
    from conftest import build_world

    w = build_world(Engine(database, clock=clock), clock)
    old = open_objection(w)
    assert old.definition_version == 1

    # Version 2 (from 2026-05-01) drops forwarding to the determining unit.
    v2 = builtin_document("objection", 1)
    v2["version"] = 2
    v2["effective_from"] = "2026-05-01"
    v2["states"] = [s for s in v2["states"] if s["name"] not in ("forwarded", "answered")]
    v2["timers"] = [t for t in v2["timers"] if t["name"] != "unit_answer"]
    v2["triggers"] = [t for t in v2["triggers"] if t["name"] not in ("forward", "unit_answer")]
    for t in v2["triggers"]:
        t["sources"] = [s for s in t["sources"] if s not in ("forwarded", "answered")]
    deployed = w.engine.procedures.deploy(
        yaml.safe_dump(v2, allow_unicode=True), actor="admin", now=w.clock.now()
    )
    assert deployed.created

    w.clock.set(w.clock.now().replace(month=5, day=6))
    new = open_objection(w)
    assert new.definition_version == 2
    for cid in (old.case_id, new.case_id):
        drive(w, cid, "objection", ["accept", "mark_disputed"])
    drive(w, old.case_id, "objection", ["forward", "unit_answer"])  # still possible under v1
    assert w.engine.case_view(old.case_id, SYSTEM)["state"] == "answered"
    with pytest.raises(TransitionNotAllowed):
        w.engine.advance(new.case_id, "forward", w.actor("office_handler"), PAYLOADS["forward"], 3)
