"""access log

Who saw what: every view by staff of unmasked personal data. Append-only: triggers refuse
UPDATE and DELETE on the table, on SQLite and PostgreSQL alike.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.schema

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REFUSAL = "access_log is append-only"


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", engine.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("what", sa.String(length=20), nullable=False),
        sa.Column("case_id", ID, nullable=True),
        sa.Column("record_id", ID, nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_access_log_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_access_log_record_id_credit_records"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_log_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index(op.f("ix_access_log_case_id_at"), "access_log", ["case_id", "at"])
    op.create_index(op.f("ix_access_log_user_id_at"), "access_log", ["user_id", "at"])
    op.create_index(op.f("ix_access_log_at"), "access_log", ["at"])
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER access_log_no_{verb.lower()} BEFORE {verb} ON access_log "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON access_log FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    op.drop_index(op.f("ix_access_log_at"), table_name="access_log")
    op.drop_index(op.f("ix_access_log_user_id_at"), table_name="access_log")
    op.drop_index(op.f("ix_access_log_case_id_at"), table_name="access_log")
    op.drop_table("access_log")
