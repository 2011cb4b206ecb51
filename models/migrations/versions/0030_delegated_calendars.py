"""delegated calendars: a colleague's calendar that a Business Connect user's account can see
becomes the colleague's own calendar link (no tokens), read through the owner's link

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delegated_from_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("delegated_calendar_id", sa.String(length=200), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_profile_link_delegated_from_id"), ["delegated_from_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_profile_link_delegated_from_id_profile_link"),
            "profile_link",
            ["delegated_from_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_profile_link_delegated_from_id_profile_link"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_profile_link_delegated_from_id"))
        batch_op.drop_column("delegated_calendar_id")
        batch_op.drop_column("delegated_from_id")
