"""The billing module's exceptions.

::

    OmniStackError
     └── BillingError
          ├── StripeApiError            a Stripe call failed; also a ProblemError whose status
          │    │                        fits the client (card 402, rate limit 503 + Retry-After,
          │    │                        outage 503, our own misconfiguration 500)
          │    └── StripeCardError      the card was declined (402)
          ├── PaymentRequiredError      no subscription or feature that grants this (402)
          ├── BillingConflictError      the request contradicts the billing state (409)
          └── WebhookSignatureError     a webhook is not signed, fresh or well-formed (400)

``stripe`` exceptions are translated into these in ``stripe_api.py``, the one place that
talks to Stripe, so none reaches callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omnistack_core.errors import OmniStackError, ProblemError


class BillingError(OmniStackError):
    """Root of the billing module's errors."""


class StripeApiError(BillingError, ProblemError):
    """A Stripe API call failed.

    Args:
        status: The status the client gets.
        detail: What the client is told; never Stripe's raw message when the fault is ours.
        stripe_status: Stripe's HTTP status, when it answered.
        stripe_code: Stripe's error code (``resource_missing``), when it gave one.
        stripe_request_id: Stripe's ``Request-Id``, for its dashboard logs.
        retry_after: Seconds to wait before trying again, for a rate limit.
        transient: Whether trying again later may succeed (rate limit, outage, network).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        stripe_status: int | None = None,
        stripe_code: str | None = None,
        stripe_request_id: str | None = None,
        retry_after: int | None = None,
        transient: bool = False,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        ProblemError.__init__(self, status, detail, headers=headers, extensions=extensions)
        self.stripe_status = stripe_status
        self.stripe_code = stripe_code
        self.stripe_request_id = stripe_request_id
        self.retry_after = retry_after
        self.transient = transient


class StripeCardError(StripeApiError):
    """The customer's card was declined; ``decline_code`` says why when Stripe tells."""

    def __init__(self, detail: str, *, decline_code: str | None = None, **kwargs: Any) -> None:
        extensions = {"decline_code": decline_code} if decline_code else None
        super().__init__(402, detail, extensions=extensions, **kwargs)
        self.decline_code = decline_code


class PaymentRequiredError(BillingError, ProblemError):
    """The user has no subscription (or feature) that grants what they asked for.

    The 402 body tells the client what would: ``plans`` it can buy (and ``checkout``, the
    endpoint that sells them) or the ``feature`` it lacks. The detail names the checkout
    endpoint too, so an app rendering errors its own way (FastAPI's ``{"detail": ...}``)
    still tells the client where to pay.
    """

    def __init__(
        self,
        detail: str,
        *,
        plans: Sequence[str] = (),
        feature: str | None = None,
        checkout: str | None = None,
    ) -> None:
        extensions: dict[str, Any] = {"plans": list(plans)}
        if feature is not None:
            extensions["feature"] = feature
        if checkout is not None:
            extensions["checkout"] = checkout
            detail = f"{detail} Buy a plan with POST {checkout}."
        ProblemError.__init__(self, 402, detail, extensions=extensions)


class BillingConflictError(BillingError, ProblemError):
    """The request contradicts the billing state (already subscribed, no customer yet)."""

    def __init__(self, detail: str) -> None:
        ProblemError.__init__(self, 409, detail)


class WebhookSignatureError(BillingError):
    """A webhook was refused: no or bad signature, a stale or future timestamp, bad JSON."""
