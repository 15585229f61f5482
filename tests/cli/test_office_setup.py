"""An office set up from nothing by the command line alone (no demo): `redress init` from a
file, then departments and users kept with `redress department` and `redress user`; the set-up
works end to end (a record published, an objection filed and accepted through the API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app
from engine.factory import build_engine
from engine.settings import get_settings
from engine.setup import departments
from states.identifiers import make_uscc

runner = CliRunner()

SETUP = """
departments:
  - id: office
    name_zh: 某市信用办
    name_en: City Credit Office
    kind: credit_office
    email: credit@example.gov.cn
  - id: amr
    name_zh: 某市市场监管局
    name_en: Market Regulation Bureau
    parent: office
users:
  - {name: admin, role: admin, department: office}
  - {name: li, role: credit_office, department: office}
  - {name: wang, role: handler, department: office}
  - {name: zhao, role: reviewer, department: office}
  - {name: chen, role: handler, department: amr}
"""


@pytest.fixture
def fresh(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty installation: no database tables, no secret key, no demo."""
    monkeypatch.setenv("REDRESS_DATABASE_URL", db_url)
    monkeypatch.setenv("REDRESS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REDRESS_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def tokens(output: str) -> dict[str, str]:
    return dict(line.split("\t") for line in output.splitlines() if "\trd_" in line)


def test_an_office_set_up_by_the_cli_alone_works(fresh: Path) -> None:
    setup = fresh / "office.yaml"
    setup.write_text(SETUP, encoding="utf-8")
    done = runner.invoke(app, ["init", "--file", str(setup)])
    assert done.exit_code == 0, done.output
    assert "departments: 2 created" in done.output and "users: 5 created" in done.output
    issued = tokens(done.output)
    assert set(issued) == {"admin", "li", "wang", "zhao", "chen"}
    assert (fresh / "var" / "secret.key").exists()

    # The same file again changes nothing and shows no token.
    again = runner.invoke(app, ["init", "--file", str(setup)])
    assert again.exit_code == 0 and "0 created, 2 already there" in again.output
    assert tokens(again.output) == {}

    listed = runner.invoke(app, ["department", "list"])
    assert listed.exit_code == 0 and "amr" in listed.output and "office" in listed.output
    assert "wang" in runner.invoke(app, ["user", "list"]).output

    # It works: the office publishes a record, a handler files an objection and accepts it.
    get_settings.cache_clear()
    engine = build_engine(migrated=True)
    client = TestClient(create_app(engine), raise_server_exceptions=False)

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issued[user]}"}

    ident = make_uscc("91310000MA1FL7XX1")
    record = client.post(
        "/api/v1/records",
        headers=auth("li"),
        json={
            "subject_kind": "enterprise",
            "subject_name": "某贸易有限公司",
            "subject_identifier": ident,
            "source_category": "administrative_penalty",
            "severity": "general",
            "determining_unit": "amr",
            "decision_date": "2026-01-05",
            "published_from": "2026-01-06",
            "content": {"summary": "未按规定公示年度报告"},
        },
    )
    assert record.status_code == 201, record.text
    filed = client.post(
        "/api/v1/cases",
        headers=auth("wang"),
        json={
            "procedure": "objection",
            "record_id": record.json()["id"],
            "applicant": {"kind": "enterprise", "name": "某贸易有限公司", "identifier": ident},
            "payload": {"grounds": "该处罚决定已被依法撤销", "commitment_signed": True},
        },
    )
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["case_id"]
    accepted = client.post(
        f"/api/v1/cases/{case_id}/actions/accept",
        headers={**auth("wang"), "If-Match": "1"},
        json={},
    )
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted", accepted.text
    # The determining unit sees the case about its record; the credit office's admin too.
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth("chen")).status_code == 200

    # A role changed by the CLI applies from the next request.
    assert runner.invoke(app, ["user", "set", "wang", "--role", "reviewer"]).exit_code == 0
    assert engine.authenticate(issued["wang"]).role == "reviewer"
    engine.db.dispose()


