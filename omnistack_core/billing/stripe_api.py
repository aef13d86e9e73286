"""The calls the billing module makes to Stripe, through the official SDK's async methods.

This is the only file that imports ``stripe`` for API calls, and it is imported when billing
first talks to Stripe, not with the module: the SDK takes a fifth of a second to import.
Every ``stripe`` exception is translated here into a :class:`StripeApiError` whose status
suits the client; objects come back as plain dicts, the same shape webhooks carry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import stripe
from pydantic import SecretStr

from omnistack_core.billing.errors import StripeApiError, StripeCardError

logger = logging.getLogger("omnistack.billing")

_RATE_LIMIT_RETRY_AFTER = 2  # seconds; Stripe's 429s carry no Retry-After of their own


class StripeApi:
    """A Stripe client for the billing module's few calls.

    Args:
        secret_key: ``STRIPE_SECRET_KEY``.
        api_base: ``STRIPE_API_BASE``.
        timeout: Seconds one request may take.
        max_network_retries: Retries of a request that failed in transit, was rate limited
            or hit a 5xx; the SDK reuses the idempotency key on each.
    """

    def __init__(
        self, secret_key: SecretStr, *, api_base: str, timeout: float, max_network_retries: int
    ) -> None:
        self._http = _HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key.get_secret_value(),
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    async def create_customer(
        self, *, user_id: str, email: str | None, idempotency_key: str
    ) -> str:
        """Create the customer of ``user_id``; returns its id (``cus_…``)."""
        params: dict[str, Any] = {"metadata": {"user_id": user_id}}
        if email:
            params["email"] = email
        customer = await self._call(
            "create a customer",
            self._client.v1.customers.create_async(
                params=cast("Any", params), options={"idempotency_key": idempotency_key}
            ),
        )
        return str(customer["id"])

    async def create_checkout_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a Checkout Session; returns it (``id``, ``url``...)."""
        return await self._call(
            "create a Checkout Session",
            self._client.v1.checkout.sessions.create_async(
                params=cast("Any", dict(params)), options={"idempotency_key": idempotency_key}
            ),
        )

    async def create_portal_session(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a Customer Portal session; returns it (``url``...)."""
        return await self._call(
            "create a Customer Portal session",
            self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url},
                options={"idempotency_key": idempotency_key},
            ),
        )

    async def create_meter_event(
        self,
        *,
        event_name: str,
        customer_id: str,
        value: int,
        identifier: str,
        timestamp: int | None = None,
    ) -> None:
        """Report usage to a Stripe meter, counted once per ``identifier``.

        A repeat within a day is answered from Stripe's idempotency cache; a later one is
        refused as a duplicate, which is success too.
        """
        params: dict[str, Any] = {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
            "identifier": identifier,
        }
        if timestamp is not None:
            params["timestamp"] = timestamp
        try:
            await self._client.v1.billing.meter_events.create_async(
                params=cast("Any", params), options={"idempotency_key": identifier}
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_already_exists":
                raise translate_error("report usage to a meter", exc) from exc
        except stripe.StripeError as exc:
            raise translate_error("report usage to a meter", exc) from exc

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe has it now."""
        return await self._call(
            "retrieve a subscription",
            self._client.v1.subscriptions.retrieve_async(subscription_id),
        )

    async def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """Every subscription of a customer, canceled ones included."""
        return await self._list_all(
            "list subscriptions",
            self._client.v1.subscriptions.list_async,
            {"customer": customer_id, "status": "all"},
        )

    async def list_active_entitlements(self, customer_id: str) -> list[str]:
        """The lookup keys of the features a customer is entitled to now."""
        entitlements = await self._list_all(
            "list active entitlements",
            self._client.v1.entitlements.active_entitlements.list_async,
            {"customer": customer_id},
        )
        return [str(item["lookup_key"]) for item in entitlements if item.get("lookup_key")]

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped

    async def _list_all(
        self, action: str, list_page: Callable[..., Awaitable[Any]], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self._call(action, list_page(params={**params, "limit": 100}))
            data = page.get("data") or []
            items.extend(data)
            if not page.get("has_more") or not data:
                return items
            params = {**params, "starting_after": str(data[-1]["id"])}

    async def _call(self, action: str, call: Awaitable[Any]) -> dict[str, Any]:
        try:
            result = await call
        except stripe.StripeError as exc:
            raise translate_error(action, exc) from exc
        return cast("dict[str, Any]", result.to_dict())


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, handing httpx the form body as ``content``.

    The SDK passes the encoded form as ``data=<str>``, which httpx deprecates: every POST
    warns, and test suites that treat warnings as errors (ours, and generated services')
    see each Stripe call fail.
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data.encode() if isinstance(data, str) else data
        return args, kwargs


def translate_error(action: str, exc: stripe.StripeError) -> StripeApiError:
    """The :class:`StripeApiError` for a failed Stripe call, logged when the fault is ours."""
    context: dict[str, Any] = {
        "stripe_status": exc.http_status,
        "stripe_code": exc.code,
        "stripe_request_id": exc.request_id,
    }
    if isinstance(exc, stripe.CardError):
        decline_code = exc.error.decline_code if exc.error is not None else None
        message = exc.user_message or "The card was declined."
        return StripeCardError(str(message), decline_code=decline_code, **context)
    if isinstance(exc, stripe.RateLimitError):
        logger.warning("Stripe rate-limited a request to %s", action)
        return StripeApiError(
            503,
            "Billing is busy; try again shortly.",
            retry_after=_RATE_LIMIT_RETRY_AFTER,
            transient=True,
            **context,
        )
    if isinstance(exc, stripe.APIConnectionError | stripe.APIError):
        logger.warning("Stripe could not %s: %s", action, exc.user_message)
        return StripeApiError(
            503, "Billing is unavailable; try again shortly.", transient=True, **context
        )
    if isinstance(exc, stripe.IdempotencyError):
        return StripeApiError(409, "A conflicting billing request is in progress.", **context)
    # A bad key, missing permission or invalid parameter: our configuration, not the client's
    # request. Stripe's message (which masks the key) goes to the log; the client gets none
    # of it.
    logger.error(
        "Stripe refused to %s (%s, %s, request %s): %s",
        action,
        exc.http_status,
        exc.code,
        exc.request_id,
        exc.user_message,
    )
    return StripeApiError(500, "Billing is misconfigured; the error was logged.", **context)
