"""enterprise connect: service accounts and mailbox requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_account_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("account_email", sa.String(length=320), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=True),
        sa.Column("delegated_scope", sa.String(length=500), nullable=True),
        sa.Column(
            "status",
            sa.Enum("active", "needs_attention", "disconnected", name="service_account_status"),
            nullable=False,
        ),
        sa.Column("access_token", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token", sa.LargeBinary(), nullable=True),
        sa.Column("token_expires_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("connected_by_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connected_by_id"],
            ["user_account.id"],
            name=op.f("fk_service_account_link_connected_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_service_account_link_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_account_link")),
        sa.UniqueConstraint(
            "organisation_id", "domain", name=op.f("uq_service_account_link_organisation_id")
        ),
    )
    with op.batch_alter_table("service_account_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_account_link_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "mailbox_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_account_link_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "pending", "linked", "failed", "unlinked", name="mailbox_status"),
            nullable=False,
        ),
        sa.Column("state_hash", sa.String(length=64), nullable=True),
        sa.Column("state_used_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("callback_url", sa.String(length=400), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_key", sa.String(length=64), nullable=True),
        sa.Column("error_text", sa.String(length=500), nullable=True),
        sa.Column("profile_link_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_mailbox_request_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["profile_link_id"],
            ["profile_link.id"],
            name=op.f("fk_mailbox_request_profile_link_id_profile_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_account_link_id"],
            ["service_account_link.id"],
            name=op.f("fk_mailbox_request_service_account_link_id_service_account_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_mailbox_request_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_request")),
        sa.UniqueConstraint(
            "service_account_link_id",
            "email",
            name=op.f("uq_mailbox_request_service_account_link_id"),
        ),
    )
    with op.batch_alter_table("mailbox_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailbox_request_claim"), ["claim"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mailbox_request_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mailbox_request_service_account_link_id"),
            ["service_account_link_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_mailbox_request_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailbox_request_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mailbox_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_request_user_id"))
        batch_op.drop_index(batch_op.f("ix_mailbox_request_status"))
        batch_op.drop_index(batch_op.f("ix_mailbox_request_service_account_link_id"))
        batch_op.drop_index(batch_op.f("ix_mailbox_request_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_mailbox_request_claim"))

    op.drop_table("mailbox_request")
    with op.batch_alter_table("service_account_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_account_link_organisation_id"))

    op.drop_table("service_account_link")
    sa.Enum(name="mailbox_status").drop(op.get_bind(), checkfirst=True)
    sa.Enum(name="service_account_status").drop(op.get_bind(), checkfirst=True)
