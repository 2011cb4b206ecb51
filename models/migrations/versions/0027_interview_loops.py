"""interview loops: a loop (an onsite) and its ordered sessions, each booked as an interview

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interview_loop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum("draft", "booked", "failed", "cancelled", name="loop_state"),
            nullable=False,
        ),
        sa.Column("tzid", sa.String(length=64), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("split_days", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("max_break", sa.Integer(), nullable=True),
        sa.Column("details_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("candidate_email_hash", sa.String(length=64), nullable=False),
        sa.Column("candidate_tzid", sa.String(length=64), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_interview_loop_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_interview_loop_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interview_loop")),
        sa.UniqueConstraint("uid", name=op.f("uq_interview_loop_uid")),
    )
    with op.batch_alter_table("interview_loop", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interview_loop_candidate_email_hash"),
            ["candidate_email_hash"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_interview_loop_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interview_loop_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "loop_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loop_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("panel_link_ids", sa.JSON(), nullable=False),
        sa.Column("room_email", sa.String(length=320), nullable=True),
        sa.Column("video", sa.Boolean(), nullable=False),
        sa.Column("buffer_before", sa.Integer(), nullable=False),
        sa.Column("buffer_after", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["interview_id"],
            ["interview.id"],
            name=op.f("fk_loop_session_interview_id_interview"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["interview_loop.id"],
            name=op.f("fk_loop_session_loop_id_interview_loop"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_session")),
        sa.UniqueConstraint("interview_id", name=op.f("uq_loop_session_interview_id")),
        sa.UniqueConstraint("loop_id", "ordinal", name=op.f("uq_loop_session_loop_id")),
    )
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loop_session_loop_id"), ["loop_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loop_session_loop_id"))

    op.drop_table("loop_session")
    with op.batch_alter_table("interview_loop", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interview_loop_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_interview_loop_created_by_id"))
        batch_op.drop_index(batch_op.f("ix_interview_loop_candidate_email_hash"))

    op.drop_table("interview_loop")
    sa.Enum(name="loop_state").drop(op.get_bind(), checkfirst=True)
