"""loop links: a self-scheduling link may offer a composed interview loop

Links made before this offer one interview (``loop_id`` NULL). The link goes with its loop.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("loop_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_scheduling_link_loop_id"), ["loop_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_scheduling_link_loop_id_interview_loop"),
            "interview_loop",
            ["loop_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_scheduling_link_loop_id_interview_loop"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_scheduling_link_loop_id"))
        batch_op.drop_column("loop_id")
