"""single sign-on: an organisation's OpenID Connect provider (client secret encrypted), whether
password login stays on (with its break-glass IT admin), and one-time sign-in states

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from models.base import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

#: The role type exists already (user_account.role): reused, never created or dropped here.
ROLES = ("recruiter", "coordinator", "admin", "compliance")
ROLE = sa.Enum(*ROLES, name="user_role").with_variant(
    postgresql.ENUM(*ROLES, name="user_role", create_type=False), "postgresql"
)


def upgrade() -> None:
    op.create_table(
        "sso_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("create_accounts", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("default_role", ROLE, nullable=False),
        sa.Column("password_login", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("break_glass_user_id", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_sso_config_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["break_glass_user_id"],
            ["user_account.id"],
            name=op.f("fk_sso_config_break_glass_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["user_account.id"],
            name=op.f("fk_sso_config_updated_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_config")),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_sso_config_organisation_id")),
    )
    op.create_table(
        "sso_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("session_binding", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_sso_state_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_state")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_sso_state_state_hash")),
    )
    with op.batch_alter_table("sso_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sso_state_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sso_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_state_organisation_id"))
    op.drop_table("sso_state")
    op.drop_table("sso_config")
