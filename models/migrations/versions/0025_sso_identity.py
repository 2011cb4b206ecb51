"""sso identity: an account signed in through single sign-on keeps the provider's issuer and
subject (OpenID Connect ``sub``), so later sign-ins are matched by them rather than by address

Accounts that signed in before this are bound on their next sign-in (by verified address).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sso_issuer", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("sso_sub", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(
            "uq_user_account_sso_identity", ["organisation_id", "sso_issuer", "sso_sub"]
        )


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_constraint("uq_user_account_sso_identity", type_="unique")
        batch_op.drop_column("sso_sub")
        batch_op.drop_column("sso_issuer")
