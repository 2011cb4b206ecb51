"""link attention: why a calendar link needs attention, so a profile the aggregator reports
connected again can recover by itself while a refused authorization waits for the person

Links already needing attention get no reason: they are checked once like a disconnected
profile, which settles them either way.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ATTENTION = sa.Enum("profile_disconnected", "reconnect", name="link_attention")


def upgrade() -> None:
    ATTENTION.create(op.get_bind(), checkfirst=True)  # add_column does not create the type itself
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention", ATTENTION, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.drop_column("attention")
    ATTENTION.drop(op.get_bind(), checkfirst=True)
