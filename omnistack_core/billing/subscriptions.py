"""Subscription and entitlement state: read from Stripe's objects, stored in order, queried.

Stripe sends events out of order and may deliver one twice. Each stored row carries the
``created`` time of the event (or fetch) whose state it holds, and a write with an older
time changes nothing. Stripe's times are whole seconds, so two events of one second tie:
the caller then fetches the object from Stripe and stores what it says now.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.billing.plans import Plan
from omnistack_core.billing.tables import (
    billing_customers,
    billing_entitlements,
    billing_subscriptions,
)
from omnistack_core.db.upsert import Upsert, insert_ignoring_duplicate
from omnistack_core.validation import INT32_MAX

ACTIVE_STATUSES = ("active", "trialing")
"""Statuses that grant access by default. ``past_due`` keeps access in Stripe's own retry
window only if an app asks for it with ``require_subscription(statuses=...)``."""

WriteOutcome = Literal["written", "older", "tie"]
"""What a write of event state did: stored it, ignored it for newer state, or found state of
the same second (fetch the object and write that)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as the service last heard from Stripe.

    Attributes:
        id: Stripe's ``sub_…``.
        customer_id: Stripe's ``cus_…``.
        status: ``active``, ``trialing``, ``past_due``, ``canceled``, ``unpaid``,
            ``incomplete``, ``incomplete_expired`` or ``paused``.
        plan: The plan whose price it is on, or None for a price no plan names.
        price_id: The price of its (first) item.
        quantity: Seats, or 1.
        current_period_end: When the period paid for ends.
        cancel_at_period_end: Whether it ends then instead of renewing.
        trial_end: When its trial ends, if it has one.
    """

    id: str
    customer_id: str
    status: str
    plan: str | None
    price_id: str | None
    quantity: int
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None

    @property
    def active(self) -> bool:
        """Whether its status grants access by default (active or trialing)."""
        return self.status in ACTIVE_STATUSES


def subscription_from_stripe(obj: Mapping[str, Any], plans: Mapping[str, Plan]) -> Subscription:
    """The :class:`Subscription` of a Stripe subscription object (an event's or fetched).

    Reads both shapes Stripe has used: the current one, with the billing period on each item,
    and the older one (API versions before 2025-03-31), with it on the subscription. A webhook
    endpoint sends the shape of the API version it was created with.
    """
    items = obj.get("items")
    item_list = items.get("data") if isinstance(items, Mapping) else None
    first: Mapping[str, Any] = item_list[0] if item_list else {}
    price = first.get("price") or obj.get("plan") or {}
    price_id = price.get("id") if isinstance(price, Mapping) else price
    period_end = obj.get("current_period_end")
    if period_end is None and item_list:
        ends = [item.get("current_period_end") for item in item_list]
        period_end = max((end for end in ends if isinstance(end, int)), default=None)
    quantity = int(first.get("quantity") or obj.get("quantity") or 1)
    if not 0 <= quantity <= INT32_MAX:
        raise ValueError(f"the quantity {quantity} does not fit its column")
    return Subscription(
        id=storable(obj["id"], "the subscription's id"),
        customer_id=storable(_object_id(obj.get("customer")), "the customer's id"),
        status=storable(obj.get("status") or "incomplete", "the status", 32),
        plan=plan_of_price(plans, price_id),
        price_id=storable(price_id, "the price's id") if price_id else None,
        quantity=quantity,
        current_period_end=_time(period_end),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        trial_end=_time(obj.get("trial_end")),
    )


def storable(value: object, what: str, limit: int = 255) -> str:
    """``value`` as text its column stores (``limit`` characters, no NUL).

    Stripe's ids and statuses always fit; a signed event that does not is refused here,
    by name, rather than by the database.

    Raises:
        ValueError: The text is longer than ``limit`` or holds a NUL character.
    """
    text = str(value)
    if len(text) > limit or "\x00" in text:
        raise ValueError(f"{what} does not fit its column ({len(text)} characters)")
    return text


def plan_of_price(plans: Mapping[str, Plan], price_id: object) -> str | None:
    """The name of the plan sold at ``price_id``, or None."""
    return next((plan.name for plan in plans.values() if plan.price == price_id), None)


async def write_subscription(
    session: AsyncSession, subscription: Subscription, created: int, *, fetched: bool = False
) -> WriteOutcome:
    """Store ``subscription`` unless newer state is stored.

    Args:
        session: The transaction the write joins.
        subscription: The state to store.
        created: Unix time of the event that carried it, or of the fetch.
        fetched: The state was just fetched from Stripe: it wins over stored state of the
            same second.
    """
    table = billing_subscriptions
    values = {
        "id": subscription.id,
        "customer_id": subscription.customer_id,
        "status": subscription.status,
        "price_id": subscription.price_id,
        "plan": subscription.plan,
        "quantity": subscription.quantity,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "trial_end": subscription.trial_end,
        "event_created": created,
        "updated_at": datetime.now(UTC),
    }
    return await _write_ordered(session, table, "id", values, fetched=fetched)


async def write_entitlements(
    session: AsyncSession,
    customer_id: str,
    features: Sequence[str],
    created: int,
    *,
    fetched: bool = False,
) -> WriteOutcome:
    """Store a customer's active features unless a newer summary is stored."""
    table = billing_entitlements
    values = {
        "customer_id": customer_id,
        "features": sorted(set(features)),
        "event_created": created,
        "updated_at": datetime.now(UTC),
    }
    return await _write_ordered(session, table, "customer_id", values, fetched=fetched)


async def link_customer(
    session: AsyncSession, user_id: str, customer_id: str, email: str | None = None
) -> bool:
    """Record ``customer_id`` as the customer of ``user_id``, unless the user has one.

    Returns:
        Whether it was recorded (False: the user already had a customer, maybe another).
    """
    return await insert_ignoring_duplicate(
        session,
        billing_customers,
        {
            "user_id": user_id,
            "customer_id": customer_id,
            "email": email,
            "created_at": datetime.now(UTC),
        },
    )


async def customer_of_user(session: AsyncSession, user_id: str) -> str | None:
    """The Stripe customer id of ``user_id``, or None before their first checkout."""
    return await session.scalar(
        select(billing_customers.c.customer_id).where(billing_customers.c.user_id == user_id)
    )


async def subscriptions_of_user(session: AsyncSession, user_id: str) -> list[Subscription]:
    """The user's subscriptions, those granting access first, then the latest-ending."""
    table = billing_subscriptions
    rows = await session.execute(
        select(table)
        .join(billing_customers, billing_customers.c.customer_id == table.c.customer_id)
        .where(billing_customers.c.user_id == user_id)
    )
    subscriptions = [
        Subscription(
            id=row.id,
            customer_id=row.customer_id,
            status=row.status,
            plan=row.plan,
            price_id=row.price_id,
            quantity=row.quantity,
            current_period_end=_aware(row.current_period_end),
            cancel_at_period_end=row.cancel_at_period_end,
            trial_end=_aware(row.trial_end),
        )
        for row in rows
    ]
    subscriptions.sort(
        key=lambda s: (s.active, s.current_period_end or datetime.min.replace(tzinfo=UTC)),
        reverse=True,
    )
    return subscriptions


async def features_of_user(session: AsyncSession, user_id: str) -> frozenset[str]:
    """The lookup keys of the user's active Stripe Entitlements features."""
    features = await session.scalar(
        select(billing_entitlements.c.features)
        .join(
            billing_customers,
            billing_customers.c.customer_id == billing_entitlements.c.customer_id,
        )
        .where(billing_customers.c.user_id == user_id)
    )
    return frozenset(features or ())


def granting(
    subscriptions: Sequence[Subscription],
    *,
    plans: Collection[str] | None = None,
    statuses: Collection[str] = ACTIVE_STATUSES,
) -> Subscription | None:
    """The first subscription in one of ``statuses`` and, when given, one of ``plans``."""
    for subscription in subscriptions:
        if subscription.status in statuses and (plans is None or subscription.plan in plans):
            return subscription
    return None


def _ordered_upsert(table: Table, key: str, *, fetched: bool) -> Upsert:
    def newer(new: Any) -> Any:
        if fetched:
            return table.c.event_created <= new.event_created
        return table.c.event_created < new.event_created

    update = [column.name for column in table.c if column.name != key]
    return Upsert(table, key=[key], update=update, where=newer)


_ORDERED_WRITES = {
    (table.name, fetched): _ordered_upsert(table, key, fetched=fetched)
    for table, key in ((billing_subscriptions, "id"), (billing_entitlements, "customer_id"))
    for fetched in (False, True)
}


async def _write_ordered(
    session: AsyncSession, table: Table, key: str, values: dict[str, Any], *, fetched: bool
) -> WriteOutcome:
    if await _ORDERED_WRITES[table.name, fetched](session, values):
        return "written"
    stored = await session.scalar(select(table.c.event_created).where(table.c[key] == values[key]))
    return "tie" if stored == values["event_created"] and not fetched else "older"


def _object_id(value: object) -> str:
    # An expanded object (``{"id": "cus_…", …}``) or its id.
    if isinstance(value, Mapping):
        return str(value.get("id"))
    return str(value)


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
