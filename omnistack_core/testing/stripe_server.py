"""A local Stripe: the v1 billing API on 127.0.0.1, speaking Stripe's wire format, for tests.

It stands in for ``api.stripe.com`` in tests, ours and users' own: Stripe's official SDK,
pointed at it (``base_addresses={"api": server.url}``, or ``STRIPE_API_BASE``), gets the
answers Stripe gives, over real HTTP.

* Requests are form-encoded with Stripe's brackets (``line_items[0][price]=…``), answers are
  JSON objects with ``object``, ``livemode: false`` and Unix times; every answer carries a
  ``Request-Id``. ``Authorization: Bearer <key>`` (or Basic); a missing key or a wrong one
  is a 401, the wrong key masked as Stripe masks it.
* ``POST /v1/customers``, ``GET /v1/customers/{id}``; ``POST /v1/checkout/sessions``,
  ``GET /v1/checkout/sessions/{id}`` and ``…/line_items``; ``POST /v1/billing_portal/sessions``;
  ``GET /v1/subscriptions`` (``customer``, ``price``, ``status``, ``limit``,
  ``starting_after``), ``GET`` and ``DELETE /v1/subscriptions/{id}``; ``GET`` of
  ``/v1/invoices/{id}``, ``/v1/prices/{id}``, ``/v1/products/{id}``;
  ``GET /v1/entitlements/active_entitlements``. ``expand[]`` expands ids this server knows.
* Errors as ``{"error": {"type", "code", "message", "param", "doc_url", "request_log_url"}}``
  with the fields Stripe sends for each: ``parameter_unknown`` for a top-level parameter the
  endpoint does not take, ``parameter_missing``, ``resource_missing`` (404 for the object in
  the path, 400 with the ``param`` for a reference inside a create), ``parameter_invalid_*``,
  ``url_invalid``, and ``Unrecognized request URL`` for any other route.
* ``Idempotency-Key`` on a POST: within 24 hours the same key with the same parameters replays
  the first answer (``Idempotent-Replayed: true``, ``Original-Request``) and creates nothing;
  with other parameters or another endpoint, 400 ``idempotency_error``. Only answers of
  requests that succeeded are kept, as Stripe keeps none for requests that failed validation.

Failures are staged with :meth:`LocalStripe.fail_next`, the passing of time with
:meth:`LocalStripe.advance`. What customers do in Stripe's own pages (paying at Checkout, a
card failing at renewal, a plan change in the portal) is simulated by
:meth:`LocalStripe.complete_checkout`, :meth:`~LocalStripe.update_subscription`,
:meth:`~LocalStripe.cancel_subscription`, :meth:`~LocalStripe.fail_payment` and
:meth:`~LocalStripe.set_entitlements`: each changes the server's state and returns the
snapshot events Stripe would send, which :meth:`LocalStripe.signed` turns into a webhook
request. The clock only moves when told to, and nothing happens on its own when it does:
no renewals, no expiries.

    with LocalStripe() as server:
        price = server.add_price(lookup_key="pro_monthly", unit_amount=1500)
        client = stripe.StripeClient(
            server.api_key,
            base_addresses={"api": server.url},
            http_client=stripe.HTTPXClient(),
        )
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from omnistack_core.testing.local_server import LocalServer

API_VERSION = "2026-10-28.endive"
IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60
CHECKOUT_SESSION_LIFETIME_SECONDS = 24 * 60 * 60
_DAY = 24 * 60 * 60
_ALPHABET = string.ascii_letters + string.digits
_KEY_PREFIX = re.compile(r"(?:sk|rk|pk)_(?:test|live)_")
_FORM_KEY = re.compile(r"(?P<head>[^\[\]]+)(?P<tail>(?:\[[^\[\]]*\])*)")
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_JSON = "application/json"
_MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://docs.stripe.com/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
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
_HOSTED_UI_MODES = ("hosted_page", "hosted")
# Newer API versions renamed the embedded modes; both spellings are taken.
_UI_MODES = (*_HOSTED_UI_MODES, "embedded_page", "elements", "form", "embedded", "custom")
_INTERVALS = ("day", "week", "month", "year")

# The top-level parameters each endpoint takes in this API version (from Stripe's OpenAPI
# spec); any other one is refused with ``parameter_unknown``, as Stripe does.
_CUSTOMER_CREATE = frozenset(
    {
        "address",
        "balance",
        "business_name",
        "cash_balance",
        "description",
        "email",
        "expand",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "metadata",
        "name",
        "next_invoice_sequence",
        "payment_method",
        "phone",
        "preferred_locales",
        "shipping",
        "source",
        "tax",
        "tax_exempt",
        "tax_id_data",
        "test_clock",
        "validate",
    }
)
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
_PORTAL_CREATE = frozenset(
    {
        "after_expiration",
        "configuration",
        "customer",
        "customer_account",
        "expand",
        "flow_data",
        "locale",
        "on_behalf_of",
        "return_url",
    }
)
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
_ENTITLEMENTS_LIST = frozenset({"customer", "ending_before", "expand", "limit", "starting_after"})
_LIST_PAGING = frozenset({"ending_before", "expand", "limit", "starting_after"})
_RETRIEVE = frozenset({"expand"})


@dataclass(frozen=True, slots=True)
class StripeRequest:
    """A request the server answered.

    Attributes:
        method: ``POST``, ``GET``, ``DELETE``.
        path: The path, without the query.
        params: The form parameters (body or query), decoded from Stripe's brackets into
            nested dicts and lists; values stay strings, as they were sent.
        headers: Its headers, names in lower case.
        status: The status answered.
        request_id: The ``Request-Id`` answered.
        response_headers: The headers answered, names in lower case.
    """

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str] = field(repr=False)
    status: int
    request_id: str = ""
    response_headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key``, if it had one."""
        return self.headers.get("idempotency-key")

    @property
    def replayed(self) -> bool:
        """Whether the answer was a replay of an earlier one (``Idempotent-Replayed``)."""
        return self.response_headers.get("idempotent-replayed") == "true"


