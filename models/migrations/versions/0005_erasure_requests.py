"""erasure requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("future_interviews", sa.String(length=8), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_erasure_request_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_request")),
    )
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_erasure_request_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_erasure_request_person_id"), ["person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_request_person_id"))
        batch_op.drop_index(batch_op.f("ix_erasure_request_organisation_id"))

    op.drop_table("erasure_request")
