"""addresses per organisation: an email is unique inside an organisation, not across them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_user_account_email"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_user_account_organisation_id"), ["organisation_id", "email"]
        )
        batch_op.create_index(batch_op.f("ix_user_account_email"), ["email"], unique=False)


def downgrade() -> None:
    # Fails (as it should) while an address has accounts in more than one organisation.
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_email"))
        batch_op.drop_constraint(batch_op.f("uq_user_account_organisation_id"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_user_account_email"), ["email"])
