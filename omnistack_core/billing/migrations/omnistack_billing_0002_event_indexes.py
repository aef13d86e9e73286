"""Indexes the operator console pages ``billing_events`` by: time received, and type then time.

Built concurrently on PostgreSQL, outside a transaction, so a busy events table keeps taking
webhooks while they build.

Revision ID: omnistack_billing_0002
Revises: omnistack_billing_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "omnistack_billing_0002"
down_revision: str | None = "omnistack_billing_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_billing_events_received"),
            "billing_events",
            ["received_at", "id"],
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            op.f("ix_billing_events_type_received"),
            "billing_events",
            ["type", "received_at", "id"],
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            op.f("ix_billing_events_type_received"),
            table_name="billing_events",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.drop_index(
            op.f("ix_billing_events_received"),
            table_name="billing_events",
            postgresql_concurrently=True,
            if_exists=True,
        )
