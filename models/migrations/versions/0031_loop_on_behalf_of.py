"""loops for coordinators: the assigned hiring manager a coordinator composed a loop for (its
sessions are written to that manager's calendar)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interview_loop", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_behalf_of_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_interview_loop_on_behalf_of_id"), ["on_behalf_of_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_interview_loop_on_behalf_of_id_user_account"),
            "user_account",
            ["on_behalf_of_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("interview_loop", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_interview_loop_on_behalf_of_id_user_account"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_interview_loop_on_behalf_of_id"))
        batch_op.drop_column("on_behalf_of_id")
