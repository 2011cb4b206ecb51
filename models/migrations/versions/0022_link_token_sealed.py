"""self-scheduling link: its token kept encrypted (AES-GCM) on the row while the link is open,
so the recruiter can copy the link again from their list

Links made before this have none: their list row offers no copy.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.drop_column("token_sealed")
