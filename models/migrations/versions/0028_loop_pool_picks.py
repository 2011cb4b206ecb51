"""loop pool picks: a loop session may pick "any N" from an interviewer pool

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("pool_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_loop_session_pool_id"), ["pool_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_loop_session_pool_id_interviewer_pool"),
            "interviewer_pool",
            ["pool_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_loop_session_pool_id_interviewer_pool"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_loop_session_pool_id"))
        batch_op.drop_column("pool_count")
        batch_op.drop_column("pool_id")
