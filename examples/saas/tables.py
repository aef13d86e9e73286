"""The service's own table; the modules bring theirs (``users``, ``billing_*``...)."""

from sqlalchemy import Column, DateTime, String, Table

from omnistack_core.db import new_metadata

metadata = new_metadata()

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(255), primary_key=True, doc="The auth provider's user id (sub)."),
    Column("name", String(100), nullable=False, doc="What emails call the customer."),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
