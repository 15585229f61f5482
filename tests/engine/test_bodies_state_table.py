"""Every (state, trigger) of the identification and complaint procedures through the service
layer: allowed or refused.

The expected tables are written out here from the YAML files, not derived from the
definitions, so a change to a definition that alters what may happen where fails this test
until the tables are updated. Each (state, trigger) pair gets a fresh case, driven into the
state along the demo's path and fired on by the trigger's natural actor with the demo's
payload.

Run time: on SQLite every pair is its own test item, all of them in one database for the
module (a database per item cost ~0.35 s to migrate and staff, the pair itself ~0.05 s). On
PostgreSQL, where a database costs ~2 s, the same full table runs in one database per
procedure, as tests/engine/test_state_table.py does it: a case per state takes every refused
trigger, and each allowed trigger fires on a fresh case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from conftest import World, at, build_world, snapshot
from helpers import drive

from engine.clock import FixedClock
from engine.db import Database
from engine.definitions import Builtin, builtin
from engine.demo import (
    COMPLAINT_PATHS,
    DATED,
    IDENTIFICATION_PATHS,
    PAYLOADS,
    PROCEDURE_PAYLOADS,
    open_complaint,
    open_identification,
)
from engine.migrate import upgrade
from engine.service import SYSTEM, Engine
from states.errors import TransitionNotAllowed
from states.identifiers import make_uscc

IDENTIFICATION_ALLOWED: dict[str, set[str]] = {
    "opened": {"propose", "withdraw_case"},
    "proposed": {"send_prior_notice", "withdraw_case"},
    "notified": {
        "record_delivery",
        "file_statement",
        "statement_lapsed",
        "waive_statement",
        "withdraw_case",
    },
    "statement_review": {"uphold_statement", "reject_statement", "withdraw_case"},
    "task_group_review": {"form_opinion", "not_identify", "tolerate", "withdraw_case"},
    "awaiting_approval": {"approve", "return_opinion", "refuse_approval"},
    "rectifying": {"report_rectification", "rectification_overdue", "urge"},
    "overdue": {"report_rectification", "urge"},
    "rectification_check": {"accept_rectification", "reject_rectification"},
    "rectified": set(),
    "not_identified": set(),
    "tolerated": set(),
    "withdrawn": set(),
}

COMPLAINT_ALLOWED: dict[str, set[str]] = {
    "received": {"register", "withdraw"},
    "registered": {"accept", "reject", "withdraw"},
    # approve/reject_extension exist here but are refused until an extension is requested;
    # refer_identification (unless referred) and conclude and request_extension (unless
    # extension_requested) are allowed in a fresh case (see the test at the end).
    "handling": {"refer_identification", "conclude", "withdraw", "request_extension"},
    "replied": {"record_delivery", "request_reexamination", "close"},
    "reexamining": {"answer_reexamination"},
    "closed": set(),
    "reexamined": set(),
    "not_accepted": set(),
    "withdrawn": set(),
}

# Where each trigger takes a case ('=': it stays where it is).
IDENTIFICATION_DEST: dict[str, str] = {
    "propose": "proposed",
    "send_prior_notice": "notified",
    "record_delivery": "=",
    "file_statement": "statement_review",
    "statement_lapsed": "task_group_review",
    "waive_statement": "task_group_review",
    "uphold_statement": "not_identified",
    "reject_statement": "task_group_review",
    "form_opinion": "awaiting_approval",
    "not_identify": "not_identified",
    "tolerate": "tolerated",
    "approve": "rectifying",
    "return_opinion": "task_group_review",
    "refuse_approval": "not_identified",
    "report_rectification": "rectification_check",
    "rectification_overdue": "overdue",
    "urge": "=",
    "accept_rectification": "rectified",
    "reject_rectification": "rectifying",
    "withdraw_case": "withdrawn",
}

COMPLAINT_DEST: dict[str, str] = {
    "register": "registered",
    "accept": "handling",
    "reject": "not_accepted",
    "refer_identification": "=",
    "conclude": "replied",
    "record_delivery": "=",
    "request_reexamination": "reexamining",
    "close": "closed",
    "answer_reexamination": "reexamined",
    "withdraw": "withdrawn",
    "request_extension": "=",
    "approve_extension": "=",
    "reject_extension": "=",
}

ALLOWED = {"identification": IDENTIFICATION_ALLOWED, "complaint": COMPLAINT_ALLOWED}
DEST = {"identification": IDENTIFICATION_DEST, "complaint": COMPLAINT_DEST}
PATHS = {"identification": IDENTIFICATION_PATHS, "complaint": COMPLAINT_PATHS}
# Triggers that open another case (a complaint referred for identification).
OPENS = {"refer_identification"}


def _registry() -> Builtin:
    return builtin()


def _government_identifier() -> str:
    # A government body's USCC (registration-management code 1: 机关).
    return make_uscc("11310000MB" + uuid.uuid4().hex[:7].upper())


def _payload(procedure: str, trigger: str, today: date) -> dict[str, Any]:
    """The demo's payload for the trigger, as engine.demo.drive picks it."""
    payload = dict(PROCEDURE_PAYLOADS[procedure].get(trigger, PAYLOADS.get(trigger, {})))
    if trigger in DATED:
        payload[DATED[trigger]] = today.isoformat()
    if trigger == "refer_identification":
        # The complaint's subject (a government body) was given without an identifier; the
        # identification about it needs one.
        payload["subject_identifier"] = _government_identifier()
    return payload


