"""self-scheduling link: the candidate's name, email and the interview title kept encrypted
(AES-GCM) on the link's row, and a SHA-256 of the candidate's address for compliance lookups

Links made before this have neither: the recruiter's list shows them without a name.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidate_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("candidate_email_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_scheduling_link_candidate_email_hash"),
            ["candidate_email_hash"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduling_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduling_link_candidate_email_hash"))
        batch_op.drop_column("candidate_email_hash")
        batch_op.drop_column("candidate_sealed")
