"""index timers by record

`RECORD_TIMERS_STOP` (a decision that changes a record stops the record's timers) scanned the
whole timers table without it: found by bench/peers.py, where approve_decision grew with every
case stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_timers_record_status", "timers", ["record_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_timers_record_status", table_name="timers")
