"""candidate reply: the candidate's answer to a Smart Invite, as the aggregator reports it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidate_reply", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.drop_column("candidate_reply")
