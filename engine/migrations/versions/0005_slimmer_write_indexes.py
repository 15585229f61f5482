"""fewer index pages written per command

Every index entry a command changes is a page its COMMIT writes (SQLite: one WAL frame each,
about 4 µs; a step wrote 20–26). bench/peers.py traced each step's frames to the index they
belong to; these held entries no query reads:

- `ix_timers_record_status` indexed every case timer under record_id NULL, and moved it
  between (NULL, 'active') and (NULL, 'stopped') on every stop. Only a record's own timers
  have a record_id, and `RECORD_TIMERS_STOP` asks only for those: partial, record_id IS NOT NULL.
- `ix_timers_next` kept stopped timers under next_at NULL; the sweep only asks for
  next_at <= now: partial, next_at IS NOT NULL.
- `case_events`' unique (case_id, idempotency_key) indexed every event, with or without a key:
  a partial unique index on the events that have one (the constraint's name is kept).
- `cases` had (procedure, state) and (department_id, state), both rewritten on every state
  change: one (department_id, procedure, state) serves the department's lists and the counts
  by procedure and state (a covering scan).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _where(text: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(text), "postgresql_where": sa.text(text)}


def upgrade() -> None:
    op.drop_index("ix_timers_record_status", table_name="timers")
    op.create_index(
        "ix_timers_record_status",
        "timers",
        ["record_id", "status"],
        **_where("record_id IS NOT NULL"),
    )
    op.drop_index("ix_timers_next", table_name="timers")
    op.create_index("ix_timers_next", "timers", ["next_at", "id"], **_where("next_at IS NOT NULL"))
    # SQLite cannot drop a table constraint in place: batch mode copies the table.
    with op.batch_alter_table("case_events") as batch:
        batch.drop_constraint("uq_case_events_case_id_idempotency_key", type_="unique")
    op.create_index(
        "uq_case_events_case_id_idempotency_key",
        "case_events",
        ["case_id", "idempotency_key"],
        unique=True,
        **_where("idempotency_key IS NOT NULL"),
    )
    op.drop_index("ix_cases_procedure_state", table_name="cases")
    op.drop_index("ix_cases_department_state", table_name="cases")
    op.create_index(
        "ix_cases_department_id_procedure_state", "cases", ["department_id", "procedure", "state"]
    )


def downgrade() -> None:
    op.drop_index("ix_cases_department_id_procedure_state", table_name="cases")
    op.create_index("ix_cases_department_state", "cases", ["department_id", "state"])
    op.create_index("ix_cases_procedure_state", "cases", ["procedure", "state"])
    op.drop_index("uq_case_events_case_id_idempotency_key", table_name="case_events")
    with op.batch_alter_table("case_events") as batch:
        batch.create_unique_constraint(
            "uq_case_events_case_id_idempotency_key", ["case_id", "idempotency_key"]
        )
    op.drop_index("ix_timers_next", table_name="timers")
    op.create_index("ix_timers_next", "timers", ["next_at", "id"])
    op.drop_index("ix_timers_record_status", table_name="timers")
    op.create_index("ix_timers_record_status", "timers", ["record_id", "status"])
