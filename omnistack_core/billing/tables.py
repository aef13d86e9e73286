"""The billing module's tables, in :data:`billing_metadata`.

* ``billing_customers``: one Stripe customer per user, created once and reused.
* ``billing_subscriptions``: Stripe's subscriptions as last seen, each stamped with the
  ``created`` time of the event (or fetch) that wrote it, so an older event never overwrites
  newer state.
* ``billing_entitlements``: each customer's active Stripe Entitlements features.
* ``billing_events``: every webhook event received, by Stripe's id; a processed event is
  never applied again, and a failed one keeps its payload and error for ``billing replay``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from omnistack_core.db import new_metadata

billing_metadata = new_metadata()
"""The billing module's tables, for migrations."""

billing_customers = Table(
    "billing_customers",
    billing_metadata,
    Column("user_id", String(255), primary_key=True, doc="The auth provider's user id (sub)."),
    Column("customer_id", String(255), nullable=False, unique=True, doc="Stripe's cus_…"),
    Column("email", String(320), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

billing_subscriptions = Table(
    "billing_subscriptions",
    billing_metadata,
    Column("id", String(255), primary_key=True, doc="Stripe's sub_…"),
    Column("customer_id", String(255), nullable=False, index=True),
    Column("status", String(32), nullable=False, doc="Stripe's status: active, trialing…"),
    Column("price_id", String(255), nullable=True),
    Column("plan", String(64), nullable=True, doc="The plan its price belongs to, if any."),
    Column("quantity", Integer, nullable=False),
    Column("current_period_end", DateTime(timezone=True), nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=False),
    Column("trial_end", DateTime(timezone=True), nullable=True),
    Column(
        "event_created",
        BigInteger,
        nullable=False,
        doc="Unix time of the event (or fetch) whose state this row holds.",
    ),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

billing_entitlements = Table(
    "billing_entitlements",
    billing_metadata,
    Column("customer_id", String(255), primary_key=True),
    Column("features", JSON, nullable=False, doc="Active features' lookup keys."),
    Column("event_created", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

billing_events = Table(
    "billing_events",
    billing_metadata,
    Column("id", String(255), primary_key=True, doc="Stripe's evt_…"),
    Column("type", String(100), nullable=False),
    Column("created", BigInteger, nullable=False, doc="The event's Unix time at Stripe."),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("payload", JSON, nullable=False),
    # ``billing replay`` looks for events that were not processed.
    Index("ix_billing_events_unprocessed", "processed_at", "received_at"),
    # The console pages through events newest first, of every type or of one.
    Index("ix_billing_events_received", "received_at", "id"),
    Index("ix_billing_events_type_received", "type", "received_at", "id"),
)
