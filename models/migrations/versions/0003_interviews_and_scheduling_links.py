"""interviews and scheduling links

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduling_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("video_profile", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_scheduling_preference_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_scheduling_preference_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduling_preference")),
        sa.UniqueConstraint(
            "organisation_id", "user_id", name=op.f("uq_scheduling_preference_organisation_id")
        ),
    )
    with op.batch_alter_table("scheduling_preference", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduling_preference_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_scheduling_preference_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "scheduling_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("host_link_id", sa.Integer(), nullable=False),
        sa.Column("panel_link_ids", sa.JSON(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("window_start", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("video", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_scheduling_link_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["host_link_id"],
            ["profile_link.id"],
            name=op.f("fk_scheduling_link_host_link_id_profile_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_scheduling_link_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduling_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scheduling_link_token_hash")),
    )
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduling_link_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduling_link_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "interview",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of_id", sa.Integer(), nullable=True),
        sa.Column("host_link_id", sa.Integer(), nullable=False),
        sa.Column("panel_link_ids", sa.JSON(), nullable=False),
        sa.Column("scheduling_link_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "scheduled",
                "cancelling",
                "cancelled",
                "cancelled_in_calendar",
                "failed",
                name="interview_status",
            ),
            nullable=False,
        ),
        sa.Column("needs_notice", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_interview_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["host_link_id"],
            ["profile_link.id"],
            name=op.f("fk_interview_host_link_id_profile_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["on_behalf_of_id"],
            ["user_account.id"],
            name=op.f("fk_interview_on_behalf_of_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_interview_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scheduling_link_id"],
            ["scheduling_link.id"],
            name=op.f("fk_interview_scheduling_link_id_scheduling_link"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interview")),
        sa.UniqueConstraint("uid", name=op.f("uq_interview_uid")),
    )
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interview_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interview_host_link_id"), ["host_link_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interview_on_behalf_of_id"), ["on_behalf_of_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interview_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interview_scheduling_link_id"), ["scheduling_link_id"], unique=False
        )

    op.create_table(
        "created_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interview_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("profile_link_id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=80), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "confirmed", "deleting", "deleted", name="created_event_status"),
            nullable=False,
        ),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["interview_id"],
            ["interview.id"],
            name=op.f("fk_created_event_interview_id_interview"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["profile_link_id"],
            ["profile_link.id"],
            name=op.f("fk_created_event_profile_link_id_profile_link"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_created_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_created_event_event_id")),
    )
    with op.batch_alter_table("created_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_created_event_interview_id"), ["interview_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_created_event_profile_link_id"), ["profile_link_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("created_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_created_event_profile_link_id"))
        batch_op.drop_index(batch_op.f("ix_created_event_interview_id"))

    op.drop_table("created_event")
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interview_scheduling_link_id"))
        batch_op.drop_index(batch_op.f("ix_interview_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_interview_on_behalf_of_id"))
        batch_op.drop_index(batch_op.f("ix_interview_host_link_id"))
        batch_op.drop_index(batch_op.f("ix_interview_created_by_id"))

    op.drop_table("interview")
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduling_link_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_scheduling_link_created_by_id"))

    op.drop_table("scheduling_link")
    with op.batch_alter_table("scheduling_preference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduling_preference_user_id"))
        batch_op.drop_index(batch_op.f("ix_scheduling_preference_organisation_id"))

    op.drop_table("scheduling_preference")
    # PostgreSQL keeps enum types after their table is dropped.
    sa.Enum(name="created_event_status").drop(op.get_bind(), checkfirst=True)
    sa.Enum(name="interview_status").drop(op.get_bind(), checkfirst=True)
