"""unsigned callbacks: count of mailbox callbacks accepted without a signature, per domain

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_account_link", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unsigned_callbacks", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("service_account_link", schema=None) as batch_op:
        batch_op.drop_column("unsigned_callbacks")
