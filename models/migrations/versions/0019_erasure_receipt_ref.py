"""erasure receipt reference: each completed erasure's receipt gets its own unguessable page
address, so the reviewer and the IT admin can reopen it

Erasures completed before this get a reference now, so their receipts can be opened too.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_ref", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_erasure_request_receipt_ref"), ["receipt_ref"]
        )
    erasure = sa.table("erasure_request", sa.column("id", sa.Integer), sa.column("status"))
    ref = sa.table("erasure_request", sa.column("id", sa.Integer), sa.column("receipt_ref"))
    bind = op.get_bind()
    for (request_id,) in bind.execute(
        sa.select(erasure.c.id).where(erasure.c.status == "completed")
    ):
        bind.execute(
            sa.update(ref)
            .where(ref.c.id == request_id)
            .values(receipt_ref=secrets.token_urlsafe(24))
        )


def downgrade() -> None:
    with op.batch_alter_table("erasure_request", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_erasure_request_receipt_ref"), type_="unique")
        batch_op.drop_column("receipt_ref")
