"""The stored Stripe events, as operators look through them: newest first, a page at a time.

Every list is a keyset page on an index of ``billing_events``: by time received
(``ix_billing_events_received``), by type then time (``ix_billing_events_type_received``), or
the unprocessed ones (``ix_billing_events_unprocessed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select

from omnistack_core.billing.tables import billing_events
from omnistack_core.db.session import Database

EventCursor = tuple[datetime, str]
"""Where a page of events ends: the last one's ``(received_at, id)``."""

Outcome = Literal["processed", "failed"]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One Stripe event as the service received and handled it.

    Attributes:
        id: Stripe's ``evt_…``.
        type: ``customer.subscription.updated``...
        created: When Stripe created it (Unix seconds).
        received_at: When this service first stored it.
        processed_at: When it was applied; None while it has only failed.
        attempts: How many times it was handled.
        last_error: The error of the last failed attempt.
        payload: The event as received (None in lists, which leave it out).
    """

    id: str
    type: str
    created: int
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    last_error: str | None
    payload: dict[str, Any] | None = None

    @property
    def outcome(self) -> Outcome:
        """``processed``, or ``failed`` while it has not been applied."""
        return "processed" if self.processed_at is not None else "failed"

    @property
    def cursor(self) -> EventCursor:
        """The cursor of a page that ends with this event."""
        return (self.received_at, self.id)


_LISTED = [
    billing_events.c.id,
    billing_events.c.type,
    billing_events.c.created,
    billing_events.c.received_at,
    billing_events.c.processed_at,
    billing_events.c.attempts,
    billing_events.c.last_error,
]


async def list_events(
    database: Database,
    *,
    after: EventCursor | None = None,
    limit: int = 50,
    event_type: str | None = None,
    outcome: Outcome | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StoredEvent]:
    """A page of stored events, newest received first, without their payloads.

    Args:
        database: The service's database.
        after: The :attr:`StoredEvent.cursor` of the previous page's last event.
        limit: At most this many.
        event_type: Only events of this type.
        outcome: Only ``processed`` ones, or only ``failed`` (not yet applied) ones.
        since: Only events received at or after this time.
        until: Only events received before this time.
    """
    table = billing_events
    query = select(*_LISTED)
    if event_type:
        query = query.where(table.c.type == event_type)
    if outcome == "processed":
        query = query.where(table.c.processed_at.is_not(None))
    elif outcome == "failed":
        query = query.where(table.c.processed_at.is_(None))
    if since is not None:
        query = query.where(table.c.received_at >= since)
    if until is not None:
        query = query.where(table.c.received_at < until)
    if after is not None:
        received, last_id = after
        query = query.where(
            or_(
                table.c.received_at < received,
                and_(table.c.received_at == received, table.c.id < last_id),
            )
        )
    query = query.order_by(table.c.received_at.desc(), table.c.id.desc()).limit(limit)
    async with database.session() as session:
        rows = (await session.execute(query)).all()
    return [StoredEvent(**row._asdict()) for row in rows]


async def get_event(database: Database, event_id: str) -> StoredEvent | None:
    """The stored event ``event_id`` with its payload, or None."""
    async with database.session() as session:
        row = (
            await session.execute(select(billing_events).where(billing_events.c.id == event_id))
        ).first()
    return None if row is None else StoredEvent(**row._asdict())
