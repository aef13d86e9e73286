"""Checkout Sessions: ``/v1/checkout/sessions``, and the customer paying at Checkout."""

from __future__ import annotations

import copy
from typing import Any

from omnistack_core.testing._stripe.customers import Customers
from omnistack_core.testing._stripe.endpoints import LIST_PAGING, Call, list_object, retrieve
from omnistack_core.testing._stripe.errors import StripeError, missing, no_such
from omnistack_core.testing._stripe.events import emit
from omnistack_core.testing._stripe.params import (
    optional_boolean,
    optional_enum,
    optional_hash,
    optional_integer,
    optional_metadata,
    optional_string,
    optional_url,
    refuse_unknown,
)
from omnistack_core.testing._stripe.state import StripeState, existing, new_id
from omnistack_core.testing._stripe.subscriptions import Subscriptions

CHECKOUT_SESSION_LIFETIME_SECONDS = 24 * 60 * 60
_HOSTED_UI_MODES = ("hosted_page", "hosted")
# Newer API versions renamed the embedded modes; both spellings are taken.
_UI_MODES = (*_HOSTED_UI_MODES, "embedded_page", "elements", "form", "embedded", "custom")

# The top-level parameters the endpoint takes in this API version (from Stripe's OpenAPI
# spec); any other one is refused with ``parameter_unknown``, as Stripe does.
_CHECKOUT_CREATE = frozenset(
    {
        "adaptive_pricing",
        "after_expiration",
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "automatic_tax",
        "billing_address_collection",
        "branding_settings",
        "cancel_url",
        "client_reference_id",
        "consent_collection",
        "currency",
        "custom_fields",
        "custom_text",
        "customer",
        "customer_account",
        "customer_creation",
        "customer_email",
        "customer_update",
        "discounts",
        "excluded_payment_method_types",
        "expand",
        "expires_at",
        "integration_identifier",
        "invoice_creation",
        "line_items",
        "locale",
        "managed_payments",
        "metadata",
        "mode",
        "name_collection",
        "optional_items",
        "origin_context",
        "payment_intent_data",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_data",
        "payment_method_options",
        "permissions",
        "phone_number_collection",
        "redirect_on_completion",
        "return_url",
        "saved_payment_method_options",
        "setup_intent_data",
        "shipping_address_collection",
        "shipping_options",
        "submit_type",
        "subscription_data",
        "success_url",
        "tax_id_collection",
        "ui_mode",
        "wallet_options",
    }
)
_CHECKOUT_LINE_ITEM = frozenset(
    {"adjustable_quantity", "metadata", "price", "price_data", "quantity", "tax_rates"}
)
_CHECKOUT_SUBSCRIPTION_DATA = frozenset(
    {
        "application_fee_percent",
        "billing_cycle_anchor",
        "billing_cycle_anchor_config",
        "billing_mode",
        "default_tax_rates",
        "description",
        "invoice_settings",
        "metadata",
        "on_behalf_of",
        "pending_invoice_item_interval",
        "proration_behavior",
        "transfer_data",
        "trial_end",
        "trial_period_days",
        "trial_settings",
    }
)


