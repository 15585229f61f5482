"""An operator's procedure change, end to end, against running servers (SQLite and PostgreSQL).

The built-in objection file is edited as an operator would edit it (the verification deadline
changed, a state added), validated and deployed with the CLI while two API servers run; a
further version is deployed through the API of one of them. New cases in either server follow
the newest version without a restart; cases opened before keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import APPLICANT, World
from server_support import Server, two_servers
from typer.testing import CliRunner

from cli.main import app
from engine.definitions import BUILTIN_DIR
from states.calendar import Period, WorkCalendar

runner = CliRunner()


@pytest.fixture
def servers(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, Server]]:
    with two_servers(db_url, tmp_path, monkeypatch) as pair:
        yield pair


ORIGINAL = (BUILTIN_DIR / "objection" / "default-v1.yaml").read_text(encoding="utf-8")

ON_HOLD_STATE = """
- name: on_hold
  label: {zh: 暂缓核查, en: On hold}
  summary: {zh: 核查暂缓，期限暂停计算。, en: The verification is on hold; its clock is paused.}
  pauses: [verify]
"""
ON_HOLD_TRIGGERS = """- name: put_on_hold
  label: {zh: 暂缓核查, en: put on hold}
  sources: [verifying]
  dest: on_hold
  roles: [handler, credit_office]
  required: [reason]
- name: end_hold
  label: {zh: 恢复核查, en: end the hold}
  sources: [on_hold]
  dest: verifying
  roles: [handler, credit_office]
  optional: [comment]
"""


def edited(version: int, verify: str) -> str:
    """The operator's edit: a new version number and date, one period, one new state."""
    text = ORIGINAL.replace("\nversion: 1\n", f"\nversion: {version}\n", 1)
    text = text.replace("effective_from: '2020-01-01'", "effective_from: '2026-01-01'", 1)
    old = "  label: {zh: 核查期限, en: verification}\n  period: 5 working days\n"
    assert text.count(old) == 1
    text = text.replace(
        old, f"  label: {{zh: 核查期限, en: verification}}\n  period: {verify}\n", 1
    )
    text = text.replace("\n\ntimers:\n", ON_HOLD_STATE + "\ntimers:\n", 1)
    return text + ON_HOLD_TRIGGERS


