"""candidate changes: per self-scheduling link, whether the candidate may reschedule or cancel
what they booked, and up to how many hours before the interview

Links made before this allow no changes (as before); the cut-off defaults to 24 hours.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "candidate_may_change", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "change_cutoff_hours", sa.Integer(), server_default=sa.text("24"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.drop_column("change_cutoff_hours")
        batch_op.drop_column("candidate_may_change")
