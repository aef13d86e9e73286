"""The sends the email module made and their status, for the operator console.

The table is new, so nothing waits on it; its indexes are still built concurrently on
PostgreSQL, outside a transaction, as every index of the library's revisions is.

Revision ID: omnistack_email_0003
Revises: omnistack_email_0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "omnistack_email_0003"
down_revision: str | None = "omnistack_email_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_email_sends_created", ["created_at", "id"]),
    ("ix_email_sends_status_created", ["status", "created_at", "id"]),
    ("ix_email_sends_message_id", ["message_id"]),
)


def upgrade() -> None:
    op.create_table(
        "email_sends",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=256), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("first_recipient", sa.String(length=330), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_sends")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_email_sends_idempotency_key")),
    )
    with op.get_context().autocommit_block():
        for name, columns in _INDEXES:
            op.create_index(
                op.f(name),
                "email_sends",
                columns,
                unique=False,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _columns in reversed(_INDEXES):
            op.drop_index(
                op.f(name),
                table_name="email_sends",
                postgresql_concurrently=True,
                if_exists=True,
            )
    op.drop_table("email_sends")