def test_tables_cover_every_state_and_trigger() -> None:
    reg = _registry()
    for name in ("identification", "complaint"):
        versions = reg.versions(name)
        assert versions, name
        for proc in versions:
            table, dest = ALLOWED[name], DEST[name]
            assert set(table) == set(proc.states), (name, proc.version)
            assert set(dest) == set(proc.branches), (name, proc.version)
            assert set().union(*table.values()) <= set(proc.branches), (name, proc.version)
            for trig, branches in proc.branches.items():
                assert {b.dest for b in branches} == {dest[trig]}, (name, trig)
                # Every trigger can be fired by the demo with the fields it requires.
                payload = _payload(name, trig, date(2026, 4, 7))
                assert set(branches[0].required) <= set(payload), (name, trig)
    # Triggers that no state of its table allows are those refused by a guard on a fresh case.
    never = {
        (name, trig)
        for name in ("identification", "complaint")
        for trig in DEST[name]
        if not any(trig in allowed for allowed in ALLOWED[name].values())
    }
    assert never == {("complaint", "approve_extension"), ("complaint", "reject_extension")}


def _pairs() -> list[tuple[str, str, str]]:
    return [
        (procedure, state, trig)
        for procedure in ("identification", "complaint")
        for state in ALLOWED[procedure]
        for trig in DEST[procedure]
    ]


@pytest.fixture(scope="module")
def matrix_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite database for the module's matrix: each pair still gets a fresh case."""
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}", pool_size=20)
    upgrade(db.engine)
    clock = FixedClock(at("2026-04-07 09:00"))
    yield build_world(Engine(db, clock=clock), clock)
    db.dispose()


def _open_in(w: World, procedure: str, state: str) -> int:
    """A fresh case driven along the demo's path into `state`."""
    if procedure == "identification":
        opened = open_identification(w.engine, w.staff, "government", "某区城市管理局")
    else:
        opened = open_complaint(w.engine, w.staff)
    drive(w, opened.case_id, procedure, PATHS[procedure][state])
    assert w.engine.case_view(opened.case_id, SYSTEM)["state"] == state
    return opened.case_id


