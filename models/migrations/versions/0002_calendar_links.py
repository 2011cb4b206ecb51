"""calendar links and oauth states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_binding", sa.String(length=64), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_oauth_state_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_state")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_state_state_hash")),
    )
    with op.batch_alter_table("oauth_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_state_user_id"), ["user_id"], unique=False)

    op.create_table(
        "profile_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.Enum("business", "enterprise", name="link_mode"), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("profile_id", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("account_email", sa.String(length=320), nullable=True),
        sa.Column(
            "status",
            sa.Enum("active", "needs_attention", "disconnected", name="link_status"),
            nullable=False,
        ),
        sa.Column("target_calendar_id", sa.String(length=200), nullable=True),
        sa.Column("conflict_calendar_ids", sa.JSON(), nullable=True),
        sa.Column("access_token", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token", sa.LargeBinary(), nullable=True),
        sa.Column("token_expires_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("linked_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_profile_link_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_profile_link_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_link")),
        sa.UniqueConstraint("sub", name=op.f("uq_profile_link_sub")),
    )
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_link_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_profile_link_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "business_connect_enabled", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("business_connect_enabled")

    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_link_user_id"))
        batch_op.drop_index(batch_op.f("ix_profile_link_organisation_id"))

    op.drop_table("profile_link")
    with op.batch_alter_table("oauth_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_state_user_id"))

    op.drop_table("oauth_state")
    # PostgreSQL keeps enum types after their table is dropped.
    sa.Enum(name="link_status").drop(op.get_bind(), checkfirst=True)
    sa.Enum(name="link_mode").drop(op.get_bind(), checkfirst=True)
