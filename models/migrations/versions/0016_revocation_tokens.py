"""revocation tokens: a queued revocation may carry its (encrypted) refresh token, and may be
given up on until an admin looks

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_revocation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refresh_token", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("refused_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_revocation", schema=None) as batch_op:
        batch_op.drop_column("refused_at")
        batch_op.drop_column("key_id")
        batch_op.drop_column("refresh_token")
