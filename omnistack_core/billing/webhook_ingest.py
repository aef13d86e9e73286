"""Stripe events applied exactly once: recorded by id in the same transaction as their effects.

One statement claims an event: it inserts the ``billing_events`` row already marked
processed, or, when the row exists unprocessed (an earlier attempt failed), takes it over; a
row already processed is left alone and the delivery is a duplicate. On PostgreSQL a second
delivery racing the first waits on the row until the first commits, then sees it processed.
The built-in handlers and the app's then run in that transaction: if any raises, all of it
rolls back, a second transaction records the attempt and the error, and the 5xx answer makes
Stripe deliver the event again (``omnistack billing replay`` can re-run it sooner).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.billing.event_log import (
    EventCursor,
    Outcome,
    StoredEvent,
    get_event,
    list_events,
)
from omnistack_core.billing.metrics import count_webhook_event
from omnistack_core.billing.stripe_billing import StripeBilling
from omnistack_core.billing.subscriptions import (
    customer_of_user,
    link_customer,
    storable,
    subscription_from_stripe,
    write_entitlements,
    write_subscription,
)
from omnistack_core.billing.tables import billing_events
from omnistack_core.billing.webhook_signature import StripeEvent, event_from_payload
from omnistack_core.db.upsert import Upsert

logger = logging.getLogger("omnistack.billing")

BillingEventHandler = Callable[[StripeEvent, AsyncSession], Awaitable[None]]
"""An app's handler: ``async def on_invoice_paid(event, session)``. The session's
transaction also records the event as processed; raise to roll both back and have Stripe
deliver the event again."""

IngestOutcome = Literal["processed", "duplicate"]

_MAX_ERROR_CHARS = 2000
_ID_CHARS = 255
_EMAIL_CHARS = 320
_SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
    }
)
_INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_failed"})
_ENTITLEMENTS_EVENT = "entitlements.active_entitlement_summary.updated"


WEBHOOKS = "billing.webhooks"
"""The name the billing module provides its :class:`WebhookIngest` under."""


class WebhookIngest:
    """Applies verified Stripe events once; provided by the billing module while the app runs.

    Args:
        billing: The service's billing (its database, plans and Stripe client).
        handlers: The app's handlers by event type; ``"*"`` receives every event.
    """

    def __init__(
        self,
        billing: StripeBilling,
        handlers: Mapping[str, Sequence[BillingEventHandler]] | None = None,
    ) -> None:
        self.billing = billing
        self.handlers = {kind: list(found) for kind, found in (handlers or {}).items()}

    async def ingest(self, event: StripeEvent) -> IngestOutcome:
        """Apply ``event`` unless it was applied before.

        Raises:
            Exception: Whatever a handler raised, after the attempt was recorded.
        """
        try:
            async with self.billing.database.session() as session:
                if not await self._claim(session, event):
                    count_webhook_event(event.type, "duplicate")
                    return "duplicate"
                await self._apply(event, session)
        except Exception as exc:
            await self._record_failure(event, exc)
            count_webhook_event(event.type, "failed")
            logger.exception("Stripe event %s (%s) failed", event.id, event.type)
            raise
        count_webhook_event(event.type, "processed")
        return "processed"

    async def replay_failed(self, *, limit: int = 100) -> tuple[int, int]:
        """Run again the stored events that were never processed, oldest first.

        Returns:
            How many were processed and how many failed again.
        """
        table = billing_events
        async with self.billing.database.session() as session:
            payloads = list(
                await session.scalars(
                    select(table.c.payload)
                    .where(table.c.processed_at.is_(None))
                    .order_by(table.c.created, table.c.received_at)
                    .limit(limit)
                )
            )
        processed = failed = 0
        for payload in payloads:
            try:
                await self.ingest(event_from_payload(payload))
            except Exception:  # noqa: BLE001 - logged by ingest; the next event is still replayed
                failed += 1
            else:
                processed += 1
        return processed, failed

    async def replay(self, event_id: str) -> IngestOutcome | None:
        """Run the stored event ``event_id`` again through the webhook's path.

        Returns:
            ``processed``; ``duplicate`` when it had been processed already; None when no
            such event is stored.

        Raises:
            Exception: Whatever a handler raised, after the attempt was recorded.
        """
        stored = await get_event(self.billing.database, event_id)
        if stored is None or stored.payload is None:
            return None
        return await self.ingest(event_from_payload(stored.payload))

    async def events(
        self,
        *,
        after: EventCursor | None = None,
        limit: int = 50,
        event_type: str | None = None,
        outcome: Outcome | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[StoredEvent]:
        """A page of the stored events, newest first (see :func:`list_events`)."""
        return await list_events(
            self.billing.database,
            after=after,
            limit=limit,
            event_type=event_type,
            outcome=outcome,
            since=since,
            until=until,
        )

    async def event(self, event_id: str) -> StoredEvent | None:
        """The stored event ``event_id`` with its payload, or None."""
        return await get_event(self.billing.database, event_id)

    async def _claim(self, session: AsyncSession, event: StripeEvent) -> bool:
        now = datetime.now(UTC)
        return await _claim_event(session, _event_row(event, processed_at=now, error=None))

    async def _apply(self, event: StripeEvent, session: AsyncSession) -> None:
        if event.type in _SUBSCRIPTION_EVENTS:
            await self._subscription_changed(event, session)
        elif event.type == "checkout.session.completed":
            await self._checkout_completed(event, session)
        elif event.type in _INVOICE_EVENTS:
            await self._invoice_settled(event, session)
        elif event.type == _ENTITLEMENTS_EVENT:
            await self._entitlements_changed(event, session)
        for handler in (*self.handlers.get(event.type, ()), *self.handlers.get("*", ())):
            await handler(event, session)

    async def _subscription_changed(self, event: StripeEvent, session: AsyncSession) -> None:
        obj = event.object
        subscription = subscription_from_stripe(obj, self.billing.plans)
        metadata = obj.get("metadata") or {}
        if (
            event.type == "customer.subscription.created"
            and isinstance(metadata, Mapping)
            and _fits(metadata.get("user_id"), _ID_CHARS)
        ):
            # Set by our Checkout: links the customer even if checkout.session.completed is
            # late or lost. (Later events of the subscription find the link made.)
            await link_customer(session, str(metadata["user_id"]), subscription.customer_id)
        if await write_subscription(session, subscription, event.created) == "tie":
            await self._store_current(subscription.id, event.created, session)

    async def _checkout_completed(self, event: StripeEvent, session: AsyncSession) -> None:
        obj = event.object
        if obj.get("mode") != "subscription":
            return
        customer_id = _id(obj.get("customer"))
        metadata = obj.get("metadata") or {}
        user_id = obj.get("client_reference_id") or (
            metadata.get("user_id") if isinstance(metadata, Mapping) else None
        )
        if user_id and customer_id and _fits(user_id, _ID_CHARS):
            details = obj.get("customer_details") or {}
            email = details.get("email") if isinstance(details, Mapping) else None
            # The address is a convenience: one the column cannot hold is left out.
            email = email if _fits(email, _EMAIL_CHARS) else None
            customer_id = storable(customer_id, "the customer's id")
            if not await link_customer(session, str(user_id), customer_id, email):
                existing = await customer_of_user(session, str(user_id))
                if existing != customer_id:
                    logger.warning(
                        "Checkout %s paid as customer %s, but user %s is customer %s",
                        obj.get("id"),
                        customer_id,
                        user_id,
                        existing,
                    )
        subscription_id = _id(obj.get("subscription"))
        if subscription_id:
            # The session carries only the id; fetching it shows the new subscription at
            # once, whenever customer.subscription.created arrives.
            await self._store_current(subscription_id, event.created, session)

    async def _invoice_settled(self, event: StripeEvent, session: AsyncSession) -> None:
        obj = event.object
        parent = obj.get("parent") or {}
        details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
        subscription_id = _id(
            details.get("subscription") if isinstance(details, Mapping) else None
        ) or _id(obj.get("subscription"))  # the field before API version 2025-03-31
        if subscription_id:
            # Paying or failing moves the subscription's status (past_due, active): take it
            # from Stripe rather than guess.
            await self._store_current(subscription_id, event.created, session)

    async def _entitlements_changed(self, event: StripeEvent, session: AsyncSession) -> None:
        obj = event.object
        customer_id = _id(obj.get("customer"))
        if not customer_id:
            return
        customer_id = storable(customer_id, "the customer's id")
        entitlements = obj.get("entitlements") or {}
        data = entitlements.get("data") if isinstance(entitlements, Mapping) else None
        features = [str(item["lookup_key"]) for item in data or () if item.get("lookup_key")]
        outcome = await write_entitlements(session, customer_id, features, event.created)
        if outcome == "tie":
            current = await self.billing.api.list_active_entitlements(customer_id)
            await write_entitlements(session, customer_id, current, event.created, fetched=True)

    async def _store_current(
        self, subscription_id: str, created: int, session: AsyncSession
    ) -> None:
        fresh = await self.billing.api.retrieve_subscription(subscription_id)
        subscription = subscription_from_stripe(fresh, self.billing.plans)
        await write_subscription(session, subscription, created, fetched=True)

    async def _record_failure(self, event: StripeEvent, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
        try:
            async with self.billing.database.session() as session:
                await _record_attempt(session, _event_row(event, processed_at=None, error=error))
        except Exception:
            # The event is not lost: Stripe delivers it again after the 5xx.
            logger.exception("Could not record the failure of Stripe event %s", event.id)


def _event_row(
    event: StripeEvent, *, processed_at: datetime | None, error: str | None
) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "created": event.created,
        "received_at": datetime.now(UTC),
        "processed_at": processed_at,
        "attempts": 1,
        "last_error": error,
        "payload": dict(event.payload),
    }


# Inserts the event already processed, or takes over a row left unprocessed by a failed
# attempt; a processed row is left alone (no row returned: a duplicate).
_claim_event = Upsert(
    billing_events,
    key=["id"],
    update=["processed_at", "last_error"],
    update_expressions={"attempts": billing_events.c.attempts + 1},
    where=lambda _new: billing_events.c.processed_at.is_(None),
)
# Records a failed attempt and its error, unless another delivery processed the event since.
_record_attempt = Upsert(
    billing_events,
    key=["id"],
    update=["last_error"],
    update_expressions={"attempts": billing_events.c.attempts + 1},
    where=lambda _new: billing_events.c.processed_at.is_(None),
)


def _fits(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def _id(value: Any) -> str | None:
    # A field holding an id, or the object expanded in its place.
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None
