"""api tokens

Staff tokens move from `users.token_hash` (one per user, for ever) to `api_tokens`: several per
user, each with a label, an expiry, and an end (revoked, rotated). A token that existed keeps
working, labelled "initial", until 90 days after the upgrade (the default `token_days`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 19:00:00
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import engine.schema

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = engine.schema.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
    conn = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", ID),
        sa.column("token_hash", sa.String()),
        sa.column("created_at", TS),
    )
    tokens = sa.table(
        "api_tokens",
        sa.column("user_id", ID),
        sa.column("token_hash", sa.String()),
        sa.column("label", sa.String()),
        sa.column("created_at", TS),
        sa.column("created_by", sa.String()),
        sa.column("expires_at", TS),
    )
    expires = datetime.now(UTC) + timedelta(days=90)
    rows = conn.execute(sa.select(users.c.id, users.c.token_hash, users.c.created_at)).all()
    if rows:
        conn.execute(
            tokens.insert(),
            [
                {
                    "user_id": r.id,
                    "token_hash": r.token_hash,
                    "label": "initial",
                    "created_at": r.created_at,
                    "created_by": "migration 0011",
                    "expires_at": expires,
                }
                for r in rows
            ],
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_users_token_hash"), type_="unique")
        batch_op.drop_column("token_hash")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_id", ID, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_web_sessions_token_id_api_tokens"), "api_tokens", ["token_id"], ["id"]
        )
        batch_op.create_index(op.f("ix_web_sessions_token_id"), ["token_id"])


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_web_sessions_token_id"))
        batch_op.drop_constraint(op.f("fk_web_sessions_token_id_api_tokens"), type_="foreignkey")
        batch_op.drop_column("token_id")
    # Each user gets back the newest of their live tokens (or a random, unusable hash).
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE users SET token_hash = (SELECT t.token_hash FROM api_tokens t "
            "WHERE t.user_id = users.id AND t.revoked_at IS NULL ORDER BY t.id DESC LIMIT 1)"
        )
    )
    for (uid,) in conn.execute(sa.text("SELECT id FROM users WHERE token_hash IS NULL")).all():
        conn.execute(
            sa.text("UPDATE users SET token_hash = :h WHERE id = :id"),
            {"h": secrets.token_hex(32), "id": uid},
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("token_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_users_token_hash"), ["token_hash"])
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
