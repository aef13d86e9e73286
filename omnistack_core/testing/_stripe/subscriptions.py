"""Subscriptions: ``/v1/subscriptions``, the subscriptions Checkout starts, what happens to them."""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime
from typing import Any

from omnistack_core.testing._stripe.endpoints import Call, list_object, page, retrieve
from omnistack_core.testing._stripe.errors import StripeError, no_such
from omnistack_core.testing._stripe.events import emit
from omnistack_core.testing._stripe.invoices import Invoices
from omnistack_core.testing._stripe.params import optional_enum, optional_string, refuse_unknown
from omnistack_core.testing._stripe.prices import plan
from omnistack_core.testing._stripe.state import DAY, StripeState, existing, new_id

_SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
# The top-level parameters each endpoint takes in this API version (from Stripe's OpenAPI
# spec); any other one is refused with ``parameter_unknown``, as Stripe does.
_SUBSCRIPTION_LIST = frozenset(
    {
        "automatic_tax",
        "collection_method",
        "created",
        "current_period_end",
        "current_period_start",
        "customer",
        "customer_account",
        "ending_before",
        "expand",
        "limit",
        "plan",
        "price",
        "starting_after",
        "status",
        "test_clock",
    }
)
_SUBSCRIPTION_CANCEL = frozenset({"cancellation_details", "expand", "invoice_now", "prorate"})


