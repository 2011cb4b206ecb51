"""shadows join as trainees: a loop session may bring a shadow of its pool, and the load ledger
says who sat in as a shadow (flags only)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bring_shadow", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("interview_load", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_shadow", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("interview_load", schema=None) as batch_op:
        batch_op.drop_column("is_shadow")
    with op.batch_alter_table("loop_session", schema=None) as batch_op:
        batch_op.drop_column("bring_shadow")
