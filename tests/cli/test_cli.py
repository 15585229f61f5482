"""The `redress` command line against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from engine.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("REDRESS_DATABASE_URL", db_url)
    monkeypatch.setenv("REDRESS_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_demo_then_audit_verify_then_tamper(cli_env: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for state in ("restoring", "under_review", "repair_revoked", "deemed_withdrawn"):
        assert state in result.output
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "audit ok" in result.output

    eng = sa.create_engine(cli_env.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as conn:
        case_id, case_no = conn.execute(
            sa.text("SELECT id, case_no FROM cases ORDER BY id LIMIT 1 OFFSET 8")
        ).one()
        conn.execute(
            sa.text(
                'UPDATE case_events SET payload = \'{"outcome":"revoked"}\' '
                "WHERE case_id = :c AND seq = 3"
            ),
            {"c": case_id},
        )
    eng.dispose()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"case {case_no}" in result.output and "event 3" in result.output
    assert "altered" in result.output


def test_demo_if_empty_is_repeatable(cli_env: str) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    again = runner.invoke(app, ["demo", "--if-empty"])
    assert again.exit_code == 0 and "already loaded" in again.output
    assert runner.invoke(app, ["demo"]).exit_code == 2


def test_procedures_list_and_show(cli_env: str) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    out = runner.invoke(app, ["procedures", "list"]).output
    assert "objection" in out and "repair" in out and "2026-04-01" in out
    out = runner.invoke(app, ["procedures", "show", "repair", "--version", "1", "--mermaid"])
    assert out.exit_code == 0 and out.output.startswith("stateDiagram-v2")
    out = runner.invoke(app, ["procedures", "show", "repair", "--version", "9"])
    assert out.exit_code == 2 and "no version 9" in out.output


def test_user_add_prints_token_last(cli_env: str) -> None:
    runner.invoke(app, ["db", "upgrade"])
    runner.invoke(app, ["demo"])
    out = runner.invoke(app, ["user", "add", "zhang", "--role", "handler", "--department", "amr"])
    assert out.exit_code == 0
    assert out.output.strip().splitlines()[-1].startswith("rd_")
    bad = runner.invoke(app, ["user", "add", "li", "--role", "janitor", "--department", "amr"])
    assert bad.exit_code == 2 and "role" in bad.output


def test_calendar_due_prints_the_date_and_provisional(cli_env: str) -> None:
    runner.invoke(app, ["db", "upgrade"])
    out = runner.invoke(app, ["calendar", "due", "2026-02-13", "5 working days"])
    assert out.exit_code == 0 and out.output.strip() == "2026-02-27"
    out = runner.invoke(app, ["calendar", "due", "2026-09-29", "5个工作日"])
    assert out.output.strip() == "2026-10-12"  # across National Day, 10-10 a makeup Saturday
    out = runner.invoke(app, ["calendar", "due", "2026-12-24", "10 working days"])
    assert out.output.strip() == "2027-01-08 provisional"
    bad = runner.invoke(app, ["calendar", "due", "2026-12-24", "soon"])
    assert bad.exit_code == 2 and "soon" in bad.output


def test_calendar_load_recomputes_and_show_lists(cli_env: str, tmp_path: Path) -> None:
    import json
    from datetime import date

    from engine.clock import FixedClock
    from engine.factory import build_engine
    from engine.service import SYSTEM

    runner.invoke(app, ["db", "upgrade"])
    runner.invoke(app, ["demo"])
    engine = build_engine()
    engine.clock = FixedClock(__import__("conftest").at("2026-12-24 10:00"))
    office = engine.authenticate(
        next(
            line.split("\t")[1]
            for line in (tmp_path / "demo.txt").read_text().splitlines()
            if line.startswith("office_credit_office\t")
        )
    )
    rec = engine.create_record(
        actor=office,
        subject_kind="enterprise",
        subject_name="某公司",
        subject_identifier=__import__("states.identifiers").identifiers.make_uscc(
            "91310000MA1FLBEEF"
        ),
        source_category="administrative_penalty",
        severity="general",
        determining_unit="amr",
        decision_date=date(2026, 6, 1),
        published_from=date(2026, 6, 1),
    )
    opened = engine.open_case(
        procedure="repair",
        record_id=rec,
        applicant={"kind": "person", "name": "张三", "identifier": "11010519491231002X"},
        actor=office,
        payload={"grounds": "已整改", "obligations_met": True, "commitment_signed": True},
    )
    due = {d["timer"]: d for d in engine.case_view(opened.case_id, SYSTEM)["deadlines"]}
    assert due["result_due"]["provisional"]

    show = runner.invoke(app, ["calendar", "show", "2027"])
    assert show.exit_code == 0 and "provisional" in show.output
    notice = tmp_path / "2027.json"
    notice.write_text(
        json.dumps(
            {
                "kind": "official",
                "year": 2027,
                "source": "国务院办公厅2027年节假日安排（测试）",
                "days": [
                    {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
                    {"date": "2027-01-04", "kind": "holiday", "name": "元旦调休"},
                    {"date": "2027-01-09", "kind": "workday", "name": "调休上班"},
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = runner.invoke(app, ["calendar", "load", str(notice)])
    assert out.exit_code == 0, out.output
    assert "recomputed" in out.output
    due = {d["timer"]: d for d in engine.case_view(opened.case_id, SYSTEM)["deadlines"]}
    assert not due["result_due"]["provisional"]
    assert due["result_due"]["due_day"] == date(2027, 1, 9)
    show = runner.invoke(app, ["calendar", "show", "2027"])
    assert "provisional" not in show.output and "2027-01-09" in show.output
    out = runner.invoke(app, ["calendar", "due", "2026-12-24", "10 working days"])
    assert out.output.strip() == "2027-01-09"

    broken = tmp_path / "bad.json"
    broken.write_text('{"kind": "official", "days": [{"date": "2027-13-01", "kind": "x"}]}')
    out = runner.invoke(app, ["calendar", "load", str(broken)])
    assert out.exit_code == 2 and "days[0]" in out.output and "year" in out.output


def test_sweep_by_hand_with_now(cli_env: str) -> None:
    runner.invoke(app, ["demo"])
    out = runner.invoke(app, ["sweep", "--now", "2030-01-01T00:00"])
    assert out.exit_code == 0, out.output
    import json

    first = json.loads(out.output.strip().splitlines()[-1])
    assert first["fired"] > 0 and first["actions"]["publication_ended"] >= 1
    again = json.loads(
        runner.invoke(app, ["sweep", "--now", "2030-01-01T00:00"]).output.strip().splitlines()[-1]
    )
    assert again["fired"] == 0
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    bad = runner.invoke(app, ["sweep", "--now", "tomorrow"])
    assert bad.exit_code == 2 and "--now" in bad.output


def test_serve_answers_health(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "REDRESS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "REDRESS_VAR_DIR": str(tmp_path),
    }
    redress = str(Path(sys.executable).parent / "redress")
    proc = subprocess.Popen(
        [redress, "serve", "--port", str(port), "--no-engine-loop"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"status": "ok", "database": "sqlite"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_procedures_schema_is_json_schema(cli_env: str) -> None:
    import json

    import jsonschema

    out = runner.invoke(app, ["procedures", "schema"])
    assert out.exit_code == 0
    schema = json.loads(out.output)
    assert schema["$schema"].endswith("2020-12/schema")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"states", "triggers", "timers", "case_prefix"} <= set(schema["properties"])


def test_procedures_diff_names_what_changed(cli_env: str, tmp_path: Path) -> None:
    import yaml

    from engine.definitions import BUILTIN_DIR

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    doc = yaml.safe_load((BUILTIN_DIR / "objection" / "default-v1.yaml").read_text("utf-8"))
    doc["version"] = 2
    next(t for t in doc["timers"] if t["name"] == "verify")["period"] = "4 working days"
    doc["timers"] = [t for t in doc["timers"] if t["name"] != "testing_due"]
    for s in doc["states"]:
        s["pauses"] = [n for n in s.get("pauses", []) if n != "testing_due"]
        s["starts"] = [n for n in s.get("starts", []) if n != "testing_due"]
    path = tmp_path / "v2.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert runner.invoke(app, ["procedures", "deploy", str(path)]).exit_code == 0
    out = runner.invoke(app, ["procedures", "diff", "objection", "1", "2"])
    assert out.exit_code == 0, out.output
    assert "~ timer verify: period 5 working days → 4 working days" in out.output
    assert "- timer testing_due" in out.output and "~ state testing" in out.output
    across = runner.invoke(app, ["procedures", "diff", "objection", "default:1", "henan:1"])
    assert "~ timer verify: period 5 working days → 3 working days" in across.output
    assert "~ procedure jurisdiction: default → henan" in across.output
    bad = runner.invoke(app, ["procedures", "diff", "objection", "1", "x"])
    assert bad.exit_code == 2
