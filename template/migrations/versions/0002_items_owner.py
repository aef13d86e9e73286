"""Items belong to the user who created them: items.owner_id, indexed.

A revision of its own rather than an edit of 0001_initial, so a service generated before
items had owners gets the column from `copier update` and `omnistack db upgrade`. Items
created before it have no owner: no signed-in user sees them until one is given.

Revision ID: 0002_items_owner
Revises: 0001_initial
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_items_owner"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("items", sa.Column("owner_id", sa.String(length=255), nullable=True))
    # CONCURRENTLY, outside the migration's transaction: a plain CREATE INDEX would block
    # every write to a deployed service's items while it builds.
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_items_owner_id"),
            "items",
            ["owner_id"],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(op.f("ix_items_owner_id"), table_name="items", postgresql_concurrently=True)
    op.drop_column("items", "owner_id")
