"""The app's own tables: its ``users`` and ``notes``.

The tables of the modules it installs are not here: their revisions come with omnistack-core,
a branch per module (``omnistack_auth``, ``omnistack_billing``), listed in ``alembic.ini``'s
``version_locations``. This revision starts the app's own branch, labelled ``notes``, so that
``alembic revision --head notes@head`` and ``alembic downgrade notes@-1`` can name it.

Revision ID: 0001
Revises:
Create Date: 2026-12-07 00:21:18.914328
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("notes",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply the revision."""
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notes_author_id"), "notes", ["author_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )


def downgrade() -> None:
    """Undo the revision."""
    op.drop_table("users")
    op.drop_index(op.f("ix_notes_author_id"), table_name="notes")
    op.drop_table("notes")
