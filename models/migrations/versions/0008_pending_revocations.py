"""pending revocations: authorizations to revoke at the aggregator, worked by a job

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_revocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("requested_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_pending_revocation_organisation_id_organisation"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_revocation")),
        sa.UniqueConstraint("sub", name=op.f("uq_pending_revocation_sub")),
    )
    with op.batch_alter_table("pending_revocation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_revocation_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pending_revocation_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_revocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_revocation_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_pending_revocation_next_attempt_at"))

    op.drop_table("pending_revocation")