def file_case(server: Server, world: World) -> dict[str, Any]:
    r = server.call(
        "POST",
        "/cases",
        world.tokens["office_handler"],
        json={
            "procedure": "objection",
            "record_id": world.record(),
            "applicant": APPLICANT,
            "payload": {"grounds": "记录有误", "commitment_signed": True},
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def act(server: Server, world: World, case: dict[str, Any], trigger: str, **payload: Any) -> int:
    view = server.call("GET", f"/cases/{case['case_id']}", world.tokens["office_handler"]).json()
    r = server.call(
        "POST",
        f"/cases/{case['case_id']}/actions/{trigger}",
        world.tokens["office_handler"],
        json=payload,
        headers={"If-Match": str(view["version"])},
    )
    return r.status_code


def verify_due(server: Server, world: World, case: dict[str, Any]) -> str:
    view = server.call("GET", f"/cases/{case['case_id']}", world.tokens["office_handler"]).json()
    return str(next(d["due_day"] for d in view["deadlines"] if d["timer"] == "verify"))


def due_in(period: str) -> str:
    """The due day of a period started today (the servers run on the real clock)."""
    cal = WorkCalendar(tz="Asia/Shanghai")
    today = cal.local_date(datetime.now(UTC))
    return cal.add(today, Period.parse(period)).day.isoformat()


def test_an_operator_s_edit_deployed_by_cli_and_api_reaches_running_servers(
    world: World, servers: tuple[Server, Server], tmp_path: Path
) -> None:
    a, b = servers
    before = file_case(a, world)
    assert before["definition_version"] == 1

    path = tmp_path / "objection-v2.yaml"
    path.write_text(edited(2, "4 working days"), encoding="utf-8")
    checked = runner.invoke(app, ["procedures", "validate", str(path)])
    assert checked.exit_code == 0, checked.output
    deployed = runner.invoke(app, ["procedures", "deploy", str(path)])
    assert deployed.exit_code == 0 and "deployed" in deployed.output, deployed.output
    again = runner.invoke(app, ["procedures", "deploy", str(path)])
    assert again.exit_code == 0 and "unchanged" in again.output, again.output

    # Both servers were running before the deploy; neither is restarted.
    for server in (a, b):
        case = file_case(server, world)
        assert case["definition_version"] == 2
        assert act(server, world, case, "accept") == 200
        assert act(server, world, case, "mark_disputed") == 200
        assert verify_due(server, world, case) == due_in("4 working days")
        assert act(server, world, case, "put_on_hold", reason="等待法院文书") == 200
        assert act(server, world, case, "end_hold") == 200
    # The case opened before keeps version 1: no such state there.
    assert act(a, world, before, "accept") == 200
    assert act(a, world, before, "mark_disputed") == 200
    assert verify_due(a, world, before) == due_in("5 working days")
    assert act(a, world, before, "put_on_hold", reason="x") == 409
    assert before["definition_version"] == 1

    # Version 3 through the API of one server; the other one uses it at once.
    admin = world.tokens["office_admin"]
    document = edited(3, "3 working days")
    r = a.call("POST", "/procedures", admin, json={"document": document})
    assert r.status_code == 201 and r.json()["created"] is True, r.text
    assert len(r.json()["sha256"]) == 64
    r = a.call("POST", "/procedures", admin, json={"document": document})
    assert r.status_code == 200 and r.json()["created"] is False
    assert "unchanged" in r.json()["message"]
    changed = document.replace("3 working days", "2 working days", 1)
    r = a.call("POST", "/procedures", admin, json={"document": changed})
    assert r.status_code == 409 and "never changes" in r.json()["detail"]
    handler = world.tokens["office_handler"]
    assert a.call("POST", "/procedures", handler, json={"document": document}).status_code == 403

    case = file_case(b, world)
    assert case["definition_version"] == 3
    act(b, world, case, "accept")
    act(b, world, case, "mark_disputed")
    assert verify_due(b, world, case) == due_in("3 working days")
    v2_case = file_case(a, world)  # for comparison: nothing of v2 is cached against v3
    assert v2_case["definition_version"] == 3
    listing = b.call("GET", "/procedures", handler).json()
    objection = next(p for p in listing if p["name"] == "objection")
    versions = {(v["jurisdiction"], v["version"]) for v in objection["versions"]}
    assert {("default", 1), ("default", 2), ("default", 3), ("shanghai", 1)} <= versions
    stored = b.call("GET", "/procedures/objection/versions/3", handler).json()
    assert stored["source"] == document and stored["mermaid"].startswith("stateDiagram-v2")
    assert "on_hold" in stored["mermaid"]


def test_a_bad_document_is_refused_with_every_problem_located(
    world: World, servers: tuple[Server, Server], tmp_path: Path
) -> None:
    a, _ = servers
    bad = edited(2, "four days").replace("  dest: on_hold\n", "  dest: on_hols\n", 1)
    r = a.call("POST", "/procedures", world.tokens["office_admin"], json={"document": bad})
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    where = {p["path"]: p for p in problems}
    assert any(p.endswith(".period") for p in where), where
    assert any(p.endswith(".dest") for p in where), where
    assert all(p["line"] and p["column"] and p["message_zh"] for p in problems)
    # The same through the CLI: file:line:column, exit code 1, nothing stored.
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    out = runner.invoke(app, ["procedures", "validate", str(path)])
    assert out.exit_code == 1
    assert f"{path}:" in out.output and "on_hols" in out.output
    out = runner.invoke(app, ["procedures", "deploy", str(path)])
    assert out.exit_code == 1
    listing = a.call("GET", "/procedures", world.tokens["office_handler"]).json()
    objection = next(p for p in listing if p["name"] == "objection")
    assert {v["version"] for v in objection["versions"] if v["jurisdiction"] == "default"} == {1}
