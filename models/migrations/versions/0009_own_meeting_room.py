"""own meeting room: a person may save a meeting-room link (e.g. Webex) sent as explicit
conferencing, and is told when a chosen video account stopped working

Webex was offered as a conferencing service the aggregator provisions, but the aggregator knows
only Zoom, GoTo and Microsoft Teams. A preference naming such a profile stores only its id, so
nothing here can tell it apart: such a preference falls back to the calendar's own video when
it is refused (``video_fallback_at`` records that, and the preferences page says so), and the
person can save their Webex room link instead.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduling_preference", schema=None) as batch_op:
        batch_op.add_column(sa.Column("video_room_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("video_room_name", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("video_fallback_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # The older code knows no meeting-room link: such a choice becomes the default again.
    op.execute(
        "UPDATE scheduling_preference SET video_profile = NULL WHERE video_profile = 'explicit'"
    )
    with op.batch_alter_table("scheduling_preference", schema=None) as batch_op:
        batch_op.drop_column("video_fallback_at")
        batch_op.drop_column("video_room_name")
        batch_op.drop_column("video_room_url")
