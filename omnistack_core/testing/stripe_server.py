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

import copy
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from omnistack_core.testing._stripe.authentication import authenticate
from omnistack_core.testing._stripe.checkout_sessions import (
    CHECKOUT_SESSION_LIFETIME_SECONDS,
    CheckoutSessions,
)
from omnistack_core.testing._stripe.customers import Customers
from omnistack_core.testing._stripe.endpoints import Call, Endpoint
from omnistack_core.testing._stripe.entitlements import Entitlements
from omnistack_core.testing._stripe.errors import StripeError
from omnistack_core.testing._stripe.events import (
    API_VERSION,
    sign_stripe_webhook,
    snapshot_event,
    webhook_request,
)
from omnistack_core.testing._stripe.expansion import Expansion
from omnistack_core.testing._stripe.idempotency import IDEMPOTENCY_WINDOW_SECONDS, IdempotentAnswers
from omnistack_core.testing._stripe.invoices import Invoices
from omnistack_core.testing._stripe.meter_events import MeterEvents
from omnistack_core.testing._stripe.params import decode_form, request_params
from omnistack_core.testing._stripe.portal_sessions import PortalSessions
from omnistack_core.testing._stripe.prices import Prices
from omnistack_core.testing._stripe.staged_failures import StagedFailure, StagedFailures
from omnistack_core.testing._stripe.state import new_id
from omnistack_core.testing._stripe.subscriptions import Subscriptions
from omnistack_core.testing.local_server import LocalServer

__all__ = [
    "API_VERSION",
    "CHECKOUT_SESSION_LIFETIME_SECONDS",
    "IDEMPOTENCY_WINDOW_SECONDS",
    "LocalStripe",
    "StripeRequest",
    "decode_form",
    "sign_stripe_webhook",
]

_JSON = "application/json"


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
        self.api_key = api_key or new_id("sk_test_", 99)
        self.webhook_secret = webhook_secret or new_id("whsec_", 32)
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
        self._account = new_id("acct_", 16)
        self._offset = 0.0
        self._staged = StagedFailures()
        self._idempotency = IdempotentAnswers(self._clock)
        # One lock for everything: requests are answered one at a time, as if each were
        # atomic at Stripe, and simulations never interleave with them.
        self._lock = threading.RLock()
        # Each resource's handler reads and writes the state above (the server is their
        # StripeState) and keeps only what no other resource reads.
        customers = Customers(self)
        invoices = Invoices(self)
        portal_sessions = PortalSessions(self)
        meter_events = MeterEvents(self)
        self._prices = Prices(self)
        self._subscriptions = Subscriptions(self, invoices)
        self._checkout_sessions = CheckoutSessions(self, customers, self._subscriptions)
        self._entitlements = Entitlements(self)
        self._expansion = Expansion(self, self._checkout_sessions)
        self._routes: list[tuple[str, re.Pattern[str], Endpoint]] = [
            ("POST", re.compile(r"/v1/customers"), customers.create),
            ("GET", re.compile(r"/v1/customers/([^/]+)"), customers.retrieve),
            ("POST", re.compile(r"/v1/checkout/sessions"), self._checkout_sessions.create),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self._checkout_sessions.retrieve),
            (
                "GET",
                re.compile(r"/v1/checkout/sessions/([^/]+)/line_items"),
                self._checkout_sessions.list_line_items,
            ),
            ("POST", re.compile(r"/v1/billing_portal/sessions"), portal_sessions.create),
            ("GET", re.compile(r"/v1/subscriptions"), self._subscriptions.list_matching),
            ("GET", re.compile(r"/v1/subscriptions/([^/]+)"), self._subscriptions.retrieve),
            ("DELETE", re.compile(r"/v1/subscriptions/([^/]+)"), self._subscriptions.delete),
            ("GET", re.compile(r"/v1/invoices/([^/]+)"), invoices.retrieve),
            ("GET", re.compile(r"/v1/prices/([^/]+)"), self._prices.retrieve_price),
            ("GET", re.compile(r"/v1/products/([^/]+)"), self._prices.retrieve_product),
            (
                "GET",
                re.compile(r"/v1/entitlements/active_entitlements"),
                self._entitlements.list_active,
            ),
            ("POST", re.compile(r"/v1/billing/meter_events"), meter_events.create),
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
        with self._lock:
            return self._prices.add(
                price_id,
                product=product,
                unit_amount=unit_amount,
                currency=currency,
                interval=interval,
                lookup_key=lookup_key,
                interval_count=interval_count,
                product_name=product_name,
            )

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
        failure = StagedFailure(status, type, code, message, decline_code, param, retry_after, path)
        with self._lock:
            self._staged.add(failure, times)

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
            return self._checkout_sessions.complete(session_id, email=email, name=name)

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
            return self._subscriptions.update(subscription_id, changes)

    def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription ends now: ``customer.subscription.deleted``.

        Raises:
            KeyError: No such subscription.
        """
        with self._lock:
            return self._subscriptions.cancel(subscription_id)

    def fail_payment(self, subscription_id: str) -> list[dict[str, Any]]:
        """A renewal payment fails: ``invoice.payment_failed``, then ``past_due``.

        The invoice is open, for the items' current period; the periods do not move.

        Returns:
            ``[invoice.payment_failed, customer.subscription.updated]``.

        Raises:
            KeyError: No such subscription.
        """
        with self._lock:
            return self._subscriptions.fail_payment(subscription_id)

    def set_entitlements(self, customer_id: str, lookup_keys: Sequence[str]) -> dict[str, Any]:
        """The customer's active entitlements become the features with ``lookup_keys``.

        Returns:
            ``entitlements.active_entitlement_summary.updated``; feature and entitlement ids
            stay the same across calls for the same lookup key.

        Raises:
            KeyError: No such customer.
        """
        with self._lock:
            return self._entitlements.set(customer_id, lookup_keys)

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
        return snapshot_event(
            type,
            obj,
            previous_attributes=previous_attributes,
            created=self.now() if created is None else created,
        )

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
        return webhook_request(
            event, self.webhook_secret if secret is None else secret, timestamp=timestamp
        )

    # Handling -------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        target = urlsplit(handler.path)
        method = handler.command
        request_id = new_id("req_", 14)
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
            params = request_params(method, query, headers, raw)
            self._staged.raise_next(path, headers)
            authenticate(headers, self.api_key)
            key = headers.get("idempotency-key") if method == "POST" else None
            if key is not None:
                replay = self._idempotency.replay(key, method, path, params)
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
            body = self._route(Call(method, path, params, request_id, key))
            if key is not None:
                self._idempotency.keep(
                    key, method=method, path=path, params=params, body=body, request_id=request_id
                )
        except StripeError as error:
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

    def _route(self, call: Call) -> dict[str, Any]:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match is not None and method == call.method:
                body = handler(call, unquote(match.group(1)) if pattern.groups else "")
                expand = call.params.get("expand")
                if expand:
                    body = self._expansion.expanded(body, expand)
                return body
        raise StripeError(
            404,
            f"Unrecognized request URL ({call.method}: {call.path}). Please see "
            "https://docs.stripe.com or we can help at https://support.stripe.com/.",
        )
