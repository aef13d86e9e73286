"""Invoices: those a subscription's payments make, and ``GET /v1/invoices/{id}``."""

from __future__ import annotations

from typing import Any

from omnistack_core.testing._stripe.endpoints import Call, list_object, retrieve
from omnistack_core.testing._stripe.state import DAY, StripeState, new_id


class Invoices:
    """The invoices, over the server's ``invoices``."""

    def __init__(self, state: StripeState) -> None:
        self._state = state

    def retrieve(self, call: Call, invoice_id: str) -> dict[str, Any]:
        """``GET /v1/invoices/{id}``."""
        return retrieve(call, self._state.invoices, invoice_id, "invoice")

    def create(
        self, subscription: dict[str, Any], *, billing_reason: str, paid: bool
    ) -> dict[str, Any]:
        """A finalised invoice for the subscription's items, paid or left open; not a copy."""
        now = self._state.now()
        invoice_id = new_id("in_")
        customer = self._state.customers[subscription["customer"]]
        trialing = subscription["status"] == "trialing"
        lines = []
        for item in subscription["items"]["data"]:
            amount = 0 if trialing else item["price"]["unit_amount"] * item["quantity"]
            lines.append(_invoice_line(invoice_id, subscription, item, amount))
        total = sum(line["amount"] for line in lines)
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        first = subscription["items"]["data"][0]
        # A subscription's first invoice covers the moment it started; later ones the period.
        period_start, period_end = (
            (now, now)
            if billing_reason == "subscription_create"
            else (first["current_period_start"], first["current_period_end"])
        )
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "LocalStripe",
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid else total,
            "amount_shipping": 0,
            "attempt_count": 1 if total or not paid else 0,
            "attempted": bool(total) or not paid,
            "auto_advance": not paid,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": subscription["currency"],
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": now,
            "ending_balance": 0,
            "hosted_invoice_url": f"{self._state.url}/i/{invoice_id}",
            "invoice_pdf": f"{self._state.url}/i/{invoice_id}/pdf",
            "lines": list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None if paid else now + 3 * DAY,
            "number": number,
            "parent": {
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
                "type": "subscription_details",
            },
            "period_end": period_end,
            "period_start": period_start,
            "status": "paid" if paid else "open",
            "status_transitions": {
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": now if paid else None,
                "voided_at": None,
            },
            "subtotal": total,
            "total": total,
            "webhooks_delivered_at": now,
        }
        self._state.invoices[invoice_id] = invoice
        return invoice


def _invoice_line(
    invoice_id: str, subscription: dict[str, Any], item: dict[str, Any], amount: int
) -> dict[str, Any]:
    price = item["price"]
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": f"{item['quantity']} × {price['product']}",  # noqa: RUF001 - Stripe's sign
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": item["current_period_end"], "start": item["current_period_start"]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "taxes": [],
    }
