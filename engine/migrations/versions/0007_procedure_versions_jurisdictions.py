"""procedure versions in the database, jurisdictions

Procedures become deployable data: each version is a stored, immutable document
(procedure_versions) and a case names the exact one it runs under (cases.definition_id). A
department belongs to a jurisdiction, whose rule sets and local calendar days
(jurisdiction_days) its cases follow. A case may be about a subject without a published record
(cases.record_id nullable).

Existing cases ran the built-in definitions: those are deployed here (as `redress db upgrade`
deploys them on every run) and each case is pointed at its (procedure, version, 'default') row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import engine.schema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "procedure_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("deployed_by", sa.String(length=100), nullable=False),
        sa.Column("deployed_at", engine.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_versions")),
        sa.UniqueConstraint(
            "name",
            "version",
            "jurisdiction",
            name=op.f("uq_procedure_versions_name_version_jurisdiction"),
        ),
    )
    op.create_table(
        "jurisdiction_days",
        sa.Column("jurisdiction", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("loaded_at", engine.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jurisdiction", "day", name=op.f("pk_jurisdiction_days")),
    )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "jurisdiction", sa.String(length=40), server_default="default", nullable=False
            )
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("definition_id", ID, nullable=True))
        batch_op.add_column(
            sa.Column(
                "jurisdiction", sa.String(length=40), server_default="default", nullable=False
            )
        )

    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM cases")).scalar():
        from engine.definitions import catalog, install_builtin

        install_builtin(conn, catalog(), datetime.now(UTC))
        conn.execute(
            sa.text(
                "UPDATE cases SET definition_id = (SELECT pv.id FROM procedure_versions pv "
                "WHERE pv.name = cases.procedure AND pv.version = cases.definition_version "
                "AND pv.jurisdiction = 'default')"
            )
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("definition_id", existing_type=ID, nullable=False)
        # A case need not be about a published record (the seeds' complaints are not).
        batch_op.alter_column("record_id", existing_type=ID, nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_cases_definition_id_procedure_versions"),
            "procedure_versions",
            ["definition_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("record_id", existing_type=ID, nullable=False)
        batch_op.drop_constraint(
            op.f("fk_cases_definition_id_procedure_versions"), type_="foreignkey"
        )
        batch_op.drop_column("jurisdiction")
        batch_op.drop_column("definition_id")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("jurisdiction")
    op.drop_table("jurisdiction_days")
    op.drop_table("procedure_versions")