def test_a_wrong_set_up_file_says_where_and_writes_nothing(fresh: Path) -> None:
    bad = fresh / "bad.yaml"
    bad.write_text(
        SETUP.replace("kind: credit_office", "kind: bureau").replace(
            "role: reviewer", "role: boss"
        ),
        encoding="utf-8",
    )
    out = runner.invoke(app, ["init", "--file", str(bad)])
    assert out.exit_code == 2
    assert "departments[0].kind" in out.output
    good = fresh / "office.yaml"
    good.write_text(SETUP, encoding="utf-8")
    assert runner.invoke(app, ["init", "--file", str(good)]).exit_code == 0
    # A role not declared, a parent listed after its child, a changed department: refused
    # together, and nothing of that file is kept.
    other = fresh / "other.yaml"
    other.write_text(
        """
departments:
  - {id: tax, name_zh: 税务局, name_en: Tax Bureau, parent: hrss}
  - {id: hrss, name_zh: 人社局, name_en: HR Bureau}
  - {id: amr, name_zh: 改名, name_en: Renamed}
users:
  - {name: sun, role: boss, department: tax}
""",
        encoding="utf-8",
    )
    out = runner.invoke(app, ["init", "--file", str(other)])
    assert out.exit_code == 2
    for where in ("users[0].role",):
        assert where in out.output, out.output
    out = runner.invoke(app, ["init", "--file", str(other.with_name("o2.yaml"))])
    assert out.exit_code == 2  # no such file
    fixed = other.read_text(encoding="utf-8").replace("boss", "handler")
    other.write_text(fixed, encoding="utf-8")
    out = runner.invoke(app, ["init", "--file", str(other)])
    assert out.exit_code == 2
    assert "departments[0].parent" in out.output and "departments[2]" in out.output
    get_settings.cache_clear()
    engine = build_engine(migrated=True)
    with engine.db.read() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM departments")).scalars())
    assert ids == {"office", "amr"}
    engine.db.dispose()


def test_department_parent_cannot_loop(fresh: Path) -> None:
    good = fresh / "office.yaml"
    good.write_text(SETUP, encoding="utf-8")
    assert runner.invoke(app, ["init", "--file", str(good)]).exit_code == 0
    out = runner.invoke(app, ["department", "set", "office", "--parent", "amr"])
    assert out.exit_code == 2 and "loop" in out.output
    out = runner.invoke(
        app,
        ["department", "add", "hrss", "--zh", "人社局", "--en", "HR Bureau", "--parent", "office"],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["department", "set", "hrss", "--email", "hr@example.gov.cn"])
    assert out.exit_code == 0
    get_settings.cache_clear()
    engine = build_engine(migrated=True)
    (hr,) = [d for d in departments(engine) if d["id"] == "hrss"]
    assert (hr["email"], hr["parent"], hr["name_zh"]) == ("hr@example.gov.cn", "office", "人社局")
    engine.db.dispose()


def last_token(output: str) -> str:
    line = output.strip().splitlines()[-1]
    assert line.startswith("rd_"), output
    return line


def test_tokens_and_the_access_log_by_the_cli(fresh: Path) -> None:
    setup = fresh / "office.yaml"
    setup.write_text(SETUP, encoding="utf-8")
    issued = tokens(runner.invoke(app, ["init", "--file", str(setup)]).output)
    get_settings.cache_clear()
    engine = build_engine(migrated=True)
    client = TestClient(create_app(engine), raise_server_exceptions=False)

    def status(token: str) -> int:
        return client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code

    added = runner.invoke(app, ["token", "add", "wang", "--label", "laptop", "--days", "30"])
    assert added.exit_code == 0 and "shown once" in added.output, added.output
    laptop = last_token(added.output)
    assert status(laptop) == 200
    listed = runner.invoke(app, ["token", "list", "wang"])
    assert listed.exit_code == 0 and "laptop" in listed.output and "initial" in listed.output
    assert laptop not in listed.output and issued["wang"] not in listed.output
    ids = {r["label"]: r["id"] for r in engine.tokens("wang")}
    rotated = runner.invoke(app, ["token", "rotate", str(ids["initial"])])
    assert rotated.exit_code == 0, rotated.output
    assert status(issued["wang"]) == 401 and status(last_token(rotated.output)) == 200
    assert runner.invoke(app, ["token", "revoke", str(ids["laptop"])]).exit_code == 0
    assert status(laptop) == 401
    twice = runner.invoke(app, ["token", "revoke", str(ids["laptop"])])
    assert twice.exit_code == 2 and "已停用" in twice.output
    assert runner.invoke(app, ["token", "list", "nobody"]).exit_code == 2
    bad = runner.invoke(app, ["token", "add", "wang", "--label", "x", "--days", "0"])
    assert bad.exit_code == 2 and "days" in bad.output
    # Disabling stops every token of the user.
    assert runner.invoke(app, ["user", "disable", "zhao"]).exit_code == 0
    assert status(issued["zhao"]) == 401

    # What a handler looked at is listed by `redress audit access`.
    ident = make_uscc("91310000MA1FL7WW1")
    li = {"Authorization": f"Bearer {issued['li']}"}
    assert (
        client.get("/api/v1/records", headers=li, params={"subject_id": ident}).status_code == 200
    )
    audit = runner.invoke(app, ["audit", "access", "--user", "li", "--json"])
    assert audit.exit_code == 0, audit.output
    (entry,) = [json.loads(line) for line in audit.output.splitlines()]
    assert entry["what"] == "search" and entry["detail"] == ident and entry["actor"] == "li"
    table = runner.invoke(app, ["audit", "access"])
    assert table.exit_code == 0 and "search" in table.output and "li" in table.output
    assert runner.invoke(app, ["audit", "access", "--case", "NOPE"]).exit_code == 2
    engine.db.dispose()
