"""directory people: the ``interviewer`` role, a person without a login (a mailbox linked
through Enterprise Connect, or a colleague whose calendar a Business Connect user holds)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

OLD = ("recruiter", "coordinator", "admin", "compliance")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL 12+ allows this inside the migration's transaction (the value is not used
        # before the commit). SQLite keeps the enum as VARCHAR(11), which "interviewer" fits.
        op.execute("ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'interviewer'")


def downgrade() -> None:
    # Directory people have no login and no role before this revision: they are deleted
    # (their calendar links and mailbox requests with them, by the foreign keys' cascade).
    op.execute(sa.text("DELETE FROM user_account WHERE role = 'interviewer'"))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TYPE user_role RENAME TO user_role_directory")
        sa.Enum(*OLD, name="user_role").create(bind)
        # Every column of the type (the user's role, single sign-on's default role, ...).
        columns = bind.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE udt_name = 'user_role_directory' AND table_schema = current_schema()"
            )
        ).all()
        for table, column in columns:
            op.execute(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE user_role '
                f'USING "{column}"::text::user_role'
            )
        op.execute("DROP TYPE user_role_directory")
