"""rooms through enterprise connect: a mailbox request may be for a room, which keeps its sub

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KIND = sa.Enum("mailbox", "room", name="mailbox_kind")


def upgrade() -> None:
    KIND.create(op.get_bind(), checkfirst=True)  # add_column does not create the type itself
    with op.batch_alter_table("mailbox_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", KIND, server_default="mailbox", nullable=False))
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("resource_sub", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_mailbox_request_kind"), ["kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mailbox_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_request_kind"))
        batch_op.drop_column("resource_sub")
        batch_op.drop_column("display_name")
        batch_op.drop_column("kind")
    KIND.drop(op.get_bind(), checkfirst=True)
