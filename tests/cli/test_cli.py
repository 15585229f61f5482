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