class Subscriptions:
    """The subscriptions, over the server's ``subscriptions``; their invoices by ``invoices``."""

    def __init__(self, state: StripeState, invoices: Invoices) -> None:
        self._state = state
        self._invoices = invoices

    # Endpoints ------------------------------------------------------------------------------

    def list_matching(self, call: Call, _: str) -> dict[str, Any]:
        """``GET /v1/subscriptions``, filtered by ``customer``, ``price`` and ``status``."""
        params = call.params
        refuse_unknown(params, _SUBSCRIPTION_LIST)
        status = optional_enum(params, "status", _SUBSCRIPTION_STATUSES)
        customer_id = optional_string(params, "customer")
        price_id = optional_string(params, "price")
        found = []
        for subscription in reversed(self._state.subscriptions.values()):
            current = subscription["status"]
            if status is None and current in ("canceled", "incomplete_expired"):
                continue
            if status == "ended" and current not in ("canceled", "incomplete_expired"):
                continue
            if status not in (None, "all", "ended") and current != status:
                continue
            if customer_id is not None and subscription["customer"] != customer_id:
                continue
            prices = {item["price"]["id"] for item in subscription["items"]["data"]}
            if price_id is not None and price_id not in prices:
                continue
            found.append(subscription)
        return page(params, found, "subscription", "/v1/subscriptions")

    def retrieve(self, call: Call, subscription_id: str) -> dict[str, Any]:
        """``GET /v1/subscriptions/{id}``."""
        return retrieve(call, self._state.subscriptions, subscription_id, "subscription")

    def delete(self, call: Call, subscription_id: str) -> dict[str, Any]:
        """``DELETE /v1/subscriptions/{id}``: it ends now, and says so in an event."""
        refuse_unknown(call.params, _SUBSCRIPTION_CANCEL)
        subscription = self._state.subscriptions.get(subscription_id)
        if subscription is None:
            raise no_such("subscription", subscription_id, "id", status=404)
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        self._cancel(subscription)
        emit(
            self._state,
            "customer.subscription.deleted",
            subscription,
            request={"id": call.request_id, "idempotency_key": call.idempotency_key},
        )
        return copy.deepcopy(subscription)

    # Simulations ----------------------------------------------------------------------------

    def update(self, subscription_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes``: ``customer.subscription.updated`` (see ``update_subscription``)."""
        subscription = existing(self._state.subscriptions, subscription_id, "subscription")
        before = copy.deepcopy(subscription)
        for name, value in changes.items():
            self._apply(subscription, name, value)
        previous = {
            name: before[name]
            for name in subscription
            if name in before and before[name] != subscription[name]
        }
        return emit(
            self._state,
            "customer.subscription.updated",
            subscription,
            previous_attributes=previous,
        )

    def cancel(self, subscription_id: str) -> dict[str, Any]:
        """End it now: ``customer.subscription.deleted``."""
        subscription = existing(self._state.subscriptions, subscription_id, "subscription")
        self._cancel(subscription)
        return emit(self._state, "customer.subscription.deleted", subscription)

    def fail_payment(self, subscription_id: str) -> list[dict[str, Any]]:
        """A renewal payment fails: ``[invoice.payment_failed, customer.subscription.updated]``."""
        subscription = existing(self._state.subscriptions, subscription_id, "subscription")
        before = {
            "latest_invoice": subscription["latest_invoice"],
            "status": subscription["status"],
        }
        invoice = self._invoices.create(
            subscription, billing_reason="subscription_cycle", paid=False
        )
        subscription["latest_invoice"] = invoice["id"]
        subscription["status"] = "past_due"
        previous = {name: old for name, old in before.items() if subscription[name] != old}
        return [
            emit(self._state, "invoice.payment_failed", invoice),
            emit(
                self._state,
                "customer.subscription.updated",
                subscription,
                previous_attributes=previous,
            ),
        ]

    def subscribe(
        self,
        customer_id: str,
        items: list[tuple[str, int]],
        *,
        metadata: dict[str, str],
        trial_days: int | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new subscription to ``items`` (price ids, quantities), and its first invoice, paid."""
        now = self._state.now()
        subscription_id = new_id("sub_")
        trial_end = None if trial_days is None else now + trial_days * DAY
        subscription_items = []
        for price_id, quantity in items:
            price = self._state.prices[price_id]
            recurring = price["recurring"]
            period_end = trial_end or _add_interval(
                now, recurring["interval"], recurring["interval_count"]
            )
            subscription_items.append(
                self._subscription_item(subscription_id, price, quantity, now, period_end)
            )
        first_price = self._state.prices[items[0][0]]
        subscription: dict[str, Any] = {
            "id": subscription_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": trial_end or now,
            "billing_cycle_anchor_config": None,
            "billing_mode": {
                "flexible": {"proration_discounts": "included"},
                "type": "flexible",
                "updated_at": now,
            },
            "billing_schedules": [],
            "billing_thresholds": None,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": first_price["currency"],
            "customer": customer_id,
            "customer_account": None,
            "days_until_due": None,
            "default_payment_method": new_id("pm_"),
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": list_object(
                subscription_items, f"/v1/subscription_items?subscription={subscription_id}"
            ),
            "latest_invoice": None,
            "livemode": False,
            "managed_payments": None,
            "metadata": dict(metadata),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "presentment_details": None,
            "schedule": None,
            "start_date": now,
            "status": "active" if trial_end is None else "trialing",
            "status_details": None,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None if trial_end is None else now,
        }
        subscription["items"]["total_count"] = len(subscription_items)
        self._state.subscriptions[subscription_id] = subscription
        invoice = self._invoices.create(
            subscription, billing_reason="subscription_create", paid=True
        )
        subscription["latest_invoice"] = invoice["id"]
        return subscription, invoice

    def _subscription_item(
        self,
        subscription_id: str,
        price: dict[str, Any],
        quantity: int,
        period_start: int,
        period_end: int,
    ) -> dict[str, Any]:
        return {
            "id": new_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self._state.now(),
            "current_period_end": period_end,
            "current_period_start": period_start,
            "discounts": [],
            "metadata": {},
            "plan": plan(price),
            "price": copy.deepcopy(price),
            "quantity": quantity,
            "subscription": subscription_id,
            "tax_rates": [],
        }

    def _apply(self, subscription: dict[str, Any], name: str, value: Any) -> None:
        items = subscription["items"]["data"]
        if name == "price":
            price = existing(self._state.prices, value, "price")
            if price["recurring"] is None:
                raise ValueError(f"price {value} is not recurring")
            items[0]["price"] = copy.deepcopy(price)
            items[0]["plan"] = plan(price)
            subscription["currency"] = price["currency"]
        elif name == "quantity":
            items[0]["quantity"] = int(value)
        elif name == "cancel_at_period_end":
            subscription["cancel_at_period_end"] = bool(value)
            subscription["cancel_at"] = items[0]["current_period_end"] if value else None
            subscription["canceled_at"] = self._state.now() if value else None
            subscription["cancellation_details"] = {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if value else None,
            }
        elif name in subscription and name not in ("id", "object"):
            subscription[name] = copy.deepcopy(value)
        else:
            raise TypeError(f"a subscription has no field {name!r} to change")

    def _cancel(self, subscription: dict[str, Any]) -> None:
        now = self._state.now()
        subscription["status"] = "canceled"
        subscription["canceled_at"] = subscription["canceled_at"] or now
        subscription["ended_at"] = now
        subscription["cancellation_details"] = {
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested",
        }


def _add_interval(start: int, interval: str, count: int) -> int:
    if interval == "day":
        return start + count * DAY
    if interval == "week":
        return start + 7 * count * DAY
    moment = datetime.fromtimestamp(start, UTC)
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    # Stripe keeps the day of the month, or the month's last day when it has fewer.
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())
