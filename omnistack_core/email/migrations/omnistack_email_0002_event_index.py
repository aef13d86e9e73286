"""The index the operator console pages delivery events by: time received, newest first.

Built concurrently on PostgreSQL, outside a transaction, so webhooks keep arriving while it
builds.

Revision ID: omnistack_email_0002
Revises: omnistack_email_0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "omnistack_email_0002"
down_revision: str | None = "omnistack_email_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_email_webhook_events_received"),
            "email_webhook_events",
            ["received_at", "id"],
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            op.f("ix_email_webhook_events_received"),
            table_name="email_webhook_events",
            postgresql_concurrently=True,
            if_exists=True,
        )