class CheckoutSessions:
    """The Checkout Sessions, over the server's ``checkout_sessions``.

    Completing one creates the customer it lacks with ``customers``, and in subscription mode
    the subscription with ``subscriptions``.
    """

    def __init__(
        self, state: StripeState, customers: Customers, subscriptions: Subscriptions
    ) -> None:
        self._state = state
        self._customers = customers
        self._subscriptions = subscriptions
        # What a session was created with that its object does not show, by session id.
        self._items: dict[str, list[dict[str, Any]]] = {}
        self._trials: dict[str, int | None] = {}
        self._metadata: dict[str, dict[str, str]] = {}

    # Endpoints ------------------------------------------------------------------------------

    def create(self, call: Call, _: str) -> dict[str, Any]:
        """``POST /v1/checkout/sessions``."""
        params = call.params
        refuse_unknown(params, _CHECKOUT_CREATE)
        mode = optional_enum(params, "mode", ("payment", "setup", "subscription"))
        if mode is None:
            raise missing("mode")
        ui_mode = optional_enum(params, "ui_mode", _UI_MODES) or "hosted_page"
        hosted = ui_mode in _HOSTED_UI_MODES
        success_url = optional_url(params, "success_url")
        if hosted and success_url is None:
            raise missing("success_url")
        cancel_url = optional_url(params, "cancel_url")
        return_url = optional_url(params, "return_url")
        customer_id = optional_string(params, "customer")
        customer_email = optional_string(params, "customer_email")
        if customer_id is not None and customer_email is not None:
            raise StripeError(
                400, "You may only specify one of these parameters: customer, customer_email."
            )
        if customer_id is not None and customer_id not in self._state.customers:
            raise no_such("customer", customer_id, "customer")
        items = self._line_items_from(params, mode)
        subscription_data = optional_hash(params, "subscription_data")
        refuse_unknown(subscription_data, _CHECKOUT_SUBSCRIPTION_DATA, "subscription_data")
        trial_days = optional_integer(subscription_data, "trial_period_days", "subscription_data")
        if trial_days is not None and trial_days < 1:
            raise StripeError(
                400,
                "This value must be greater than or equal to 1.",
                param="subscription_data[trial_period_days]",
            )
        allow_promotion_codes = optional_boolean(params, "allow_promotion_codes")
        now = self._state.now()
        expires_at = (
            optional_integer(params, "expires_at") or now + CHECKOUT_SESSION_LIFETIME_SECONDS
        )
        session_id = new_id("cs_test_a1", 56)
        currency = items[0]["currency"] if items else optional_string(params, "currency")
        charged_now = 0 if trial_days else sum(item["amount_total"] for item in items)
        self._items[session_id] = items
        self._trials[session_id] = trial_days
        self._metadata[session_id] = optional_metadata(
            subscription_data, "metadata", "subscription_data"
        )
        self._state.checkout_sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": None,
            "after_expiration": None,
            "allow_promotion_codes": allow_promotion_codes,
            "amount_subtotal": charged_now if items else None,
            "amount_total": charged_now if items else None,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "cancel_url": cancel_url,
            "client_reference_id": optional_string(params, "client_reference_id"),
            "client_secret": None if hosted else f"{session_id}_secret_{new_id('', 24)}",
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": currency,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer_id,
            "customer_creation": None
            if customer_id is not None or mode != "payment"
            else optional_enum(params, "customer_creation", ("always", "if_required"))
            or "if_required",
            "customer_details": None
            if customer_email is None
            else {
                "email": customer_email,
                "address": None,
                "name": None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": None,
            },
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": expires_at,
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": optional_string(params, "locale"),
            "metadata": optional_metadata(params, "metadata"),
            "mode": mode,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always" if mode == "subscription" else None,
            "payment_method_types": ["card"],
            "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "return_url": return_url,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": ui_mode,
            "url": f"{self._state.url}/c/pay/{session_id}" if hosted else None,
        }
        return copy.deepcopy(self._state.checkout_sessions[session_id])

    def retrieve(self, call: Call, session_id: str) -> dict[str, Any]:
        """``GET /v1/checkout/sessions/{id}``."""
        return retrieve(call, self._state.checkout_sessions, session_id, "checkout.session")

    def list_line_items(self, call: Call, session_id: str) -> dict[str, Any]:
        """``GET /v1/checkout/sessions/{id}/line_items``."""
        refuse_unknown(call.params, LIST_PAGING)
        if session_id not in self._state.checkout_sessions:
            raise no_such("checkout.session", session_id, "id", status=404)
        return self.line_items(session_id)

    def line_items(self, session_id: str) -> dict[str, Any]:
        """The session's line items, as a list object (also its ``expand[]=line_items``)."""
        return list_object(
            self._items[session_id], f"/v1/checkout/sessions/{session_id}/line_items"
        )

    # Simulations ----------------------------------------------------------------------------

    def complete(
        self, session_id: str, *, email: str | None, name: str | None
    ) -> list[dict[str, Any]]:
        """The customer pays at Checkout: the events (see ``LocalStripe.complete_checkout``)."""
        session = existing(self._state.checkout_sessions, session_id, "checkout session")
        if session["status"] != "open":
            raise ValueError(f"checkout session {session_id} is {session['status']}")
        customer = self._customer(session, email, name)
        session["status"] = "complete"
        session["customer_details"] = {
            "address": None,
            "business_name": None,
            "email": (customer or {}).get("email")
            or email
            or session["customer_email"]
            or "customer@example.com",
            "individual_name": None,
            "name": (customer or {}).get("name") or name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        mode = session["mode"]
        if mode == "payment":
            session["payment_intent"] = new_id("pi_")
            session["payment_status"] = "paid"
            return [emit(self._state, "checkout.session.completed", session)]
        if mode == "setup":
            session["setup_intent"] = new_id("seti_")
            session["payment_status"] = "no_payment_required"
            return [emit(self._state, "checkout.session.completed", session)]
        if customer is None:
            raise RuntimeError("subscription mode always has a customer")
        items = [
            (item["price"]["id"], item["quantity"])
            for item in self._items[session_id]
            if item["price"]["recurring"] is not None
        ]
        subscription, invoice = self._subscriptions.subscribe(
            customer["id"],
            items,
            metadata=self._metadata[session_id],
            trial_days=self._trials[session_id],
        )
        session["subscription"] = subscription["id"]
        session["invoice"] = invoice["id"]
        session["payment_status"] = (
            "no_payment_required" if subscription["status"] == "trialing" else "paid"
        )
        return [
            emit(self._state, "checkout.session.completed", session),
            emit(self._state, "customer.subscription.created", subscription),
            emit(self._state, "invoice.paid", invoice),
        ]

    def _line_items_from(self, params: dict[str, Any], mode: str) -> list[dict[str, Any]]:
        raw_items = params.get("line_items")
        if raw_items in (None, ""):
            if mode == "setup":
                return []
            raise missing("line_items")
        if not isinstance(raw_items, list):
            raise StripeError(400, "Invalid array", param="line_items")
        items = []
        for index, raw in enumerate(raw_items):
            name = f"line_items[{index}]"
            if not isinstance(raw, dict):
                raise StripeError(400, "Invalid object", param=name)
            refuse_unknown(raw, _CHECKOUT_LINE_ITEM, name)
            price_id = optional_string(raw, "price", name)
            if price_id is None:
                if "price_data" in raw:
                    raise StripeError(
                        400,
                        "LocalStripe does not take price_data; add the price with add_price().",
                        param=f"{name}[price_data]",
                    )
                raise missing(f"{name}[price]")
            price = self._state.prices.get(price_id)
            if price is None:
                raise no_such("price", price_id, f"{name}[price]")
            quantity = optional_integer(raw, "quantity", name)
            if quantity is None:
                raise StripeError(
                    400,
                    f"Quantity is required. Add `quantity` to `{name}`.",
                    code="parameter_missing",
                    param=f"{name}[quantity]",
                )
            if quantity < 1:
                raise StripeError(
                    400,
                    "This value must be greater than or equal to 1.",
                    param=f"{name}[quantity]",
                )
            if mode == "payment" and price["recurring"] is not None:
                raise StripeError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either switch "
                    "to `subscription` mode or use only one-time prices.",
                    param="line_items",
                )
            amount = price["unit_amount"] * quantity
            product = self._state.products.get(price["product"], {})
            items.append(
                {
                    "id": new_id("li_"),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": product.get("name", price["product"]),
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                }
            )
        if mode == "subscription" and not any(i["price"]["recurring"] for i in items):
            raise StripeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        return items

    def _customer(
        self, session: dict[str, Any], email: str | None, name: str | None
    ) -> dict[str, Any] | None:
        if session["customer"] is not None:
            return self._state.customers[session["customer"]]
        if session["mode"] == "payment" and session["customer_creation"] != "always":
            return None
        customer = self._customers.add(
            email=email or session["customer_email"] or "customer@example.com", name=name
        )
        session["customer"] = customer["id"]
        return customer