@dataclass(frozen=True, slots=True)
class _Staged:
    status: int
    type: str | None
    code: str | None
    message: str | None
    decline_code: str | None
    param: str | None
    retry_after: int | None
    path: str | None


@dataclass(frozen=True, slots=True)
class _Stored:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    request_id: str
    at: float


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    params: dict[str, Any]
    request_id: str
    idempotency_key: str | None


class _StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - Stripe's own field name
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fields: dict[str, str] = {"message": message, "type": type}
        if code is not None:
            self.fields["code"] = code
            self.fields["doc_url"] = f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"
        if param is not None:
            self.fields["param"] = param
        if decline_code is not None:
            self.fields["decline_code"] = decline_code
        self.headers = dict(headers or {})


def _missing(param: str) -> _StripeError:
    return _StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def _no_such(kind: str, object_id: str, param: str, status: int = 400) -> _StripeError:
    return _StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


_Endpoint = Callable[[_Call, str], dict[str, Any]]


class LocalStripe(LocalServer):
    """Stripe's v1 billing API on a free port of 127.0.0.1.

    Args:
        api_key: The secret key requests must carry; a random ``sk_test_…`` when None.
        webhook_secret: The endpoint secret :meth:`signed` signs with; a random ``whsec_…``
            when None.

    Attributes:
        customers: Customers by id, as Stripe objects (JSON-able dicts).
        prices: Prices by id (see :meth:`add_price`).
        products: Products by id, made with their prices.
        checkout_sessions: Checkout Sessions by id.
        portal_sessions: Billing portal sessions by id.
        subscriptions: Subscriptions by id.
        invoices: Invoices by id (made by :meth:`complete_checkout` and :meth:`fail_payment`).
        entitlements: Active entitlement lookup keys by customer id.
        events: Every event this server produced, oldest first: those the simulations
            returned and those its API calls caused (a ``DELETE`` of a subscription).
        requests: Every request answered, oldest first.
    """

    def __init__(self, api_key: str | None = None, *, webhook_secret: str | None = None) -> None:
        self.api_key = api_key or _new_id("sk_test_", 99)
        self.webhook_secret = webhook_secret or _new_id("whsec_", 32)
        self.customers: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.entitlements: dict[str, list[str]] = {}
        self.events: list[dict[str, Any]] = []
        self.meter_events: list[dict[str, Any]] = []
        self.requests: list[StripeRequest] = []
        self._account = _new_id("acct_", 16)
        self._portal_configuration = _new_id("bpc_")
        self._session_items: dict[str, list[dict[str, Any]]] = {}
        self._session_trials: dict[str, int | None] = {}
        self._session_metadata: dict[str, dict[str, str]] = {}
        self._features: dict[str, str] = {}
        self._entitlement_ids: dict[tuple[str, str], str] = {}
        self._staged: deque[_Staged] = deque()
        self._idempotency: dict[str, _Stored] = {}
        self._offset = 0.0
        # One lock for everything: requests are answered one at a time, as if each were
        # atomic at Stripe, and simulations never interleave with them.
        self._lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], _Endpoint]] = [
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("GET", re.compile(r"/v1/customers/([^/]+)"), self._retrieve_customer),
            ("POST", re.compile(r"/v1/checkout/sessions"), self._create_checkout_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self._retrieve_checkout),
            (
                "GET",
                re.compile(r"/v1/checkout/sessions/([^/]+)/line_items"),
                self._checkout_line_items,
            ),
            ("POST", re.compile(r"/v1/billing_portal/sessions"), self._create_portal_session),
            ("GET", re.compile(r"/v1/subscriptions"), self._list_subscriptions),
            ("GET", re.compile(r"/v1/subscriptions/([^/]+)"), self._retrieve_subscription),
            ("DELETE", re.compile(r"/v1/subscriptions/([^/]+)"), self._delete_subscription),
            ("GET", re.compile(r"/v1/invoices/([^/]+)"), self._retrieve_invoice),
            ("GET", re.compile(r"/v1/prices/([^/]+)"), self._retrieve_price),
            ("GET", re.compile(r"/v1/products/([^/]+)"), self._retrieve_product),
            (
                "GET",
                re.compile(r"/v1/entitlements/active_entitlements"),
                self._list_active_entitlements,
            ),
            ("POST", re.compile(r"/v1/billing/meter_events"), self._create_meter_event),
        ]

    # Catalogue, staging, clock --------------------------------------------------------------

    def add_price(
        self,
        price_id: str | None = None,
        *,
        product: str | None = None,
        unit_amount: int = 1000,
        currency: str = "usd",
        interval: str | None = "month",
        lookup_key: str | None = None,
        interval_count: int = 1,
        product_name: str | None = None,
    ) -> str:
        """Add a price the server knows (and its product, unless it exists).

        Args:
            price_id: Its id; a random ``price_…`` when None.
            product: Its product's id; a random ``prod_…`` when None.
            unit_amount: The amount in the currency's smallest unit.
            currency: A lower-case ISO code.
            interval: ``day``, ``week``, ``month`` or ``year``; None for a one-time price.
            lookup_key: Its lookup key.
            interval_count: How many intervals a period lasts.
            product_name: The product's name; its id when None.

        Returns:
            The price's id.
        """
        if interval is not None and interval not in _INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(_INTERVALS)} or None")
        with self._lock:
            now = self.now()
            price_id = price_id or _new_id("price_")
            product = product or _new_id("prod_", 14)
            if product not in self.products:
                self.products[product] = _product(product, product_name or product, price_id, now)
            self.prices[price_id] = {
                "id": price_id,
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": now,
                "currency": currency.lower(),
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": {},
                "nickname": None,
                "product": product,
                "recurring": None
                if interval is None
                else {
                    "interval": interval,
                    "interval_count": interval_count,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "one_time" if interval is None else "recurring",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            }
        return price_id

    def fail_next(
        self,
        status: int,
        *,
        type: str | None = None,  # noqa: A002 - Stripe's own field name
        code: str | None = None,
        message: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next matching request(s) with an error in Stripe's shape.

        The failure comes before anything else (authentication, idempotency, the endpoint),
        as a failure in front of Stripe's API would: nothing is created and nothing is kept
        under the request's idempotency key, so a retry with the same key goes through.

        Args:
            status: The HTTP status.
            type: The error ``type``; by default ``card_error`` for 402, ``idempotency_error``
                for 409, ``api_error`` for 5xx, ``invalid_request_error`` otherwise (Stripe
                sends 401 and 429 as that too).
            code: The error ``code``; by default ``card_declined`` for 402,
                ``idempotency_key_in_use`` for 409, ``rate_limit`` for 429.
            message: The message; Stripe's usual one for the status by default.
            decline_code: The ``decline_code``; ``generic_decline`` for 402 by default.
            param: The ``param``.
            retry_after: Seconds sent as ``Retry-After``.
            path: Only requests to this path (``/v1/checkout/sessions``) fail; any when None.
            times: How many requests fail.
        """
        staged = _Staged(status, type, code, message, decline_code, param, retry_after, path)
        with self._lock:
            self._staged.extend(staged for _ in range(times))

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (or back) by ``seconds``.

        It dates new objects and events, and counts periods, trials and the 24 hours of
        idempotency keys. Nothing happens on its own as it moves: no renewals, no expiries.
        """
        with self._lock:
            self._offset += seconds

    def now(self) -> int:
        """The server's clock, in Unix seconds."""
        return int(time.time() + self._offset)

    # Simulations ----------------------------------------------------------------------------

    def complete_checkout(
        self, session_id: str, *, email: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """The customer pays (or sets up) at Checkout.

        A subscription-mode session creates the subscription (``trialing`` when
        ``subscription_data[trial_period_days]`` was given, else ``active``) and its first
        invoice, paid; the session becomes ``complete`` with ``subscription`` and ``invoice``
        set and ``payment_status`` ``paid`` (``no_payment_required`` during a trial, as
        Stripe answers when nothing is charged today). Without a customer on the session, one
        is created (in payment mode only when ``customer_creation`` is ``always``).

        Args:
            session_id: An open Checkout Session.
            email: The email the customer typed; the session's ``customer_email``, or the
                customer's, or ``customer@example.com`` when None.
            name: The name the customer typed.

        Returns:
            ``[checkout.session.completed, customer.subscription.created, invoice.paid]`` in
            subscription mode; ``[checkout.session.completed]`` otherwise.

        Raises:
            KeyError: No such session.
            ValueError: The session is not open.
        """
        with self._lock:
            session = _existing(self.checkout_sessions, session_id, "checkout session")
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            customer = self._checkout_customer(session, email, name)
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
                session["payment_intent"] = _new_id("pi_")
                session["payment_status"] = "paid"
                return [self._record(self.event("checkout.session.completed", session))]
            if mode == "setup":
                session["setup_intent"] = _new_id("seti_")
                session["payment_status"] = "no_payment_required"
                return [self._record(self.event("checkout.session.completed", session))]
            if customer is None:
                raise RuntimeError("subscription mode always has a customer")
            items = [
                (item["price"]["id"], item["quantity"])
                for item in self._session_items[session_id]
                if item["price"]["recurring"] is not None
            ]
            subscription, invoice = self._subscribe(
                customer["id"],
                items,
                metadata=self._session_metadata[session_id],
                trial_days=self._session_trials[session_id],
            )
            session["subscription"] = subscription["id"]
            session["invoice"] = invoice["id"]
            session["payment_status"] = (
                "no_payment_required" if subscription["status"] == "trialing" else "paid"
            )
            return [
                self._record(self.event("checkout.session.completed", session)),
                self._record(self.event("customer.subscription.created", subscription)),
                self._record(self.event("invoice.paid", invoice)),
            ]

    def update_subscription(self, subscription_id: str, **changes: Any) -> dict[str, Any]:
        """A change made in the dashboard or the portal: ``customer.subscription.updated``.

        Args:
            subscription_id: The subscription.
            **changes: Fields of the subscription to set (``status="past_due"``,
                ``metadata={...}``, ``trial_end=...``), and: ``cancel_at_period_end`` (also
                sets ``cancel_at``, ``canceled_at`` and ``cancellation_details`` as Stripe
                does, or clears them), ``price`` (the item's price switches, its periods
                stay), ``quantity`` (the item's quantity).

        Returns:
            The event, with ``data.previous_attributes`` holding the old values of what
            changed.

        Raises:
            KeyError: No such subscription, or no such price.
            TypeError: A change names no field of a subscription.
        """
        with self._lock:
            subscription = _existing(self.subscriptions, subscription_id, "subscription")
            before = copy.deepcopy(subscription)
            for name, value in changes.items():
                self._apply(subscription, name, value)
            previous = {
                name: before[name]
                for name in subscription
                if name in before and before[name] != subscription[name]
            }
            return self._record(
                self.event(
                    "customer.subscription.updated", subscription, previous_attributes=previous
                )
            )

    def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription ends now: ``customer.subscription.deleted``.

        Raises:
            KeyError: No such subscription.
        """
        with self._lock:
            subscription = _existing(self.subscriptions, subscription_id, "subscription")
            self._cancel(subscription)
            return self._record(self.event("customer.subscription.deleted", subscription))

    def fail_payment(self, subscription_id: str) -> list[dict[str, Any]]:
        """A renewal payment fails: ``invoice.payment_failed``, then ``past_due``.

        The invoice is open, for the items' current period; the periods do not move.

        Returns:
            ``[invoice.payment_failed, customer.subscription.updated]``.

        Raises:
            KeyError: No such subscription.
        """
        with self._lock:
            subscription = _existing(self.subscriptions, subscription_id, "subscription")
            before = {
                "latest_invoice": subscription["latest_invoice"],
                "status": subscription["status"],
            }
            invoice = self._invoice(subscription, billing_reason="subscription_cycle", paid=False)
            subscription["latest_invoice"] = invoice["id"]
            subscription["status"] = "past_due"
            previous = {name: old for name, old in before.items() if subscription[name] != old}
            return [
                self._record(self.event("invoice.payment_failed", invoice)),
                self._record(
                    self.event(
                        "customer.subscription.updated",
                        subscription,
                        previous_attributes=previous,
                    )
                ),
            ]

    def set_entitlements(self, customer_id: str, lookup_keys: Sequence[str]) -> dict[str, Any]:
        """The customer's active entitlements become the features with ``lookup_keys``.

        Returns:
            ``entitlements.active_entitlement_summary.updated``; feature and entitlement ids
            stay the same across calls for the same lookup key.

        Raises:
            KeyError: No such customer.
        """
        with self._lock:
            _existing(self.customers, customer_id, "customer")
            before = self.entitlements.get(customer_id)
            self.entitlements[customer_id] = list(lookup_keys)
            summary = {
                "object": "entitlements.active_entitlement_summary",
                "customer": customer_id,
                "entitlements": self._entitlement_list(
                    customer_id, f"/v1/customer/{customer_id}/entitlements"
                ),
                "livemode": False,
            }
            previous = None
            if before is not None:
                previous = {
                    "entitlements": self._entitlement_list(
                        customer_id, f"/v1/customer/{customer_id}/entitlements", before
                    )
                }
            return self._record(
                self.event(
                    "entitlements.active_entitlement_summary.updated",
                    summary,
                    previous_attributes=previous,
                )
            )

    # Events and webhooks --------------------------------------------------------------------

    def event(
        self,
        type: str,  # noqa: A002 - Stripe's own field name
        obj: Mapping[str, Any],
        *,
        previous_attributes: Mapping[str, Any] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A v1 snapshot event about ``obj`` (copied), as Stripe sends it to webhooks.

        Args:
            type: ``customer.subscription.updated``...
            obj: The object, as it is now.
            previous_attributes: The old values of what changed (``*.updated`` events).
            created: Its ``created``; the server's clock when None.
        """
        data: dict[str, Any] = {"object": copy.deepcopy(dict(obj))}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
        return {
            "id": _new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now() if created is None else created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }

    def signed(
        self,
        event: Mapping[str, Any] | bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook request carrying ``event``, signed as Stripe signs it.

        Args:
            event: The event (serialised as Stripe does, indented JSON), or a raw body.
            secret: Sign with this secret instead of :attr:`webhook_secret`.
            timestamp: The signature's time; now (the real clock, which receivers compare
                against) when None.

        Returns:
            The body and the headers to POST to the webhook endpoint.
        """
        body = (
            event
            if isinstance(event, bytes)
            else json.dumps(event, indent=2, ensure_ascii=False).encode()
        )
        signature = sign_stripe_webhook(
            body, self.webhook_secret if secret is None else secret, timestamp=timestamp
        )
        return body, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
        }

    # Handling -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        target = urlsplit(handler.path)
        method = handler.command
        request_id = _new_id("req_", 14)
        with self._lock:
            params, status, body, extra = self._answer(
                method,
                target.path,
                query=target.query,
                headers=headers,
                raw=raw,
                request_id=request_id,
            )
            response_headers = {
                "Request-Id": request_id,
                "Stripe-Version": headers.get("stripe-version", API_VERSION),
                **extra,
            }
            if method == "POST" and "idempotency-key" in headers:
                response_headers["Idempotency-Key"] = headers["idempotency-key"]
            self.requests.append(
                StripeRequest(
                    method,
                    target.path,
                    params,
                    headers,
                    status,
                    request_id,
                    {name.lower(): value for name, value in response_headers.items()},
                )
            )
        payload = json.dumps(body, indent=2).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", _JSON)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Cache-Control", "no-cache, no-store")
        for name, value in response_headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: dict[str, str],
        raw: bytes,
        request_id: str,
    ) -> tuple[dict[str, Any], int, dict[str, Any], dict[str, str]]:
        params: dict[str, Any] = {}
        try:
            params = self._params(method, query, headers, raw)
            self._raise_staged(path, headers)
            self._authenticate(headers)
            key = headers.get("idempotency-key") if method == "POST" else None
            if key is not None:
                replay = self._replay(key, method, path, params)
                if replay is not None:
                    return (
                        params,
                        replay.status,
                        copy.deepcopy(replay.body),
                        {
                            "Idempotent-Replayed": "true",
                            "Original-Request": replay.request_id,
                        },
                    )
            body = self._route(_Call(method, path, params, request_id, key))
            if key is not None:
                self._idempotency[key] = _Stored(
                    method, path, params, 200, copy.deepcopy(body), request_id, self._clock()
                )
        except _StripeError as error:
            fields = dict(error.fields)
            if error.status != 401:
                fields["request_log_url"] = (
                    f"https://dashboard.stripe.com/{self._account}/test/workbench/logs"
                    f"?object={request_id}"
                )
            return params, error.status, {"error": dict(sorted(fields.items()))}, error.headers
        return params, 200, body, {}

    def _clock(self) -> float:
        return time.time() + self._offset

    @staticmethod
    def _params(method: str, query: str, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
        pairs = parse_qsl(query, keep_blank_values=True)
        if method == "POST" and raw:
            content_type = headers.get("content-type", "")
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise _StripeError(
                    400,
                    f"Invalid request: unsupported Content-Type {content_type}. If error "
                    "persists and you need assistance, please contact support@stripe.com.",
                )
            pairs += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return decode_form(pairs)

    def _raise_staged(self, path: str, headers: dict[str, str]) -> None:
        staged = next((s for s in self._staged if s.path in (None, path)), None)
        if staged is None:
            return
        self._staged.remove(staged)
        status = staged.status
        defaults: dict[int, tuple[str, str | None, str]] = {
            400: ("invalid_request_error", None, "Invalid request."),
            401: ("invalid_request_error", None, self._invalid_key_message(headers)),
            402: ("card_error", "card_declined", "Your card was declined."),
            403: (
                "invalid_request_error",
                None,
                "The provided key does not have the required permissions for this endpoint.",
            ),
            404: ("invalid_request_error", "resource_missing", "No such object."),
            409: (
                "idempotency_error",
                "idempotency_key_in_use",
                (
                    "There is currently another in-progress request using this idempotent key "
                    "(that probably means you submitted twice, and the other request is still "
                    "going through). Please try again later."
                ),
            ),
            429: (
                "invalid_request_error",
                "rate_limit",
                (
                    "Request rate limit exceeded. Learn more about rate limits here "
                    "https://docs.stripe.com/rate-limits."
                ),
            ),
        }
        server_error = ("api_error", None, "An unknown error occurred")
        type_, code, message = defaults.get(
            status,
            server_error
            if status >= 500
            else ("invalid_request_error", None, "An error occurred."),
        )
        decline_code = staged.decline_code
        if decline_code is None and status == 402 and staged.type in (None, "card_error"):
            decline_code = "generic_decline"
        extra = {} if staged.retry_after is None else {"Retry-After": str(staged.retry_after)}
        raise _StripeError(
            status,
            staged.message or message,
            type=staged.type or type_,
            code=staged.code or code,
            param=staged.param,
            decline_code=decline_code,
            headers=extra,
        )

    def _presented_key(self, headers: dict[str, str]) -> str | None:
        scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return credential.strip() or None
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credential.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user.partition(":")[0] or None
        return None

    def _invalid_key_message(self, headers: dict[str, str]) -> str:
        key = self._presented_key(headers)
        return _MISSING_KEY if key is None else f"Invalid API Key provided: {_masked(key)}"

    def _authenticate(self, headers: dict[str, str]) -> None:
        key = self._presented_key(headers)
        if key is None:
            raise _StripeError(401, _MISSING_KEY)
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise _StripeError(401, f"Invalid API Key provided: {_masked(key)}")

    def _replay(self, key: str, method: str, path: str, params: dict[str, Any]) -> _Stored | None:
        stored = self._idempotency.get(key)
        if stored is not None and self._clock() - stored.at >= IDEMPOTENCY_WINDOW_SECONDS:
            del self._idempotency[key]
            return None
        if stored is None:
            return None
        if (stored.method, stored.path) != (method, path):
            raise _StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{stored.method} {stored.path}' vs '{method} {path}'). Try "
                f"using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if stored.params != params:
            raise _StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        return stored

    def _route(self, call: _Call) -> dict[str, Any]:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match is not None and method == call.method:
                body = handler(call, unquote(match.group(1)) if pattern.groups else "")
                expand = call.params.get("expand")
                if expand:
                    body = self._expanded(body, expand)
                return body
        raise _StripeError(
            404,
            f"Unrecognized request URL ({call.method}: {call.path}). Please see "
            "https://docs.stripe.com or we can help at https://support.stripe.com/.",
        )

    # Endpoints ------------------------------------------------------------------------------

    def _create_customer(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, _CUSTOMER_CREATE)
        email = _optional_string(params, "email")
        if email is not None and not _EMAIL.fullmatch(email):
            raise _StripeError(
                400, f"Invalid email address: {email}", code="email_invalid", param="email"
            )
        customer_id = _new_id("cus_", 14)
        self.customers[customer_id] = {
            "id": customer_id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": _optional_string(params, "description"),
            "discount": None,
            "email": email,
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": _metadata(params, "metadata"),
            "name": _optional_string(params, "name"),
            "next_invoice_sequence": 1,
            "phone": _optional_string(params, "phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        return copy.deepcopy(self.customers[customer_id])

    def _create_meter_event(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, frozenset({"event_name", "payload", "identifier", "timestamp"}))
        event_name = _optional_string(params, "event_name")
        if event_name is None:
            raise _missing("event_name")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            raise _missing("payload")
        customer_id = payload.get("stripe_customer_id")
        if not customer_id:
            raise _missing("payload[stripe_customer_id]")
        if customer_id not in self.customers:
            raise _StripeError(
                400,
                f"No such customer: '{customer_id}'",
                code="resource_missing",
                param="payload[stripe_customer_id]",
            )
        value = payload.get("value")
        try:
            float(str(value))
        except ValueError:
            raise _StripeError(
                400, "The payload value must be a number.", param="payload[value]"
            ) from None
        identifier = _optional_string(params, "identifier") or _new_id("mev_", 24)
        if any(event["identifier"] == identifier for event in self.meter_events):
            raise _StripeError(
                400,
                f"An event with identifier {identifier} already exists.",
                code="resource_already_exists",
                param="identifier",
            )
        timestamp = params.get("timestamp")
        event = {
            "object": "billing.meter_event",
            "created": self.now(),
            "event_name": event_name,
            "identifier": identifier,
            "livemode": False,
            "payload": dict(payload),
            "timestamp": int(timestamp) if timestamp else self.now(),
        }
        self.meter_events.append(event)
        return copy.deepcopy(event)

    def _retrieve_customer(self, call: _Call, customer_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.customers, customer_id, "customer")

    def _retrieve(
        self, call: _Call, store: dict[str, dict[str, Any]], object_id: str, kind: str
    ) -> dict[str, Any]:
        _refuse_unknown(call.params, _RETRIEVE)
        found = store.get(object_id)
        if found is None:
            raise _no_such(kind, object_id, "id", status=404)
        return copy.deepcopy(found)

    def _create_checkout_session(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, _CHECKOUT_CREATE)
        mode = _enum(params, "mode", ("payment", "setup", "subscription"))
        if mode is None:
            raise _missing("mode")
        ui_mode = _enum(params, "ui_mode", _UI_MODES) or "hosted_page"
        hosted = ui_mode in _HOSTED_UI_MODES
        success_url = _url(params, "success_url")
        if hosted and success_url is None:
            raise _missing("success_url")
        cancel_url = _url(params, "cancel_url")
        return_url = _url(params, "return_url")
        customer_id = _optional_string(params, "customer")
        customer_email = _optional_string(params, "customer_email")
        if customer_id is not None and customer_email is not None:
            raise _StripeError(
                400, "You may only specify one of these parameters: customer, customer_email."
            )
        if customer_id is not None and customer_id not in self.customers:
            raise _no_such("customer", customer_id, "customer")
        items = self._checkout_items(params, mode)
        subscription_data = _object(params, "subscription_data")
        _refuse_unknown(subscription_data, _CHECKOUT_SUBSCRIPTION_DATA, "subscription_data")
        trial_days = _integer(subscription_data, "trial_period_days", "subscription_data")
        if trial_days is not None and trial_days < 1:
            raise _StripeError(
                400,
                "This value must be greater than or equal to 1.",
                param="subscription_data[trial_period_days]",
            )
        allow_promotion_codes = _boolean(params, "allow_promotion_codes")
        now = self.now()
        expires_at = _integer(params, "expires_at") or now + CHECKOUT_SESSION_LIFETIME_SECONDS
        session_id = _new_id("cs_test_a1", 56)
        currency = items[0]["currency"] if items else _optional_string(params, "currency")
        charged_now = 0 if trial_days else sum(item["amount_total"] for item in items)
        self._session_items[session_id] = items
        self._session_trials[session_id] = trial_days
        self._session_metadata[session_id] = _metadata(
            subscription_data, "metadata", "subscription_data"
        )
        self.checkout_sessions[session_id] = {
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
            "client_reference_id": _optional_string(params, "client_reference_id"),
            "client_secret": None if hosted else f"{session_id}_secret_{_new_id('', 24)}",
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
            else _enum(params, "customer_creation", ("always", "if_required")) or "if_required",
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
            "locale": _optional_string(params, "locale"),
            "metadata": _metadata(params, "metadata"),
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
            "url": f"{self.url}/c/pay/{session_id}" if hosted else None,
        }
        return copy.deepcopy(self.checkout_sessions[session_id])

    def _checkout_items(self, params: dict[str, Any], mode: str) -> list[dict[str, Any]]:
        raw_items = params.get("line_items")
        if raw_items in (None, ""):
            if mode == "setup":
                return []
            raise _missing("line_items")
        if not isinstance(raw_items, list):
            raise _StripeError(400, "Invalid array", param="line_items")
        items = []
        for index, raw in enumerate(raw_items):
            name = f"line_items[{index}]"
            if not isinstance(raw, dict):
                raise _StripeError(400, "Invalid object", param=name)
            _refuse_unknown(raw, _CHECKOUT_LINE_ITEM, name)
            price_id = _optional_string(raw, "price", name)
            if price_id is None:
                if "price_data" in raw:
                    raise _StripeError(
                        400,
                        "LocalStripe does not take price_data; add the price with add_price().",
                        param=f"{name}[price_data]",
                    )
                raise _missing(f"{name}[price]")
            price = self.prices.get(price_id)
            if price is None:
                raise _no_such("price", price_id, f"{name}[price]")
            quantity = _integer(raw, "quantity", name)
            if quantity is None:
                raise _StripeError(
                    400,
                    f"Quantity is required. Add `quantity` to `{name}`.",
                    code="parameter_missing",
                    param=f"{name}[quantity]",
                )
            if quantity < 1:
                raise _StripeError(
                    400,
                    "This value must be greater than or equal to 1.",
                    param=f"{name}[quantity]",
                )
            if mode == "payment" and price["recurring"] is not None:
                raise _StripeError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either switch "
                    "to `subscription` mode or use only one-time prices.",
                    param="line_items",
                )
            amount = price["unit_amount"] * quantity
            product = self.products.get(price["product"], {})
            items.append(
                {
                    "id": _new_id("li_"),
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
            raise _StripeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        return items

    def _retrieve_checkout(self, call: _Call, session_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.checkout_sessions, session_id, "checkout.session")

    def _checkout_line_items(self, call: _Call, session_id: str) -> dict[str, Any]:
        _refuse_unknown(call.params, _LIST_PAGING)
        if session_id not in self.checkout_sessions:
            raise _no_such("checkout.session", session_id, "id", status=404)
        return _list(
            self._session_items[session_id], f"/v1/checkout/sessions/{session_id}/line_items"
        )

    def _create_portal_session(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, _PORTAL_CREATE)
        customer_id = _optional_string(params, "customer")
        if customer_id is None:
            raise _missing("customer")
        if customer_id not in self.customers:
            raise _no_such("customer", customer_id, "customer")
        session_id = _new_id("bps_")
        self.portal_sessions[session_id] = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": _optional_string(params, "configuration")
            or self._portal_configuration,
            "created": self.now(),
            "customer": customer_id,
            "customer_account": None,
            "flow": None,
            "livemode": False,
            "locale": _optional_string(params, "locale"),
            "on_behalf_of": None,
            "return_url": _url(params, "return_url"),
            "url": f"{self.url}/p/session/test_{session_id}",
        }
        return copy.deepcopy(self.portal_sessions[session_id])

    def _list_subscriptions(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, _SUBSCRIPTION_LIST)
        status = _enum(params, "status", _SUBSCRIPTION_STATUSES)
        customer_id = _optional_string(params, "customer")
        price_id = _optional_string(params, "price")
        found = []
        for subscription in reversed(self.subscriptions.values()):
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
        return self._page(params, found, "subscription", "/v1/subscriptions")

    def _page(
        self, params: dict[str, Any], found: list[dict[str, Any]], kind: str, url: str
    ) -> dict[str, Any]:
        limit = _integer(params, "limit")
        if limit is not None and not 1 <= limit <= 100:
            raise _StripeError(
                400,
                "This value must be greater than or equal to 1."
                if limit < 1
                else f"This value must be less than or equal to 100 (it currently is '{limit}').",
                param="limit",
            )
        after = _optional_string(params, "starting_after")
        if after is not None:
            ids = [entry["id"] for entry in found]
            if after not in ids:
                raise _no_such(kind, after, "starting_after")
            found = found[ids.index(after) + 1 :]
        page = found[: limit or 10]
        listed = _list(page, url)
        listed["has_more"] = len(found) > len(page)
        return listed

    def _retrieve_subscription(self, call: _Call, subscription_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.subscriptions, subscription_id, "subscription")

    def _delete_subscription(self, call: _Call, subscription_id: str) -> dict[str, Any]:
        _refuse_unknown(call.params, _SUBSCRIPTION_CANCEL)
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise _no_such("subscription", subscription_id, "id", status=404)
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise _StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        self._cancel(subscription)
        event = self.event("customer.subscription.deleted", subscription)
        event["request"] = {"id": call.request_id, "idempotency_key": call.idempotency_key}
        self._record(event)
        return copy.deepcopy(subscription)

    def _retrieve_invoice(self, call: _Call, invoice_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.invoices, invoice_id, "invoice")

    def _retrieve_price(self, call: _Call, price_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.prices, price_id, "price")

    def _retrieve_product(self, call: _Call, product_id: str) -> dict[str, Any]:
        return self._retrieve(call, self.products, product_id, "product")

    def _list_active_entitlements(self, call: _Call, _: str) -> dict[str, Any]:
        params = call.params
        _refuse_unknown(params, _ENTITLEMENTS_LIST)
        customer_id = _optional_string(params, "customer")
        if customer_id is None:
            raise _missing("customer")
        if customer_id not in self.customers:
            raise _no_such("customer", customer_id, "customer")
        url = "/v1/entitlements/active_entitlements"
        listed = self._entitlement_list(customer_id, url)
        return self._page(params, listed["data"], "entitlements.active_entitlement", url)

    # State ----------------------------------------------------------------------------------

    def _record(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return copy.deepcopy(event)

    def _checkout_customer(
        self, session: dict[str, Any], email: str | None, name: str | None
    ) -> dict[str, Any] | None:
        if session["customer"] is not None:
            return self.customers[session["customer"]]
        if session["mode"] == "payment" and session["customer_creation"] != "always":
            return None
        customer_id = _new_id("cus_", 14)
        self.customers[customer_id] = {
            "id": customer_id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": email or session["customer_email"] or "customer@example.com",
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": name,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        session["customer"] = customer_id
        return self.customers[customer_id]

    def _subscribe(
        self,
        customer_id: str,
        items: list[tuple[str, int]],
        *,
        metadata: dict[str, str],
        trial_days: int | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        now = self.now()
        subscription_id = _new_id("sub_")
        trial_end = None if trial_days is None else now + trial_days * _DAY
        subscription_items = []
        for price_id, quantity in items:
            price = self.prices[price_id]
            recurring = price["recurring"]
            period_end = trial_end or _add_interval(
                now, recurring["interval"], recurring["interval_count"]
            )
            subscription_items.append(
                self._subscription_item(subscription_id, price, quantity, now, period_end)
            )
        first_price = self.prices[items[0][0]]
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
            "default_payment_method": _new_id("pm_"),
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": _list(
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
        self.subscriptions[subscription_id] = subscription
        invoice = self._invoice(subscription, billing_reason="subscription_create", paid=True)
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
            "id": _new_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.now(),
            "current_period_end": period_end,
            "current_period_start": period_start,
            "discounts": [],
            "metadata": {},
            "plan": _plan(price),
            "price": copy.deepcopy(price),
            "quantity": quantity,
            "subscription": subscription_id,
            "tax_rates": [],
        }

    def _invoice(
        self, subscription: dict[str, Any], *, billing_reason: str, paid: bool
    ) -> dict[str, Any]:
        now = self.now()
        invoice_id = _new_id("in_")
        customer = self.customers[subscription["customer"]]
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
            "hosted_invoice_url": f"{self.url}/i/{invoice_id}",
            "invoice_pdf": f"{self.url}/i/{invoice_id}/pdf",
            "lines": _list(lines, f"/v1/invoices/{invoice_id}/lines"),
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None if paid else now + 3 * _DAY,
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
        self.invoices[invoice_id] = invoice
        return invoice

    def _apply(self, subscription: dict[str, Any], name: str, value: Any) -> None:
        items = subscription["items"]["data"]
        if name == "price":
            price = _existing(self.prices, value, "price")
            if price["recurring"] is None:
                raise ValueError(f"price {value} is not recurring")
            items[0]["price"] = copy.deepcopy(price)
            items[0]["plan"] = _plan(price)
            subscription["currency"] = price["currency"]
        elif name == "quantity":
            items[0]["quantity"] = int(value)
        elif name == "cancel_at_period_end":
            subscription["cancel_at_period_end"] = bool(value)
            subscription["cancel_at"] = items[0]["current_period_end"] if value else None
            subscription["canceled_at"] = self.now() if value else None
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
        now = self.now()
        subscription["status"] = "canceled"
        subscription["canceled_at"] = subscription["canceled_at"] or now
        subscription["ended_at"] = now
        subscription["cancellation_details"] = {
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested",
        }

    def _entitlement_list(
        self, customer_id: str, url: str, lookup_keys: Sequence[str] | None = None
    ) -> dict[str, Any]:
        keys = self.entitlements.get(customer_id, []) if lookup_keys is None else lookup_keys
        data = []
        for key in keys:
            feature = self._features.setdefault(key, _new_id("feat_test_", 20))
            entitlement = self._entitlement_ids.setdefault(
                (customer_id, key), _new_id("ent_test_", 20)
            )
            data.append(
                {
                    "id": entitlement,
                    "object": "entitlements.active_entitlement",
                    "feature": feature,
                    "livemode": False,
                    "lookup_key": key,
                }
            )
        return _list(data, url)

    def _expanded(self, body: dict[str, Any], expand: Any) -> dict[str, Any]:
        paths = expand if isinstance(expand, list) else [expand]
        for path in paths:
            if not isinstance(path, str):
                raise _StripeError(400, "Invalid array", param="expand")
            self._expand_path(body, path.split("."), path)
        return body

    def _expand_path(self, value: Any, parts: list[str], path: str) -> None:
        if isinstance(value, list):
            for entry in value:
                self._expand_path(entry, parts, path)
            return
        if not isinstance(value, dict):
            raise _StripeError(400, f"This property cannot be expanded ({path}).")
        head, rest = parts[0], parts[1:]
        if head == "line_items" and value.get("object") == "checkout.session" and not rest:
            session_id = value["id"]
            value["line_items"] = _list(
                self._session_items[session_id], f"/v1/checkout/sessions/{session_id}/line_items"
            )
            return
        if head not in value:
            raise _StripeError(400, f"This property cannot be expanded ({path}).")
        if rest:
            self._expand_path(value[head], rest, path)
            return
        current = value[head]
        if isinstance(current, str):
            found = self._by_id(current)
            if found is None:
                raise _StripeError(400, f"This property cannot be expanded ({path}).")
            value[head] = copy.deepcopy(found)
        elif current is not None and not isinstance(current, dict):
            raise _StripeError(400, f"This property cannot be expanded ({path}).")

    def _by_id(self, object_id: str) -> dict[str, Any] | None:
        for store in (
            self.customers,
            self.subscriptions,
            self.invoices,
            self.prices,
            self.products,
            self.checkout_sessions,
        ):
            if object_id in store:
                return store[object_id]
        return None


def sign_stripe_webhook(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with a webhook body.

    Args:
        payload: The exact body that will be sent.
        secret: The endpoint's signing secret (``whsec_…``), used as it is, as UTF-8.
        timestamp: Unix seconds; now when None.

    Returns:
        ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>">``.
    """
    body = payload.encode() if isinstance(payload, str) else payload
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256)
    return f"t={signed_at},v1={digest.hexdigest()}"


def decode_form(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Decode form fields in Stripe's bracket notation into nested dicts and lists.

    ``line_items[0][price]=p`` gives ``{"line_items": [{"price": "p"}]}``; ``expand[]=a``
    appends; a hash whose keys are all indexes becomes a list, except under ``metadata``,
    whose keys are the user's.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY.fullmatch(key)
        parts = [key] if match is None else [match["head"], *_BRACKETED.findall(match["tail"])]
        node = root
        for depth, part in enumerate(parts):
            name = str(len(node)) if part == "" else part
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return {name: _listed(value, name == "metadata") for name, value in root.items()}


def _listed(value: Any, in_metadata: bool) -> Any:  # noqa: FBT001 - private, positional
    if not isinstance(value, dict):
        return value
    converted = {k: _listed(v, in_metadata or k == "metadata") for k, v in value.items()}
    if not in_metadata and converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _masked(key: str) -> str:
    match = _KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ""
    rest = key[len(prefix) :]
    shown = rest[-4:] if len(rest) > 4 else ""
    return prefix + "*" * (len(rest) - len(shown)) + shown


def _existing(store: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
    try:
        return store[object_id]
    except KeyError:
        raise KeyError(f"no {kind} {object_id!r} on this server") from None


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": copy.deepcopy(data), "has_more": False, "url": url}


def _refuse_unknown(params: dict[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for name in params:
        if name not in allowed:
            full = f"{prefix}[{name}]" if prefix else name
            raise _StripeError(
                400, f"Received unknown parameter: {full}", code="parameter_unknown", param=full
            )


def _param_name(name: str, prefix: str) -> str:
    return f"{prefix}[{name}]" if prefix else name


def _optional_string(params: dict[str, Any], name: str, prefix: str = "") -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _StripeError(400, "Invalid string: {...}", param=_param_name(name, prefix))
    return value


def _object(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _StripeError(400, "Invalid object", param=name)
    return value


def _metadata(params: dict[str, Any], name: str, prefix: str = "") -> dict[str, str]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _StripeError(400, "Invalid object", param=_param_name(name, prefix))
    # An empty value unsets the key, as it does at Stripe.
    return {key: entry for key, entry in value.items() if entry != ""}


def _integer(params: dict[str, Any], name: str, prefix: str = "") -> int | None:
    value = _optional_string(params, name, prefix)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _StripeError(
            400,
            f"Invalid integer: {value}",
            code="parameter_invalid_integer",
            param=_param_name(name, prefix),
        ) from None


def _boolean(params: dict[str, Any], name: str) -> bool | None:
    value = _optional_string(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _StripeError(400, f"Invalid boolean: {value}", param=name)
    return value == "true"


def _enum(params: dict[str, Any], name: str, choices: Sequence[str]) -> str | None:
    value = _optional_string(params, name)
    if value is not None and value not in choices:
        listed = ", ".join(choices[:-1]) + f", or {choices[-1]}"
        raise _StripeError(400, f"Invalid {name}: must be one of {listed}", param=name)
    return value


def _url(params: dict[str, Any], name: str) -> str | None:
    value = _optional_string(params, name)
    if value is not None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _StripeError(400, "Not a valid URL", code="url_invalid", param=name)
    return value


def _add_interval(start: int, interval: str, count: int) -> int:
    if interval == "day":
        return start + count * _DAY
    if interval == "week":
        return start + 7 * count * _DAY
    moment = datetime.fromtimestamp(start, UTC)
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    # Stripe keeps the day of the month, or the month's last day when it has fewer.
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _product(product_id: str, name: str, price_id: str, created: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": price_id,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def _plan(price: dict[str, Any]) -> dict[str, Any]:
    recurring = price["recurring"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": True,
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": None,
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def _invoice_line(
    invoice_id: str, subscription: dict[str, Any], item: dict[str, Any], amount: int
) -> dict[str, Any]:
    price = item["price"]
    return {
        "id": _new_id("il_"),
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
