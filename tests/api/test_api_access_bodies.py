"""Who may do what through HTTP in the two procedures of the bodies of seed 000 item 2: the
role x department x trigger matrix of identification and complaints, written out by hand.

Identification cases are handled by the lead department (amr); the special task group and the
leading group act on every one of them whatever their department (scope "role"), and see them.
Complaints are handled by the credit office (office). Every refusal writes nothing; a case its
caller may not see answers 404 like a missing one."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import Api, make_api, problem
from conftest import World, snapshot

from engine.demo import (
    COMPLAINT_PATHS,
    IDENTIFICATION_PATHS,
    PAYLOADS,
    PROCEDURE_PAYLOADS,
    open_complaint,
    open_identification,
)
from engine.demo import drive as demo_drive
from engine.service import SYSTEM
from states.identifiers import make_uscc

STAFF = ("handler", "reviewer", "head", "credit_office")
USERS = (
    *(f"{d}_{r}" for d in ("office", "amr", "hrss") for r in (*STAFF, "admin")),
    "amr_lead_department",
    "hrss_lead_department",
    "office_task_group",
    "office_leading_group",
)
LEAD = ("lead_department",)
HANDLING, ANY, ROLE = "handling", "any", "role"

# trigger: (roles, scope, source state, destination)
EXPECTED: dict[str, dict[str, tuple[tuple[str, ...], str, str, str]]] = {
    "identification": {
        "propose": (LEAD, HANDLING, "opened", "proposed"),
        "send_prior_notice": (LEAD, HANDLING, "proposed", "notified"),
        "record_delivery": (LEAD, HANDLING, "notified", "notified"),
        "file_statement": (("applicant", "lead_department"), ANY, "notified", "statement_review"),
        "statement_lapsed": (("system",), HANDLING, "notified", "task_group_review"),
        "waive_statement": (LEAD, HANDLING, "notified", "task_group_review"),
        "uphold_statement": (LEAD, HANDLING, "statement_review", "not_identified"),
        "reject_statement": (LEAD, HANDLING, "statement_review", "task_group_review"),
        "form_opinion": (("task_group",), ROLE, "task_group_review", "awaiting_approval"),
        "not_identify": (("task_group",), ROLE, "task_group_review", "not_identified"),
        "tolerate": (("task_group",), ROLE, "task_group_review", "tolerated"),
        "approve": (("leading_group",), ROLE, "awaiting_approval", "rectifying"),
        "return_opinion": (("leading_group",), ROLE, "awaiting_approval", "task_group_review"),
        "refuse_approval": (("leading_group",), ROLE, "awaiting_approval", "not_identified"),
        "report_rectification": (
            ("applicant", "lead_department"),
            ANY,
            "rectifying",
            "rectification_check",
        ),
        "rectification_overdue": (("system",), HANDLING, "rectifying", "overdue"),
        "urge": (LEAD, HANDLING, "rectifying", "rectifying"),
        "accept_rectification": (LEAD, HANDLING, "rectification_check", "rectified"),
        "reject_rectification": (LEAD, HANDLING, "rectification_check", "rectifying"),
        "withdraw_case": (LEAD, HANDLING, "opened", "withdrawn"),
    },
    "complaint": {
        "register": (("handler", "credit_office"), HANDLING, "received", "registered"),
        "accept": (STAFF, HANDLING, "registered", "handling"),
        "reject": (STAFF, HANDLING, "registered", "not_accepted"),
        "refer_identification": (STAFF, HANDLING, "handling", "handling"),
        "conclude": (STAFF, HANDLING, "handling", "replied"),
        "record_delivery": (("handler", "credit_office"), HANDLING, "replied", "replied"),
        "request_reexamination": (("applicant", "handler"), ANY, "replied", "reexamining"),
        "close": (("system",), HANDLING, "replied", "closed"),
        "answer_reexamination": (("reviewer", "head"), HANDLING, "reexamining", "reexamined"),
        "withdraw": (("applicant", "handler"), ANY, "received", "withdrawn"),
        "request_extension": (("handler",), HANDLING, "handling", "handling"),
        "approve_extension": (("reviewer", "head"), HANDLING, "handling", "handling"),
        "reject_extension": (("reviewer", "head"), HANDLING, "handling", "handling"),
    },
}
MATRIX = [(p, t) for p, table in EXPECTED.items() for t in table]
PATHS = {"identification": IDENTIFICATION_PATHS, "complaint": COMPLAINT_PATHS}
HANDLER_DEPT = {"identification": "amr", "complaint": "office"}
PARTY_ID = make_uscc("11310000MB2C3D4E5")


def expected_status(procedure: str, user: str, roles: tuple[str, ...], scope: str) -> int:
    dept, role = user.split("_", 1)
    if role == "admin":
        return 200
    remit = procedure == "identification" and role in ("task_group", "leading_group")
    if dept != HANDLER_DEPT[procedure] and not remit:
        return 404  # not the handling department: the case is invisible
    if role not in roles:
        return 403
    return 200  # in sight and holding the role: handling, "any" and "role" scopes all pass


@pytest.fixture
def api(sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    # The matrix is the engine's rules, the same on both databases: it runs on SQLite; the
    # visibility SQL (a role's remit across departments) runs on both below.
    return make_api(sqlite_world, tmp_path, monkeypatch)


@pytest.fixture
def both(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def _case_in(api: Api, procedure: str, source: str, trigger: str) -> tuple[int, int]:
    w = api.world
    if procedure == "identification":
        cid = open_identification(w.engine, w.staff, "government", "某区城市管理局").case_id
    else:
        cid = open_complaint(w.engine, w.staff).case_id
    steps = list(PATHS[procedure][source])
    if trigger in ("approve_extension", "reject_extension"):
        steps.append("request_extension")
    demo_drive(w.engine, w.staff, cid, procedure, steps)
    return cid, int(w.engine.case_view(cid, SYSTEM)["version"])


def _payload(procedure: str, trigger: str) -> dict[str, object]:
    body = dict(PROCEDURE_PAYLOADS[procedure].get(trigger, PAYLOADS.get(trigger, {})))
    if trigger == "refer_identification":
        body["subject_identifier"] = PARTY_ID
    if trigger == "record_delivery":
        body = {"delivered_on": "2026-04-07"}
    if trigger == "waive_statement":
        body = {"waived_on": "2026-04-07"}
    return body


def test_the_table_matches_the_definitions(api: Api) -> None:
    for name, table in EXPECTED.items():
        definition = api.get(f"/procedures/{name}").json()["definition"]
        seen: dict[str, tuple[set[str], str, set[str]]] = {}
        for t in definition["triggers"]:
            prev = seen.get(t["name"], (set(), t["scope"], set()))
            seen[t["name"]] = (prev[0] | set(t["roles"]), t["scope"], prev[2] | set(t["sources"]))
        assert set(seen) == set(table), name
        for trig, (roles, scope, source, _dest) in table.items():
            assert seen[trig][0] == set(roles), (name, trig)
            assert seen[trig][1] == scope, (name, trig)
            assert source in seen[trig][2], (name, trig)


@pytest.mark.parametrize(("procedure", "trigger"), MATRIX)
def test_authorization_matrix(api: Api, procedure: str, trigger: str) -> None:
    roles, scope, source, dest = EXPECTED[procedure][trigger]
    expected = {u: expected_status(procedure, u, roles, scope) for u in USERS}
    body = _payload(procedure, trigger)
    wrong: list[str] = []
    case_id, version = _case_in(api, procedure, source, trigger)
    before = snapshot(api.world.engine)
    for user in USERS:
        if expected[user] == 200:
            continue
        r = api.act(case_id, trigger, user, version, body)
        if r.status_code != expected[user]:
            wrong.append(f"{user}: {r.status_code}, expected {expected[user]}: {r.text[:120]}")
            continue
        got = problem(r, expected[user])
        if expected[user] == 404:
            assert got["detail"] == f"no case {case_id}", got
    assert snapshot(api.world.engine) == before
    allowed = [u for u in USERS if expected[u] == 200]
    assert allowed
    for i, user in enumerate(allowed):
        if i:
            case_id, version = _case_in(api, procedure, source, trigger)
        r = api.act(case_id, trigger, user, version, body)
        if r.status_code != 200:
            wrong.append(f"{user}: {r.status_code}, expected 200: {r.text[:160]}")
        elif r.json()["state"] != dest:
            wrong.append(f"{user}: moved to {r.json()['state']}, expected {dest}")
    assert not wrong, f"{procedure}.{trigger}:\n" + "\n".join(wrong)


def test_the_bodies_see_and_act_across_departments_on_both_databases(both: Api) -> None:
    """The task group's remit is a condition in the queue's SQL and in every case read: on
    PostgreSQL as on SQLite, it lists and opens AMR's identification, not the office's other
    departments' cases, and acts on it; another lead department sees nothing of it."""
    cid, version = _case_in(both, "identification", "task_group_review", "form_opinion")
    for user in ("office_task_group", "office_leading_group"):
        listed = both.get("/cases", user, params={"procedure": "identification"}).json()["items"]
        assert cid in {c["id"] for c in listed}, user
    assert cid not in {c["id"] for c in both.get("/cases", "hrss_lead_department").json()["items"]}
    problem(both.get(f"/cases/{cid}", "hrss_lead_department"), 404, "not_found")
    problem(both.act(cid, "form_opinion", "office_handler", version, {"opinion": "x"}), 404)
    r = both.act(cid, "form_opinion", "office_task_group", version, {"opinion": "建议认定"})
    assert r.status_code == 200 and r.json()["state"] == "awaiting_approval", r.text
    r = both.act(
        cid, "approve", "office_leading_group", version + 1, _payload("identification", "approve")
    )
    assert r.status_code == 200 and r.json()["state"] == "rectifying", r.text
