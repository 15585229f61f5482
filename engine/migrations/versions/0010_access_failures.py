"""access failures

Wrong access codes are counted in the database, per (case number, client) and per client, so
that every worker process shares the counts (they were per process, per client: an office or a
mobile network behind one address locked every applicant out).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.schema

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "access_failures",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", engine.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_failures")),
    )
    op.create_index(
        op.f("ix_access_failures_case_no_client_at"),
        "access_failures",
        ["case_no", "client", "at"],
    )
    op.create_index(op.f("ix_access_failures_client_at"), "access_failures", ["client", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_access_failures_client_at"), table_name="access_failures")
    op.drop_index(op.f("ix_access_failures_case_no_client_at"), table_name="access_failures")
    op.drop_table("access_failures")
