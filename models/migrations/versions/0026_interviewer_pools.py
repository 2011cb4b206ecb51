"""interviewer pools: named sets of an organisation's people with per-person limits and a
shadow flag, and the ledger of who sits on which of our own interviews (ids and its start time)
that a pool pick counts as load

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interviewer_pool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("about", sa.String(length=300), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_interviewer_pool_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_interviewer_pool_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interviewer_pool")),
        sa.UniqueConstraint(
            "organisation_id", "name", name=op.f("uq_interviewer_pool_organisation_id")
        ),
    )
    with op.batch_alter_table("interviewer_pool", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interviewer_pool_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interviewer_pool_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "pool_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("max_per_week", sa.Integer(), nullable=True),
        sa.Column("is_shadow", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_pool_member_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["interviewer_pool.id"],
            name=op.f("fk_pool_member_pool_id_interviewer_pool"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_pool_member_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_member")),
        sa.UniqueConstraint("pool_id", "user_id", name=op.f("uq_pool_member_pool_id")),
    )
    with op.batch_alter_table("pool_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pool_member_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_pool_member_pool_id"), ["pool_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pool_member_user_id"), ["user_id"], unique=False)

    op.create_table(
        "interview_load",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["interview_id"],
            ["interview.id"],
            name=op.f("fk_interview_load_interview_id_interview"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_interview_load_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["interviewer_pool.id"],
            name=op.f("fk_interview_load_pool_id_interviewer_pool"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_interview_load_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interview_load")),
        sa.UniqueConstraint("interview_id", "user_id", name=op.f("uq_interview_load_interview_id")),
    )
    with op.batch_alter_table("interview_load", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interview_load_interview_id"), ["interview_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interview_load_pool_id"), ["pool_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_interview_load_starts_at"), ["starts_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interview_load_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interview_load", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interview_load_user_id"))
        batch_op.drop_index(batch_op.f("ix_interview_load_starts_at"))
        batch_op.drop_index(batch_op.f("ix_interview_load_pool_id"))
        batch_op.drop_index(batch_op.f("ix_interview_load_interview_id"))

    op.drop_table("interview_load")
    with op.batch_alter_table("pool_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pool_member_user_id"))
        batch_op.drop_index(batch_op.f("ix_pool_member_pool_id"))
        batch_op.drop_index(batch_op.f("ix_pool_member_organisation_id"))

    op.drop_table("pool_member")
    with op.batch_alter_table("interviewer_pool", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interviewer_pool_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_interviewer_pool_created_by_id"))

    op.drop_table("interviewer_pool")
