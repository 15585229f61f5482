"""Authorization, route by route, generated from the OpenAPI description itself.

Every operation the API documents must have a rule here: a route added without one fails
`test_every_documented_route_has_a_rule`. Each rule says, for each caller, the answer the
access rules give (README "HTTP API", states/disclosure.py):

- the case's own (handling) department, `hrss` (the credit office routed the case there);
- another department, `tax`;
- the determining unit of the case's record, `amr`;
- the credit office (`office_credit_office`), which neither handles the case nor determined
  the record;
- applicant A (the case's access code), applicant B (another case's code), anonymous.

A refusal must write nothing: the whole database's fingerprint is compared around it. An
allowed caller may still be refused by the procedure (a trigger not allowed in the state, a
case already open on the record): "passes" means only that no 401, 403 or 404 came back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_support import INTAKE, PDF, Api, make_api
from conftest import World

from engine.channels import Channel, LogChannel, Message, Sent
from engine.outbox import Delivery, Policy, router
from engine.schema import metadata
from states.identifiers import make_uscc

CALLERS = ("own", "other", "unit", "office", "applicant_a", "applicant_b", "anonymous")
STAFF_DEPT = {"own": "hrss", "other": "tax", "unit": "amr"}
PASSES = "passes"  # authorized: anything but 401, 403, 404 (and never a 500)
DENIED = (401, 403, 404)

APPLICANT_A = {
    "kind": "enterprise",
    "name": "甲公司",
    "identifier": make_uscc("91310000MA1FLA0A1"),
    "email": "a@example.com",
    "phone": "13800138000",
}
APPLICANT_B = {**APPLICANT_A, "name": "乙公司", "identifier": make_uscc("91310000MA1FLB0B1")}


class Down:
    name = "email"

    def send(self, message: Message) -> Sent:
        return Sent(False, f"550 mailbox {message.recipient} unavailable")


@dataclass
class Setup:
    api: Api
    ids: dict[str, Any]
    codes: dict[str, str]
    tokens: dict[str, str]


def fingerprint(api: Api) -> dict[str, Any]:
    """Row counts of every table, and what commands change in place."""
    out: dict[str, Any] = {}
    with api.world.engine.db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name == "access_failures":
                continue  # the wrong-code guard's own bookkeeping, written on purpose
            out[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        out["cases"] = conn.execute(
            sa.text(
                "SELECT count(*), sum(version), sum(coalesce(assignee_id, 0)), "
                "count(closed_at) FROM cases"
            )
        ).one()
        out["outbox"] = conn.execute(
            sa.text("SELECT status, count(*), sum(attempts) FROM outbox GROUP BY status")
        ).all()
        out["records"] = conn.execute(sa.text("SELECT sum(version) FROM credit_records")).one()
    return out


def build(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    engine = world.engine
    engine.add_department("tax", "市税务局", "Tax Bureau", kind="unit")
    tokens = dict(world.tokens)
    for role in ("handler", "reviewer"):
        tokens[f"tax_{role}"] = engine.add_user(f"tax_{role}", role, "tax")[1]
    world.tokens.update(tokens)
    api = make_api(world, tmp_path, monkeypatch)
    office = world.actor("office_credit_office")
    ra, rb, rc, rd = (world.record(unit="amr") for _ in range(4))
    a = engine.open_case(
        procedure="objection",
        record_id=ra,
        applicant=APPLICANT_A,
        actor=office,
        payload=INTAKE["objection"],
        department_id="hrss",
    )
    b = engine.open_case(
        procedure="objection",
        record_id=rb,
        applicant=APPLICANT_B,
        actor=office,
        payload=INTAKE["objection"],
        department_id="hrss",
    )
    assert a.access_code and b.access_code
    files = {"file": ("evidence.pdf", PDF, "application/pdf")}
    r = api.post(f"/cases/{a.case_id}/attachments", "hrss_handler", files=files)
    assert r.status_code == 201, r.text
    channels: dict[str, Channel] = {"log": LogChannel(), "inapp": LogChannel(), "email": Down()}
    Delivery(engine, router(channels, {}), Policy(max_attempts=1)).deliver()
    with engine.db.read() as conn:
        notice_id = conn.execute(
            sa.text("SELECT min(id) FROM notices WHERE case_id = :c"), {"c": a.case_id}
        ).scalar()
        message_id = conn.execute(
            sa.text("SELECT min(id) FROM outbox WHERE case_id = :c AND status = 'dead'"),
            {"c": a.case_id},
        ).scalar()
    assert notice_id and message_id, "the setup needs a notice and a dead letter on case A"
    ids = {
        "case_id": a.case_id,
        "case_no": a.case_no,
        "record_id": ra,
        "fresh_record": rc,
        "public_record": rd,
        "attachment_id": r.json()["id"],
        "notice_id": notice_id,
        "message_id": message_id,
        "trigger": "accept",
        "name": "objection",
        "version": 1,
        "subject": api.get(f"/records/{ra}", "office_credit_office").json()["subject_identifier"],
        "dept_id": "tax",
        "user_name": "tax_handler",
        "token_id": api.get("/tokens", "office_admin").json()[0]["id"],
    }
    return Setup(api, ids, {"a": a.access_code, "b": b.access_code}, tokens)


# -- the rules -----------------------------------------------------------------------------------

Expect = dict[str, int | str]  # caller -> exact status, or PASSES


def staff_only(**by_caller: int | str) -> Expect:
    """Applicants and the anonymous have no bearer token: 401 on every staff route."""
    return {"applicant_a": 401, "applicant_b": 401, "anonymous": 401, **by_caller}


CASE_READ = staff_only(own=200, unit=200, other=404, office=404)
ADMIN = staff_only(own=403, other=403, unit=403, office=403)
APPLICANT_READ = {
    "own": 404,  # a bearer token is not an access code
    "other": 404,
    "unit": 404,
    "office": 404,
    "applicant_a": 200,
    "applicant_b": 404,  # B's code on A's number: exactly a wrong code
    "anonymous": 404,
}
APPLICANT_WRITE = {**APPLICANT_READ, "applicant_a": PASSES}
PUBLIC = dict.fromkeys(CALLERS, 200)


@dataclass(frozen=True)
class Rule:
    expect: Expect
    # Query, JSON body or files, from the setup's ids.
    request: Callable[[dict[str, Any]], dict[str, Any]] = lambda ids: {}
    role: str = "handler"  # the staff callers' role for this route
    # A further check of an answer: None, or what is wrong.
    check: Callable[[str, httpx.Response, dict[str, Any]], str | None] | None = None


def _listed_case(caller: str, r: httpx.Response, ids: dict[str, Any]) -> str | None:
    if r.status_code != 200:
        return None
    seen = ids["case_id"] in [c["id"] for c in r.json()["items"]]
    should = caller in ("own", "unit")
    if seen != should:
        return f"case A listed={seen}, expected {should}"
    for c in r.json()["items"]:
        if c["id"] == ids["case_id"] and caller == "unit":
            if c["applicant"]["identifier"] == APPLICANT_A["identifier"]:
                return "the determining unit sees the applicant's identifier whole"
            if c["applicant"].get("email") == APPLICANT_A["email"]:
                return "the determining unit sees the applicant's email whole"
    return None


def _case_view(caller: str, r: httpx.Response, ids: dict[str, Any]) -> str | None:
    if r.status_code != 200:
        return None
    person = r.json()["applicant"]
    whole = caller == "own"
    for key in ("identifier", "email", "phone"):
        if (person[key] == APPLICANT_A[key]) != whole:
            return f"{caller}: the applicant's {key} shown whole={not whole}"
    return None


def _record_masking(caller: str, r: httpx.Response, ids: dict[str, Any]) -> str | None:
    if r.status_code != 200:
        return None
    body = r.json()
    records = body if isinstance(body, list) else [body]
    whole = caller in ("unit", "office")  # the determining unit, the credit office
    for rec in records:
        if rec["subject_identifier"] == ids["subject"] and not whole:
            return f"{caller} sees the subject's identifier whole"
        if rec["id"] == ids["record_id"] and whole and rec["subject_identifier"] != ids["subject"]:
            return f"{caller} should see the subject's identifier whole"
    return None


def _outbox(caller: str, r: httpx.Response, ids: dict[str, Any]) -> str | None:
    if r.status_code != 200:
        return None
    mine = [m for m in r.json() if m["id"] == ids["message_id"]]
    should = caller in ("own", "unit")
    if bool(mine) != should:
        return f"case A's dead letter listed={bool(mine)}, expected {should}"
    for m in mine:
        exposed = APPLICANT_A["email"] in (m["recipient"] or "") + (m["last_error"] or "")
        if exposed != (caller == "own"):
            return f"{caller}: the applicant's address shown whole={exposed}"
    return None


def _bulk(caller: str, r: httpx.Response, ids: dict[str, Any]) -> str | None:
    if r.status_code != 200:
        return None
    (item,) = r.json()["results"]
    want = {"own": True, "unit": False, "other": False, "office": False}[caller]
    if item["ok"] != want:
        return f"bulk assign ok={item['ok']}, expected {want}: {item}"
    if caller == "other" and item["status"] != 404:
        return f"another department's case must look missing: {item}"
    return None


def _filing(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "json": {
            "procedure": "objection",
            "record_id": ids["fresh_record"],
            "applicant": APPLICANT_A,
            "payload": INTAKE["objection"],
            "department_id": "hrss",
        }
    }


def _application(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "json": {
            "procedure": "objection",
            "record_id": ids["public_record"],
            "applicant": APPLICANT_B,
            "grounds": "该处罚决定已被依法撤销",
            "commitment_signed": True,
        }
    }


def _record_in(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "json": {
            "subject_kind": "enterprise",
            "subject_name": "丙公司",
            "subject_identifier": make_uscc("91310000MA1FLC0C1"),
            "source_category": "administrative_penalty",
            "severity": "general",
            "determining_unit": "amr",
            "decision_date": "2026-01-05",
            "published_from": "2026-01-06",
            "content": {"summary": "x"},
        }
    }


RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/api/v1/cases"): Rule(
        # Staff file into their own department; only the credit office routes elsewhere.
        staff_only(own=PASSES, other=403, unit=403, office=PASSES),
        _filing,
    ),
    ("GET", "/api/v1/cases"): Rule(
        staff_only(own=200, other=200, unit=200, office=200), check=_listed_case
    ),
    ("POST", "/api/v1/cases/bulk/assign"): Rule(
        staff_only(own=200, other=200, unit=200, office=200),
        lambda ids: {"json": {"case_ids": [ids["case_id"]], "assignee_id": None}},
        role="reviewer",
        check=_bulk,
    ),
    ("GET", "/api/v1/cases/{case_id}"): Rule(CASE_READ, check=_case_view),
    ("POST", "/api/v1/cases/{case_id}/actions/{trigger}"): Rule(
        # accept: the handling department's, roles handler and credit_office.
        staff_only(own=PASSES, unit=403, other=404, office=404),
        lambda ids: {"json": {}, "headers": {"If-Match": "1"}},
    ),
    ("GET", "/api/v1/cases/{case_id}/events"): Rule(CASE_READ),
    ("POST", "/api/v1/cases/{case_id}/assign"): Rule(
        # The credit_office role never assigns (refused before the case is read: no leak).
        staff_only(own=PASSES, unit=403, other=404, office=403),
        lambda ids: {"json": {"assignee_id": None}},
        role="reviewer",
    ),
    ("POST", "/api/v1/cases/{case_id}/attachments"): Rule(
        staff_only(own=PASSES, unit=PASSES, other=404, office=404),
        lambda ids: {"files": {"file": ("more.pdf", PDF, "application/pdf")}},
    ),
    ("GET", "/api/v1/attachments/{attachment_id}"): Rule(CASE_READ),
    ("POST", "/api/v1/records"): Rule(
        staff_only(own=403, other=403, unit=403, office=201), _record_in
    ),
    ("GET", "/api/v1/records"): Rule(
        staff_only(own=200, other=200, unit=200, office=200),
        lambda ids: {"params": {"subject_id": ids["subject"]}},
        check=_record_masking,
    ),
    ("GET", "/api/v1/records/{record_id}"): Rule(
        staff_only(own=200, other=200, unit=200, office=200), check=_record_masking
    ),
    ("GET", "/api/v1/procedures"): Rule(PUBLIC),
    ("GET", "/api/v1/procedures/{name}"): Rule(PUBLIC),
    ("GET", "/api/v1/procedures/{name}/versions/{version}"): Rule(PUBLIC),
    # Administrators only; staff are refused before the document is read.
    ("POST", "/api/v1/procedures/{name}/migrations"): Rule(
        staff_only(own=403, other=403, unit=403, office=403),
        lambda ids: {"json": {"from_version": 1, "to_version": 1, "dry_run": True}},
    ),
    ("POST", "/api/v1/procedures"): Rule(
        staff_only(own=403, other=403, unit=403, office=403),
        lambda ids: {"json": {"document": "name: x"}},
    ),
    ("POST", "/api/v1/applications"): Rule(dict.fromkeys(CALLERS, PASSES), _application),
    # Anyone may complain, anonymously too.
    ("POST", "/api/v1/complaints"): Rule(
        dict.fromkeys(CALLERS, PASSES),
        lambda ids: {
            "json": {
                "complainant": {"anonymous": True},
                "subject_name": "某区城市管理局",
                "grounds": "拖欠工程款",
            }
        },
    ),
    ("GET", "/api/v1/status/{case_no}"): Rule(APPLICANT_READ),
    # The engine refuses a step the state does not offer (409), but only after the code.
    ("POST", "/api/v1/status/{case_no}/actions"): Rule(
        APPLICANT_WRITE,
        lambda ids: {"json": {"trigger": "request_review", "payload": {"review_grounds": "x"}}},
    ),
    ("POST", "/api/v1/status/{case_no}/supplement"): Rule(
        APPLICANT_WRITE, lambda ids: {"data": {"comment": "补充说明"}}
    ),
    ("POST", "/api/v1/status/{case_no}/review"): Rule(
        APPLICANT_WRITE, lambda ids: {"json": {"grounds": "请求复核"}}
    ),
    ("GET", "/api/v1/cases/{case_id}/notices"): Rule(CASE_READ),
    ("GET", "/api/v1/notices/{notice_id}/pdf"): Rule(CASE_READ),
    ("GET", "/api/v1/status/{case_no}/notices/{notice_id}/pdf"): Rule(APPLICANT_READ),
    ("GET", "/api/v1/outbox"): Rule(
        staff_only(own=200, other=200, unit=200, office=200),
        lambda ids: {"params": {"status": "dead"}},
        check=_outbox,
    ),
    ("POST", "/api/v1/outbox/{message_id}/retry"): Rule(
        staff_only(own=PASSES, unit=PASSES, other=404, office=404), role="reviewer"
    ),
    # Only the credit office changes records directly (admins too, in test_admin_api).
    ("POST", "/api/v1/records/{record_id}/changes"): Rule(
        staff_only(own=403, other=403, unit=403, office=PASSES),
        lambda ids: {"json": {"action": "mark_disputed", "reason": "收到异议"}},
    ),
    # Administration: administrators only (tests/api/test_admin_api.py has what they may do).
    ("GET", "/api/v1/departments"): Rule(ADMIN),
    ("POST", "/api/v1/departments"): Rule(
        ADMIN, lambda ids: {"json": {"id": "newdept", "name_zh": "新部门", "name_en": "New"}}
    ),
    ("PATCH", "/api/v1/departments/{dept_id}"): Rule(
        ADMIN, lambda ids: {"json": {"email": "x@example.com"}}
    ),
    ("GET", "/api/v1/users"): Rule(ADMIN),
    ("POST", "/api/v1/users"): Rule(
        ADMIN, lambda ids: {"json": {"name": "new.user", "role": "handler", "department": "tax"}}
    ),
    ("PATCH", "/api/v1/users/{user_name}"): Rule(ADMIN, lambda ids: {"json": {"role": "head"}}),
    ("GET", "/api/v1/tokens"): Rule(ADMIN),
    ("POST", "/api/v1/users/{user_name}/tokens"): Rule(
        ADMIN, lambda ids: {"json": {"label": "script"}}
    ),
    ("POST", "/api/v1/tokens/{token_id}/rotate"): Rule(ADMIN),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): Rule(ADMIN),
    # A case's access log: whoever may see the case (the whole log: administrators).
    ("GET", "/api/v1/access-log"): Rule(
        staff_only(own=200, unit=200, other=404, office=404),
        lambda ids: {"params": {"case_id": ids["case_id"]}},
    ),
    # Anyone may ask for a new code: the answer is the same 202 whether or not the contact is
    # the one on file (here it is not, so case A keeps its code for the rules after this).
    ("POST", "/api/v1/status/{case_no}/access-code"): Rule(
        dict.fromkeys(CALLERS, 202), lambda ids: {"json": {"contact": "nobody@example.com"}}
    ),
    ("GET", "/healthz"): Rule(PUBLIC),
    # No engine loop in this app, no late timer or message: ready for everyone alike.
    ("GET", "/readyz"): Rule(PUBLIC),
    # Operations data for operators only (an admin token or REDRESS_METRICS_TOKEN).
    ("GET", "/metrics"): Rule(dict.fromkeys(CALLERS, 401)),
    # Last: it closes case A.
    ("POST", "/api/v1/status/{case_no}/withdraw"): Rule(
        APPLICANT_WRITE, lambda ids: {"json": {"reason": "不再需要"}}
    ),
}


def documented(api: Api) -> list[tuple[str, str]]:
    spec = api.client.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


def test_every_documented_route_has_a_rule(
    sqlite_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(sqlite_world, tmp_path, monkeypatch)
    routes = documented(api)
    missing = sorted(set(routes) - set(RULES))
    assert not missing, f"routes without an authorization rule: {missing}"
    assert not set(RULES) - set(routes), "rules for routes that no longer exist"


def _send(s: Setup, method: str, path: str, rule: Rule, caller: str) -> httpx.Response:
    url = path.format(**s.ids)
    kw = rule.request(s.ids)
    headers = dict(kw.pop("headers", {}))
    if caller in STAFF_DEPT:
        headers["Authorization"] = f"Bearer {s.tokens[f'{STAFF_DEPT[caller]}_{rule.role}']}"
    elif caller == "office":
        headers["Authorization"] = f"Bearer {s.tokens['office_credit_office']}"
    elif caller == "applicant_a":
        headers["X-Access-Code"] = s.codes["a"]
    elif caller == "applicant_b":
        headers["X-Access-Code"] = s.codes["b"]
    return s.api.client.request(method, url, headers=headers, **kw)


def test_authorization_of_every_route(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = build(world, tmp_path, monkeypatch)
    wrong: list[str] = []
    for (method, path), rule in RULES.items():
        # Refusals first, each writing nothing; then the callers the rule lets through.
        order = sorted(CALLERS, key=lambda c: rule.expect[c] == PASSES)
        for caller in order:
            want = rule.expect[caller]
            before = fingerprint(s.api)
            # Each request from a fresh client as far as the wrong-code guard goes (the
            # guard has tests of its own): B's and the staff's codes are wrong on purpose.
            s.api.app.state.access_guard.clear()
            r = _send(s, method, path, rule, caller)
            where = f"{method} {path} as {caller}"
            if r.status_code >= 500:
                wrong.append(f"{where}: {r.status_code} {r.text[:200]}")
                continue
            if want == PASSES:
                if r.status_code in DENIED:
                    wrong.append(f"{where}: {r.status_code}, expected to pass: {r.text[:200]}")
            elif r.status_code != want:
                wrong.append(f"{where}: {r.status_code}, expected {want}: {r.text[:200]}")
            if want in DENIED and fingerprint(s.api) != before:
                wrong.append(f"{where}: refused, yet the database changed")
            if rule.check is not None and (problem := rule.check(caller, r, s.ids)):
                wrong.append(f"{where}: {problem}")
    assert not wrong, "\n".join(wrong)
