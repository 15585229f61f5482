"""Every hot-path statement finds its rows through an index, never by reading a whole table.

SQLite's EXPLAIN QUERY PLAN names a full scan `SCAN <table>` (a covering or ordinary index
is `SEARCH ... USING INDEX` or `SCAN ... USING INDEX`); an unindexed lookup grows with every
case stored — as `RECORD_TIMERS_STOP` did before migration 0004.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from engine import sql
from engine.db import Database
from engine.migrate import upgrade

STATEMENTS = {
    name: text
    for name, text in vars(sql).items()
    if name.isupper() and isinstance(text, str) and re.search(r"\bWHERE\b", text)
}
_FULL_SCAN = re.compile(r"\bSCAN (\w+)(?! USING)")


# Tables small by nature, where a scan is the right plan: the staff list.
SMALL_TABLES = {"users"}


def test_the_statements_were_found() -> None:
    assert {"CASE_FOR_COMMAND", "RECORD_TIMERS_STOP", "TIMERS_LIVE"} <= set(STATEMENTS)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_no_full_table_scan(name: str, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}", pool_size=1)
    upgrade(db.engine)
    db.dispose()
    conn = sqlite3.connect(tmp_path / "plan.db")
    text = STATEMENTS[name]
    params = {p: None for p in re.findall(r"(?<![:\w]):([a-zA-Z_]\w*)", text)}
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + text, params)]
    conn.close()
    scans = [
        line
        for line in plan
        if (m := _FULL_SCAN.search(line)) is not None and m.group(1) not in SMALL_TABLES
    ]
    assert scans == [], f"{name} reads a whole table: {plan}"
