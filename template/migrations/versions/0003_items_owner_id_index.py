"""A user's items are listed a page at a time: index items on (owner_id, id).

The list route reads ``WHERE owner_id = ? AND id < ? ORDER BY id DESC LIMIT n``. On
``ix_items_owner_id`` alone Postgres fetches every item of the owner and sorts them for each
page; on (owner_id, id) it reads the page's rows in order and stops. The new index serves
every query the old one did, so the old one goes.

Revision ID: 0003_items_owner_id_index
Revises: 0002_items_owner
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_items_owner_id_index"
down_revision: str | None = "0002_items_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # CONCURRENTLY, outside the migration's transaction: a plain CREATE INDEX would block
    # every write to a deployed service's items while it builds. The new index is in place
    # before the old one goes, so the running release never lists without one.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_items_owner_id_id",
            "items",
            ["owner_id", "id"],
            unique=False,
            postgresql_concurrently=True,
        )
        op.drop_index("ix_items_owner_id", table_name="items", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_items_owner_id",
            "items",
            ["owner_id"],
            unique=False,
            postgresql_concurrently=True,
        )
        op.drop_index("ix_items_owner_id_id", table_name="items", postgresql_concurrently=True)
