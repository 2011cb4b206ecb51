"""mailbox lists: a pasted list's summary and its rejected lines, kept a day

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("service_account_link_id", sa.Integer(), nullable=False),
        sa.Column("sent_by_id", sa.Integer(), nullable=True),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_mailbox_list_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sent_by_id"],
            ["user_account.id"],
            name=op.f("fk_mailbox_list_sent_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_account_link_id"],
            ["service_account_link.id"],
            name=op.f("fk_mailbox_list_service_account_link_id_service_account_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_list")),
    )
    with op.batch_alter_table("mailbox_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailbox_list_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_mailbox_list_organisation_id"), ["organisation_id"])
        batch_op.create_index(
            batch_op.f("ix_mailbox_list_service_account_link_id"), ["service_account_link_id"]
        )
    op.create_table(
        "mailbox_list_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_list_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("entry", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_list_id"],
            ["mailbox_list.id"],
            name=op.f("fk_mailbox_list_line_mailbox_list_id_mailbox_list"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_list_line")),
    )
    with op.batch_alter_table("mailbox_list_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mailbox_list_line_mailbox_list_id"), ["mailbox_list_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_list_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_list_line_mailbox_list_id"))
    op.drop_table("mailbox_list_line")
    with op.batch_alter_table("mailbox_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_list_service_account_link_id"))
        batch_op.drop_index(batch_op.f("ix_mailbox_list_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_mailbox_list_created_at"))
    op.drop_table("mailbox_list")
