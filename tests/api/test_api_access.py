"""Who may do what, through HTTP: the role x department x trigger matrix, visibility between
departments (another department's case answers 404 like a missing one) and masking of personal
identifiers."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import PATHS, USERS, Api, make_api, problem
from conftest import APPLICANT, World, snapshot

# -- the expected rules, written out ------------------------------------------------------------

STAFF = ("handler", "reviewer", "head", "credit_office")
APPROVERS = ("reviewer", "head")
HANDLING, UNIT, ANY = "handling", "determining_unit", "any"

# trigger: (roles, scope, source state, extra steps after the demo path, destination)
EXPECTED: dict[str, dict[str, tuple[tuple[str, ...], str, str, tuple[str, ...], str]]] = {
    "objection": {
        "accept": (STAFF, HANDLING, "submitted", (), "accepted"),
        "reject": (STAFF, HANDLING, "submitted", (), "not_accepted"),
        "request_supplement": (STAFF, HANDLING, "submitted", (), "awaiting_supplement"),
        "supplement": (("applicant", "handler"), HANDLING, "awaiting_supplement", (), "submitted"),
        "deem_withdrawn": (("system",), HANDLING, "awaiting_supplement", (), "deemed_withdrawn"),
        "mark_disputed": (("handler", "credit_office"), HANDLING, "accepted", (), "verifying"),
        "forward": (("handler", "credit_office"), HANDLING, "verifying", (), "forwarded"),
        "unit_answer": (("handler", "reviewer", "head"), UNIT, "forwarded", (), "answered"),
        "propose_decision": (
            ("handler", "credit_office"),
            HANDLING,
            "verifying",
            (),
            "decision_proposed",
        ),
        # Decisions are approved by reviewers; their review goes to the next level, the head.
        "approve_decision": (("reviewer",), HANDLING, "decision_proposed", (), "decided"),
        "return_decision": (APPROVERS, HANDLING, "decision_proposed", (), "verifying"),
        "notify": (("handler", "credit_office"), HANDLING, "decided", (), "notified"),
        "request_review": (("applicant", "handler"), HANDLING, "notified", (), "under_review"),
        # The demo's decision is "revoked": the listing was wrongful, so reputation is restored.
        "review_confirm": (("head",), HANDLING, "under_review", (), "restoring"),
        "review_overturn": (("head",), HANDLING, "under_review", (), "verifying"),
        "record_delivery": (("handler", "credit_office"), HANDLING, "notified", (), "notified"),
        "suspend_for_testing": (("handler", "credit_office"), HANDLING, "verifying", (), "testing"),
        "resume_verification": (("handler", "credit_office"), HANDLING, "testing", (), "verifying"),
        "evidence_lapsed": (
            ("system",),
            HANDLING,
            "verification_supplement",
            (),
            "verifying",
        ),
        # The clock closes the case when the review window ends; staff only on a waiver.
        "finalize": (("system",), HANDLING, "notified", (), "restoring"),
        "close_after_waiver": (("handler", "credit_office"), HANDLING, "notified", (), "restoring"),
        "restore_reputation": (STAFF, HANDLING, "restoring", (), "closed"),
        "withdraw": (("applicant", "handler"), HANDLING, "submitted", (), "withdrawn"),
        "request_extension": (("handler", "credit_office"), HANDLING, "verifying", (), "verifying"),
        "approve_extension": (
            APPROVERS,
            HANDLING,
            "verifying",
            ("request_extension",),
            "verifying",
        ),
        "reject_extension": (
            APPROVERS,
            HANDLING,
            "verifying",
            ("request_extension",),
            "verifying",
        ),
    },
    "repair": {
        "forward": (("handler", "credit_office"), HANDLING, "submitted", (), "forwarded"),
        "accept": (STAFF, UNIT, "forwarded", (), "reviewing"),
        "reject": (STAFF, UNIT, "forwarded", (), "not_accepted"),
        "request_supplement": (STAFF, UNIT, "forwarded", (), "awaiting_supplement"),
        "supplement": (("applicant", "handler"), ANY, "awaiting_supplement", (), "forwarded"),
        "deem_withdrawn": (("system",), HANDLING, "awaiting_supplement", (), "deemed_withdrawn"),
        "evidence_lapsed": (("system",), HANDLING, "review_supplement", (), "reviewing"),
        "approve": (APPROVERS, UNIT, "reviewing", (), "repaired"),
        "deny": (APPROVERS, UNIT, "reviewing", (), "denied"),
        "revoke_repair": (("head", "credit_office"), ANY, "repaired", (), "repair_revoked"),
        "withdraw": (("applicant", "handler"), ANY, "submitted", (), "withdrawn"),
        "request_extension": (("handler",), UNIT, "reviewing", (), "reviewing"),
        "approve_extension": (APPROVERS, UNIT, "reviewing", ("request_extension",), "reviewing"),
        "reject_extension": (APPROVERS, UNIT, "reviewing", ("request_extension",), "reviewing"),
    },
}
MATRIX = [(p, t) for p, triggers in EXPECTED.items() for t in triggers]


def expected_status(user: str, roles: tuple[str, ...], scope: str) -> int:
    """Cases here are handled by `office` and their records determined by `amr`."""
    dept, role = user.split("_", 1)
    if role == "admin":
        return 200  # admins see every case and may fire every trigger
    if dept == "hrss":
        return 404  # neither handling department nor determining unit: the case is invisible
    if role not in roles:
        return 403
    in_scope = {HANDLING: dept == "office", UNIT: dept == "amr", ANY: True}[scope]
    return 200 if in_scope else 403


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


# -- the table matches the definitions ---------------------------------------------------------


def test_expected_roles_match_the_definitions(
    sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(sqlite_world, tmp_path, monkeypatch)
    for name, table in EXPECTED.items():
        r = api.get(f"/procedures/{name}")
        assert r.status_code == 200
        for v in r.json()["versions"]:
            definition = api.get(f"/procedures/{name}", params={"version": v["version"]}).json()
            seen: dict[str, tuple[tuple[str, ...], str, set[str], set[str]]] = {}
            for t in definition["definition"]["triggers"]:
                roles, scope = tuple(t["roles"]), t["scope"]
                prev = seen.get(t["name"])
                assert prev is None or prev[:2] == (roles, scope), t["name"]
                srcs = (prev[2] if prev else set()) | set(t["sources"])
                dests = (prev[3] if prev else set()) | {t["dest"]}
                seen[t["name"]] = (roles, scope, srcs, dests)
            assert set(seen) == set(table), (name, v["version"])
            for trig, (roles, scope, source, _extra, dest) in table.items():
                got_roles, got_scope, sources, dests = seen[trig]
                assert set(got_roles) == set(roles), (name, trig)
                assert got_scope == scope, (name, trig)
                assert source in sources, (name, trig)
                assert dest in dests or (dests == {"="} and dest == source), (name, trig)


# -- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(("procedure", "trigger"), MATRIX)
def test_authorization_matrix(api: Api, procedure: str, trigger: str) -> None:
    roles, scope, source, extra, dest = EXPECTED[procedure][trigger]
    steps = [*PATHS[procedure][source], *extra]
    expected = {u: expected_status(u, roles, scope) for u in USERS}
    wrong: list[str] = []

    case_id, version = api.case_in(procedure, steps)
    assert api.case(case_id)["state"] == source

    # Every refusal first, on one case: each writes nothing.
    before = snapshot(api.world.engine)
    for user in USERS:
        if expected[user] == 200:
            continue
        r = api.act(case_id, trigger, user, version)
        if r.status_code != expected[user]:
            wrong.append(f"{user}: {r.status_code}, expected {expected[user]}: {r.text[:120]}")
            continue
        body = problem(r, expected[user])
        if expected[user] == 404:  # exactly what a missing case answers: numbers do not leak
            assert body["detail"] == f"no case {case_id}", body
    assert snapshot(api.world.engine) == before
    assert api.case(case_id)["version"] == version

    # Then each allowed user succeeds, on a fresh case at the source state each time.
    allowed = [u for u in USERS if expected[u] == 200]
    assert allowed, "some user must be able to fire every trigger"
    for i, user in enumerate(allowed):
        if i:
            case_id, version = api.case_in(procedure, steps)
        r = api.act(case_id, trigger, user, version)
        if r.status_code != 200:
            wrong.append(f"{user}: {r.status_code}, expected 200: {r.text[:160]}")
        elif r.json()["state"] != dest or r.json()["version"] != version + 1:
            wrong.append(f"{user}: moved to {r.json()['state']}, expected {dest}")
    assert not wrong, f"{procedure}.{trigger}:\n" + "\n".join(wrong)


GROUPS = sorted({(p, t[2], t[3]) for p, table in EXPECTED.items() for t in table.values()})


@pytest.mark.parametrize(("procedure", "source", "extra"), GROUPS)
def test_allowed_actions_follow_the_matrix(
    api: Api, procedure: str, source: str, extra: tuple[str, ...]
) -> None:
    """GET /cases/{id} offers a trigger to a user exactly when the matrix lets them fire it."""
    triggers = {t: v for t, v in EXPECTED[procedure].items() if (v[2], v[3]) == (source, extra)}
    case_id, _ = api.case_in(procedure, [*PATHS[procedure][source], *extra])
    wrong = []
    for user in USERS:
        r = api.get(f"/cases/{case_id}", user)
        if user.startswith("hrss_") and not user.endswith("_admin"):
            problem(r, 404, "not_found")
            continue
        offered = {a["trigger"] for a in r.json()["allowed_actions"]}
        for trig, (roles, scope, *_rest) in triggers.items():
            if (trig in offered) != (expected_status(user, roles, scope) == 200):
                wrong.append(f"{user}: {trig} offered={trig in offered}")
    assert not wrong, f"{procedure} in {source}:\n" + "\n".join(wrong)


# -- visibility between departments ------------------------------------------------------------


def test_another_departments_case_looks_missing(api: Api) -> None:
    opened = api.open_case("objection")
    cid, no = opened["case_id"], opened["case_no"]
    missing = cid + 1000
    for path in ("", "/events"):
        hidden = problem(api.get(f"/cases/{cid}{path}", "hrss_handler"), 404, "not_found")
        absent = problem(api.get(f"/cases/{missing}{path}", "hrss_handler"), 404, "not_found")
        assert hidden == {
            **absent,
            "detail": f"no case {cid}",
            "detail_zh": f"没有编号为{cid}的案件",
        }
    r = api.post(f"/cases/{cid}/assign", "hrss_reviewer", json={"assignee_id": None})
    problem(r, 404, "not_found")
    r = api.act(cid, "accept", "hrss_credit_office", 1)
    problem(r, 404, "not_found")
    # Nor does it show in the work queue, whatever the filter.
    for params in ({}, {"case_no": no}, {"department": "office"}, {"q": no}):
        r = api.get("/cases", "hrss_head", params=params)
        assert r.status_code == 200 and r.json()["items"] == [], params
    # The determining unit sees it, the office sees it, and admins of any department do.
    for user in ("amr_handler", "office_reviewer", "hrss_admin"):
        assert api.get(f"/cases/{cid}", user).status_code == 200
        assert [c["id"] for c in api.get("/cases", user).json()["items"]] == [cid]


def test_another_departments_attachment_is_not_found(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    files = {"file": ("evidence.pdf", b"%PDF-1.4 evidence", "application/pdf")}
    up = api.post(f"/cases/{cid}/attachments", "office_handler", files=files)
    assert up.status_code == 201, up.text
    aid = up.json()["id"]
    assert api.get(f"/attachments/{aid}", "amr_handler").status_code == 200
    hidden = problem(api.get(f"/attachments/{aid}", "hrss_handler"), 404, "not_found")
    assert hidden["detail"] == f"no case {cid}"
    problem(api.get(f"/attachments/{aid + 1000}", "hrss_handler"), 404, "not_found")
    # Nor may hrss upload to it.
    r = api.post(f"/cases/{cid}/attachments", "hrss_handler", files=files)
    problem(r, 404, "not_found")


# -- masking of personal identifiers -----------------------------------------------------------


def _masked(value: str, full: str) -> bool:
    return "*" in value and value != full and len(value) == len(full)


def test_identifiers_masked_outside_the_handling_department(api: Api) -> None:
    rid = api.world.record()
    subject = api.get(f"/records/{rid}", "office_credit_office").json()["subject_identifier"]
    cid = api.open_case("objection", record_id=rid)["case_id"]
    full = APPLICANT["identifier"]

    # The handling department (and admins) see the applicant's identifier in full.
    for user in ("office_handler", "office_reviewer", "hrss_admin"):
        assert api.case(cid, user)["applicant"]["identifier"] == full, user
        item = api.get("/cases", user).json()["items"][0]
        assert item["applicant"]["identifier"] == full, user
        assert item["subject_identifier"] == subject, user

    # The determining unit sees the case with the applicant (not its record's subject here)
    # masked, and its own record's subject whole, as in the record block (states/disclosure.py).
    for user in ("amr_handler", "amr_reviewer", "amr_head"):
        seen = api.case(cid, user)["applicant"]["identifier"]
        assert _masked(seen, full), (user, seen)
        assert seen[:4] == full[:4] and seen[-4:] == full[-4:]
        assert api.case(cid, user)["applicant"]["email"] == "l***@example.com", user
        item = api.get("/cases", user).json()["items"][0]
        assert _masked(item["applicant"]["identifier"], full), user
        assert item["subject_identifier"] == subject, user
        assert api.get(f"/records/{rid}", user).json()["subject_identifier"] == subject, user
        found = api.get("/cases", user, params={"subject_identifier": subject}).json()["items"]
        assert [c["id"] for c in found] == [cid]

    # Records are public, their identifiers are not: masked for other departments' staff.
    for user in ("hrss_handler", "hrss_reviewer", "hrss_head"):
        one = api.get(f"/records/{rid}", user).json()
        assert _masked(one["subject_identifier"], subject), user
        listed = api.get("/records", user, params={"subject_id": subject}).json()
        assert [x["id"] for x in listed] == [rid]
        assert _masked(listed[0]["subject_identifier"], subject), user
        assert all("*" in x["subject_identifier"] for x in api.get("/records", user).json())
    # The determining unit, the credit office and admins see it in full.
    for user in ("amr_handler", "office_credit_office", "hrss_admin"):
        assert api.get(f"/records/{rid}", user).json()["subject_identifier"] == subject, user


def test_event_payloads_do_not_unmask_the_applicant(api: Api) -> None:
    """The first event's payload carries the applicant: it must be masked like the case view."""
    cid = api.open_case("objection")["case_id"]
    full = APPLICANT["identifier"]
    office = api.get(f"/cases/{cid}/events", "office_handler").json()
    assert office[0]["payload"]["applicant"]["identifier"] == full
    unit = api.get(f"/cases/{cid}/events", "amr_handler")
    assert unit.status_code == 200
    assert full not in unit.text, "GET /events shows the determining unit the full identifier"


def test_idempotency_replay_does_not_reveal_another_departments_case(api: Api) -> None:
    rid = api.world.record()
    theirs = api.open_case("objection", record_id=rid, key="shared-key")
    body = {
        "procedure": "objection",
        "record_id": rid,
        "applicant": APPLICANT,
        "payload": {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True},
    }
    problem(api.get(f"/cases/{theirs['case_id']}", "hrss_handler"), 404)
    r = api.post("/cases", "hrss_handler", headers={"Idempotency-Key": "shared-key"}, json=body)
    assert theirs["case_no"] not in r.text


def test_search_does_not_reveal_masked_identifiers(api: Api) -> None:
    cid = api.open_case("objection")["case_id"]
    full = APPLICANT["identifier"]
    hidden = full[4:-4]  # what the determining unit sees as '*'
    assert "*" * len(hidden) in api.case(cid, "amr_handler")["applicant"]["identifier"]
    assert [
        c["id"] for c in api.get("/cases", "office_handler", params={"q": hidden}).json()["items"]
    ] == [cid]
    found = api.get("/cases", "amr_handler", params={"q": hidden}).json()["items"]
    assert found == []
