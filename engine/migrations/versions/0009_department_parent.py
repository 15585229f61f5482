"""department parent

A department may name the department above it (上级部门): where a matter goes at the next level
(escalation beyond the department's own head, a review by the level above).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_departments_parent_id_departments"), "departments", ["parent_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_departments_parent_id_departments"), type_="foreignkey")
        batch_op.drop_column("parent_id")
