"""The billing module's state: customers, subscriptions, entitlements and Stripe's events.

Revision ID: omnistack_billing_0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "omnistack_billing_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("omnistack_billing",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_customers",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_billing_customers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_billing_customers_customer_id")),
    )
    op.create_table(
        "billing_subscriptions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("price_id", sa.String(length=255), nullable=True),
        sa.Column("plan", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_created", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_subscriptions")),
    )
    op.create_index(
        op.f("ix_billing_subscriptions_customer_id"),
        "billing_subscriptions",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "billing_entitlements",
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("event_created", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_billing_entitlements")),
    )
    op.create_table(
        "billing_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_events")),
    )
    op.create_index(
        "ix_billing_events_unprocessed",
        "billing_events",
        ["processed_at", "received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_billing_events_unprocessed", table_name="billing_events")
    op.drop_table("billing_events")
    op.drop_table("billing_entitlements")
    op.drop_index(op.f("ix_billing_subscriptions_customer_id"), table_name="billing_subscriptions")
    op.drop_table("billing_subscriptions")
    op.drop_table("billing_customers")
