"""Every (state, trigger) of both procedures through the service layer: allowed or refused.

The expected table is written out here, not derived from the definitions, so a change to a
definition that alters what may happen where fails this test until the table is updated.
"""

from __future__ import annotations

from datetime import date

import pytest
from conftest import World, snapshot
from helpers import OBJECTION_PATHS, PAYLOADS, REPAIR_PATHS, drive, open_objection, open_repair

from engine.definitions import builtin
from engine.service import SYSTEM
from states.errors import TransitionNotAllowed

OBJECTION_ALLOWED: dict[str, set[str]] = {
    "submitted": {"accept", "reject", "request_supplement", "withdraw"},
    "awaiting_supplement": {"supplement", "deem_withdrawn", "withdraw"},
    "accepted": {"mark_disputed", "withdraw"},
    # approve/reject_extension exist here but are refused until an extension is requested.
    "verifying": {
        "forward",
        "propose_decision",
        "withdraw",
        "request_extension",
        "request_supplement",
        "suspend_for_testing",
    },
    "verification_supplement": {"supplement", "evidence_lapsed", "withdraw"},
    "testing": {"resume_verification", "withdraw"},
    "forwarded": {"unit_answer", "withdraw", "request_extension"},
    "answered": {"propose_decision", "withdraw", "request_extension"},
    "decision_proposed": {"approve_decision", "return_decision", "withdraw"},
    "decided": {"notify"},
    "notified": {"request_review", "finalize", "close_after_waiver", "record_delivery"},
    "under_review": {"review_confirm", "review_overturn"},
    "restoring": {"restore_reputation"},
    "closed": set(),
    "not_accepted": set(),
    "withdrawn": set(),
    "deemed_withdrawn": set(),
}

REPAIR_ALLOWED: dict[str, set[str]] = {
    "submitted": {"forward", "withdraw"},
    "forwarded": {"accept", "reject", "request_supplement", "withdraw"},
    "awaiting_supplement": {"supplement", "deem_withdrawn", "withdraw"},
    "reviewing": {"approve", "deny", "withdraw", "request_extension", "request_supplement"},
    "review_supplement": {"supplement", "evidence_lapsed", "withdraw"},
    "repaired": {"revoke_repair"},
    "denied": set(),
    "not_accepted": set(),
    "withdrawn": set(),
    "deemed_withdrawn": set(),
    "repair_revoked": set(),
}


def test_tables_cover_every_state_and_trigger() -> None:
    reg = builtin()
    for name, table in (("objection", OBJECTION_ALLOWED), ("repair", REPAIR_ALLOWED)):
        for proc in reg.versions(name):
            assert set(table) == set(proc.states), (name, proc.version)
            assert set(proc.branches) <= set(PAYLOADS)


def _cases() -> list[tuple[str, int, str]]:
    out = [("objection", 1, s) for s in OBJECTION_ALLOWED]
    out += [("repair", v, s) for v in (1, 2) for s in REPAIR_ALLOWED]
    return out


def _open(w: World, procedure: str, version: int) -> int:
    if procedure == "objection":
        return open_objection(w).case_id
    # Version 1 applies to applications filed before 2026-04-01 (Order 58).
    filed = date(2026, 3, 2) if version == 1 else None
    opened = open_repair(w, filed_on=filed)
    assert opened.definition_version == version
    return opened.case_id


@pytest.mark.parametrize(("procedure", "version", "state"), _cases())
def test_state_trigger_table(world: World, procedure: str, version: int, state: str) -> None:
    paths = OBJECTION_PATHS if procedure == "objection" else REPAIR_PATHS
    allowed = (OBJECTION_ALLOWED if procedure == "objection" else REPAIR_ALLOWED)[state]
    proc = builtin().get(procedure, version)
    admin = world.actor("office_admin")
    eng = world.engine

    # One case in the state takes every refused trigger; nothing may be written.
    case_id = _open(world, procedure, version)
    drive(world, case_id, procedure, paths[state])
    view = eng.case_view(case_id, SYSTEM)
    assert view["state"] == state
    before = snapshot(eng)
    for trig in sorted(set(proc.branches) - allowed):
        with pytest.raises(TransitionNotAllowed) as err:
            eng.advance(case_id, trig, admin, PAYLOADS[trig], view["version"])
        assert err.value.state == state
        assert set(err.value.allowed) <= allowed
    assert snapshot(eng) == before

    # Each allowed trigger fires on a fresh case in the same state.
    for trig in sorted(allowed):
        cid = _open(world, procedure, version)
        drive(world, cid, procedure, paths[state])
        version_now = eng.case_view(cid, SYSTEM)["version"]
        result = eng.advance(cid, trig, admin, PAYLOADS[trig], version_now)
        assert result.version == version_now + 1
        assert eng.verify_audit() == []
