"""case links

A case may open a case of another procedure about the same subject (a substantiated complaint
opens an identification of serious dishonesty); each case lists the other (both directions
are stored, so either page reads its links with one indexed query).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.schema

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("other_case_id", ID, nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("created_at", engine.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_links_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["other_case_id"], ["cases.id"], name=op.f("fk_case_links_other_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_links")),
        sa.UniqueConstraint(
            "case_id", "other_case_id", name=op.f("uq_case_links_case_id_other_case_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("case_links")
