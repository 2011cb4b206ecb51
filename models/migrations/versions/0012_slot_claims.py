"""slot claims: no double booking, whatever the path or process

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["interview_id"],
            ["interview.id"],
            name=op.f("fk_slot_claim_interview_id_interview"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_slot_claim_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_claim")),
        sa.UniqueConstraint(
            "organisation_id", "sub", "bucket_start", name=op.f("uq_slot_claim_organisation_id")
        ),
    )
    with op.batch_alter_table("slot_claim", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slot_claim_interview_id"), ["interview_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("slot_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slot_claim_interview_id"))

    op.drop_table("slot_claim")
