"""link channel: each calendar link remembers its push channel

A signed notification was acted on for whichever link's URL it arrived at, so a body captured
from one's own channel and replayed to another organisation's link URL changed that link. The
channel id is now stored when the channel is opened, and notifications naming another channel
are ignored. Links from before keep NULL until their account's channel list at the aggregator
confirms the channel of their first notification.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_link", schema=None) as batch_op:
        batch_op.drop_column("channel_id")