def _check(w: World, procedure: str, state: str, trigger: str, case_id: int) -> None:
    """Fire `trigger` on a case in `state` with its natural actor and the demo's payload:
    an allowed trigger moves the case (or leaves it where it is, for '='), a refused one is
    refused with nothing written."""
    allowed = ALLOWED[procedure][state]
    eng = w.engine
    view = eng.case_view(case_id, SYSTEM)
    assert view["state"] == state
    actor = w.staff.for_trigger(procedure, trigger)
    payload = _payload(procedure, trigger, eng.today())
    before = snapshot(eng)
    if trigger not in allowed:
        with pytest.raises(TransitionNotAllowed) as err:
            eng.advance(case_id, trigger, actor, payload, view["version"])
        assert err.value.state == state
        assert set(err.value.allowed) <= allowed
        assert snapshot(eng) == before
        assert eng.case_view(case_id, SYSTEM)["version"] == view["version"]
        return
    result = eng.advance(case_id, trigger, actor, payload, view["version"])
    dest = DEST[procedure][trigger]
    assert result.state == (state if dest == "=" else dest)
    assert result.version == view["version"] + 1
    after = eng.case_view(case_id, SYSTEM)
    assert (after["state"], after["version"]) == (result.state, result.version)
    now = snapshot(eng)
    # A case opened by the trigger is a new case with its own opening event.
    opened = int(trigger in OPENS)
    assert now["cases"] == before["cases"] + opened
    assert now["case_events"] == before["case_events"] + 1 + opened


@pytest.mark.parametrize(("procedure", "state", "trigger"), _pairs())
def test_state_trigger_pair(matrix_world: World, procedure: str, state: str, trigger: str) -> None:
    _check(matrix_world, procedure, state, trigger, _open_in(matrix_world, procedure, state))


def test_matrix_left_every_audit_chain_sound(matrix_world: World) -> None:
    # Once, after the matrix (it walks every case of the database).
    assert matrix_world.engine.verify_audit() == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("procedure", ["identification", "complaint"])
def test_state_table_on_postgresql(world: World, procedure: str) -> None:
    """The whole table in one database: a case per state takes every refused trigger,
    each allowed trigger fires on a fresh case in the state."""
    for state, allowed in ALLOWED[procedure].items():
        refusing = _open_in(world, procedure, state)
        for trig in sorted(set(DEST[procedure]) - allowed):
            _check(world, procedure, state, trig, refusing)
        for trig in sorted(allowed):
            _check(world, procedure, state, trig, _open_in(world, procedure, state))
    assert world.engine.verify_audit() == []


def _refused(w: World, case_id: int, trigger: str) -> None:
    eng = w.engine
    view = eng.case_view(case_id, SYSTEM)
    before = snapshot(eng)
    actor = w.staff.for_trigger("complaint", trigger)
    with pytest.raises(TransitionNotAllowed) as err:
        eng.advance(case_id, trigger, actor, _payload("complaint", trigger, eng.today()), None)
    assert err.value.state == view["state"]
    assert trigger not in err.value.allowed
    assert snapshot(eng) == before


def _fires(w: World, case_id: int, trigger: str) -> str:
    eng = w.engine
    actor = w.staff.for_trigger("complaint", trigger)
    return eng.advance(case_id, trigger, actor, _payload("complaint", trigger, eng.today())).state


def test_guarded_complaint_triggers_once_their_condition_holds(world: World) -> None:
    """The other side of the handling row: a referred case refers no more; while an
    extension is pending it cannot be concluded or asked for again, and may be approved or
    refused; an approved extension is the only one."""
    referred = _open_in(world, "complaint", "handling")
    assert _fires(world, referred, "refer_identification") == "handling"
    _refused(world, referred, "refer_identification")
    assert _fires(world, referred, "conclude") == "replied"

    for decision in ("approve_extension", "reject_extension"):
        case_id = _open_in(world, "complaint", "handling")
        assert _fires(world, case_id, "request_extension") == "handling"
        _refused(world, case_id, "conclude")
        _refused(world, case_id, "request_extension")
        assert _fires(world, case_id, decision) == "handling"
        _refused(world, case_id, "approve_extension")
        _refused(world, case_id, "reject_extension")
        if decision == "approve_extension":
            _refused(world, case_id, "request_extension")  # max_count: 1
        assert _fires(world, case_id, "conclude") == "replied"
    assert world.engine.verify_audit() == []
