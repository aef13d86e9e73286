"""Entitlements: dependencies that answer 402 unless the user has paid, and a job helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, Request
from starlette.applications import Starlette

from omnistack_core.auth import CurrentUser, Principal
from omnistack_core.billing.errors import PaymentRequiredError
from omnistack_core.billing.stripe_billing import StripeBilling
from omnistack_core.billing.subscriptions import ACTIVE_STATUSES, Subscription
from omnistack_core.installation import resource_of
from omnistack_core.openapi import declare_problems

CHECKOUT_PATH = "/api/v1/billing/checkout"
"""Where a client buys a plan when the billing routes are mounted at ``/api/v1`` (402
answers name the path where they are mounted)."""

_CHECKOUT_ROUTE = "create_checkout"


def billing_of(app: Starlette) -> StripeBilling:
    """The running app's :class:`StripeBilling`: ``BillingModule.of(app)``.

    Raises:
        ModuleNotRunningError: The app does not run the billing module.
    """
    return resource_of(app, "billing", StripeBilling)


# Stripe unreachable, or not configured (development).
@declare_problems(503)
async def _billing(request: Request) -> StripeBilling:  # async: no thread-pool handoff
    return billing_of(request.app)


def checkout_path(request: Request) -> str:
    """The path of ``POST /billing/checkout`` in the app serving ``request``."""
    return request.url_for(_CHECKOUT_ROUTE).path


Billing = Annotated[StripeBilling, Depends(_billing)]
"""The app's billing: ``async def handler(billing: Billing)``."""


def require_subscription(
    *, plans: Collection[str] | None = None, statuses: Collection[str] = ACTIVE_STATUSES
) -> Callable[..., Awaitable[Subscription]]:
    """A dependency that returns the signed-in user's subscription, or answers 402.

    Args:
        plans: Plan names that qualify; any plan when None.
        statuses: Statuses that qualify; ``active`` and ``trialing`` by default (add
            ``past_due`` to keep access while Stripe retries a failed payment).

    The 402 problem+json body lists the ``plans`` that would qualify and the ``checkout``
    endpoint that sells them.
    """
    wanted = frozenset(plans) if plans is not None else None

    @declare_problems(402)
    async def subscription_required(
        user: CurrentUser, billing: Billing, request: Request
    ) -> Subscription:
        subscription = await billing.subscription(user.id, plans=wanted, statuses=statuses)
        if subscription is None:
            offered = sorted(wanted if wanted is not None else billing.plans)
            raise PaymentRequiredError(
                f"This needs an active subscription to {_one_of(offered)}.",
                plans=offered,
                checkout=checkout_path(request),
            )
        return subscription

    return subscription_required


def require_feature(feature: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that answers 402 unless the user is entitled to ``feature``.

    ``feature`` is a Stripe Entitlements feature's lookup key; customers get features from
    the products they subscribe to, and Stripe tells the service through
    ``entitlements.active_entitlement_summary.updated`` events.
    """

    @declare_problems(402)
    async def feature_required(user: CurrentUser, billing: Billing, request: Request) -> Principal:
        if feature not in await billing.features(user.id):
            raise PaymentRequiredError(
                f"This needs the {feature!r} feature, which your plan does not include.",
                plans=sorted(billing.plans),
                feature=feature,
                checkout=checkout_path(request),
            )
        return user

    return feature_required


async def has_active_subscription(
    app: Starlette,
    user: Principal | str,
    *,
    plans: Collection[str] | None = None,
    statuses: Collection[str] = ACTIVE_STATUSES,
) -> bool:
    """Whether a user has a qualifying subscription; for jobs and scripts.

    Args:
        app: The running app (in a job, ``ctx.app``).
        user: The user, or their id.
        plans: Plan names that qualify; any plan when None.
        statuses: Statuses that qualify; ``active`` and ``trialing`` by default.
    """
    user_id = user if isinstance(user, str) else user.id
    subscription = await billing_of(app).subscription(user_id, plans=plans, statuses=statuses)
    return subscription is not None


def _one_of(plans: list[str]) -> str:
    if not plans:
        return "a plan"
    if len(plans) == 1:
        return f"the {plans[0]!r} plan"
    return "one of the plans " + ", ".join(repr(plan) for plan in plans)
