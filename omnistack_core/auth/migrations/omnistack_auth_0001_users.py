"""The auth module's users table: one row per principal seen.

Revision ID: omnistack_auth_0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnistack_core.db.migrations import branch_options

revision: str = "omnistack_auth_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("omnistack_auth",)
depends_on: str | Sequence[str] | None = None


def _table() -> str:
    # AuthModule(users_table=...) names it: an app may have a users table of its own.
    return str(branch_options("omnistack_auth").get("users_table", "users"))


def upgrade() -> None:
    table = _table()
    op.create_table(
        table,
        sa.Column(
            "id", sa.String(length=255), nullable=False, comment="The issuer's user id (sub)"
        ),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )


def downgrade() -> None:
    op.drop_table(_table())
