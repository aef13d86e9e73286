"""``StripeBilling``: customers, Checkout, the Customer Portal, subscription state and repair.

``BillingModule.of(app)`` while the app runs. Every call to Stripe carries an
idempotency key, so a retry (the SDK's, or a client's) is never applied twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from omnistack_core.billing.errors import BillingConflictError
from omnistack_core.billing.plans import Plan
from omnistack_core.billing.settings import BillingSettings
from omnistack_core.billing.subscriptions import (
    ACTIVE_STATUSES,
    Subscription,
    customer_of_user,
    features_of_user,
    granting,
    link_customer,
    subscription_from_stripe,
    subscriptions_of_user,
    write_subscription,
)
from omnistack_core.billing.tables import billing_customers, billing_subscriptions
from omnistack_core.db import Database
from omnistack_core.errors import ProblemError
from omnistack_core.request_context import current_request_id

if TYPE_CHECKING:
    from omnistack_core.billing.stripe_api import StripeApi

logger = logging.getLogger("omnistack.billing")


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A Checkout Session to send the customer to.

    Attributes:
        id: Stripe's ``cs_…``.
        url: The Checkout page.
    """

    id: str
    url: str


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What ``billing sync`` did.

    Attributes:
        customers: Customers whose subscriptions were fetched.
        subscriptions: Subscriptions Stripe returned.
        corrected: Subscriptions whose stored state differed from Stripe's and was replaced.
    """

    customers: int
    subscriptions: int
    corrected: int


@dataclass(frozen=True, slots=True)
class BillingAccount:
    """A user's billing as the database holds it.

    Attributes:
        user_id: The auth provider's user id.
        customer_id: Their Stripe customer.
        email: The email the customer was created with.
        subscriptions: Their subscriptions, those granting access first.
        features: Their active Stripe Entitlements features.
    """

    user_id: str
    customer_id: str
    email: str | None
    subscriptions: tuple[Subscription, ...]
    features: frozenset[str]


class StripeBilling:
    """Billing for the service's users, on Stripe.

    Args:
        settings: The billing settings.
        database: The app's database.
        plans: Plans by name (``BILLING_PLANS`` and those given in code).
    """

    def __init__(
        self, settings: BillingSettings, database: Database, plans: Mapping[str, Plan]
    ) -> None:
        self.settings = settings
        self.database = database
        self.plans = dict(plans)
        self._api: StripeApi | None = None

    @property
    def api(self) -> StripeApi:
        """The Stripe client, built on first use (the SDK loads then, not at start-up).

        Raises:
            ProblemError: 503 when ``STRIPE_SECRET_KEY`` is not set (development only; the
                settings require it elsewhere).
        """
        if self._api is None:
            key = self.settings.stripe_secret_key
            if key is None:
                raise ProblemError(503, "Billing is not configured: STRIPE_SECRET_KEY is unset.")
            from omnistack_core.billing.stripe_api import StripeApi  # noqa: PLC0415

            self._api = StripeApi(
                key,
                api_base=self.settings.stripe_api_base,
                timeout=self.settings.stripe_timeout,
                max_network_retries=self.settings.stripe_max_network_retries,
            )
        return self._api

    async def aclose(self) -> None:
        """Close the Stripe client's connections."""
        if self._api is not None:
            await self._api.aclose()

    def plan(self, name: str) -> Plan:
        """The plan called ``name``.

        Raises:
            ProblemError: 422 naming the plans there are.
        """
        plan = self.plans.get(name)
        if plan is None:
            raise ProblemError(
                422,
                f"There is no plan called {name!r}.",
                extensions={"plans": sorted(self.plans)},
            )
        return plan

    async def customer_id(self, user_id: str, email: str | None = None) -> str:
        """The user's Stripe customer, created on first need and reused after."""
        async with self.database.session() as session:
            existing = await customer_of_user(session, user_id)
        if existing is not None:
            return existing
        # Two first checkouts at once send one key: Stripe creates one customer for both.
        customer_id = await self.api.create_customer(
            user_id=user_id, email=email, idempotency_key=_key("customer", user_id)
        )
        async with self.database.session() as session:
            if await link_customer(session, user_id, customer_id, email):
                return customer_id
            return await customer_of_user(session, user_id) or customer_id

    async def checkout(
        self, user_id: str, plan_name: str, *, email: str | None = None, quantity: int = 1
    ) -> CheckoutSession:
        """A Checkout Session that subscribes the user to a plan.

        Raises:
            ProblemError: 422 for an unknown plan.
            BillingConflictError: The user already has an active subscription (change it in
                the Customer Portal instead).
            StripeApiError: Stripe refused or could not be reached.
        """
        api = self.api  # 503 before anything else when Stripe is not configured
        plan = self.plan(plan_name)
        if await self.subscription(user_id) is not None:
            raise BillingConflictError(
                "You already have an active subscription; change it in the customer portal."
            )
        customer_id = await self.customer_id(user_id, email)
        success_url = self.settings.billing_success_url or self.settings.local_url
        metadata = {"user_id": user_id, "plan": plan.name}
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if plan.trial_days:
            subscription_data["trial_period_days"] = plan.trial_days
        session = await api.create_checkout_session(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": user_id,
                "line_items": [{"price": plan.price, "quantity": quantity}],
                "success_url": success_url,
                "cancel_url": self.settings.billing_cancel_url or success_url,
                "metadata": metadata,
                "subscription_data": subscription_data,
            },
            idempotency_key=_key("checkout", user_id, plan.name, str(quantity), _attempt()),
        )
        return CheckoutSession(id=str(session["id"]), url=str(session["url"]))

    async def portal_url(self, user_id: str) -> str:
        """A Customer Portal session's URL, where the user manages their subscription.

        Raises:
            BillingConflictError: The user has never checked out (no Stripe customer).
        """
        api = self.api  # 503 before anything else when Stripe is not configured
        async with self.database.session() as session:
            customer_id = await customer_of_user(session, user_id)
        if customer_id is None:
            raise BillingConflictError("You have no billing account yet; subscribe first.")
        return_url = (
            self.settings.billing_portal_return_url
            or self.settings.billing_success_url
            or self.settings.local_url
        )
        portal = await api.create_portal_session(
            customer_id=customer_id,
            return_url=return_url,
            idempotency_key=_key("portal", user_id, _attempt()),
        )
        return str(portal["url"])

    async def subscription(
        self,
        user_id: str,
        *,
        plans: Collection[str] | None = None,
        statuses: Collection[str] = ACTIVE_STATUSES,
    ) -> Subscription | None:
        """The user's subscription in one of ``statuses`` (and ``plans``), or None."""
        async with self.database.session() as session:
            return granting(
                await subscriptions_of_user(session, user_id), plans=plans, statuses=statuses
            )

    async def latest_subscription(self, user_id: str) -> Subscription | None:
        """The user's most relevant subscription in any status.

        One granting access if there is one, else the one whose period ended last.
        """
        async with self.database.session() as session:
            subscriptions = await subscriptions_of_user(session, user_id)
        return subscriptions[0] if subscriptions else None

    async def features(self, user_id: str) -> frozenset[str]:
        """The lookup keys of the user's active Stripe Entitlements features."""
        async with self.database.session() as session:
            return await features_of_user(session, user_id)

    async def report_usage(
        self,
        user_id: str,
        event_name: str,
        value: int,
        *,
        identifier: str,
        timestamp: int | None = None,
    ) -> bool:
        """Report a user's usage to the Stripe meter ``event_name`` (usage-based prices).

        Args:
            user_id: Whose usage; a user without a Stripe customer is not reported.
            event_name: The meter's event name, as set up in Stripe.
            value: The quantity (tokens, calls...).
            identifier: Unique per usage: a retried report with the same one is counted once.
            timestamp: When it happened (Unix seconds); now when None.

        Returns:
            Whether Stripe has it (counted once, however often it is reported); False for a
            user without a Stripe customer.
        """
        async with self.database.session() as session:
            customer_id = await customer_of_user(session, user_id)
        if customer_id is None:
            logger.info("Usage of user %s not metered: no Stripe customer yet", user_id)
            return False
        await self.api.create_meter_event(
            event_name=event_name,
            customer_id=customer_id,
            value=value,
            identifier=identifier,
            timestamp=timestamp,
        )
        return True

    async def sync(self) -> SyncReport:
        """Fetch every known customer's subscriptions from Stripe and store Stripe's state.

        Rows that already hold Stripe's state are left alone; the rest are replaced.
        """
        async with self.database.session() as session:
            customer_ids = list(await session.scalars(select(billing_customers.c.customer_id)))
        return await self._sync_customers(customer_ids)

    async def sync_user(self, user_id: str) -> SyncReport:
        """:meth:`sync` for one user: their customer's subscriptions, fetched from Stripe."""
        async with self.database.session() as session:
            customer_id = await customer_of_user(session, user_id)
        return await self._sync_customers([customer_id] if customer_id else [])

    async def account(self, user_id: str) -> BillingAccount | None:
        """What the database holds of ``user_id``'s billing; None before their first checkout."""
        table = billing_customers
        async with self.database.session() as session:
            customer = (
                await session.execute(select(table).where(table.c.user_id == user_id))
            ).first()
            if customer is None:
                return None
            return BillingAccount(
                user_id=user_id,
                customer_id=customer.customer_id,
                email=customer.email,
                subscriptions=tuple(await subscriptions_of_user(session, user_id)),
                features=await features_of_user(session, user_id),
            )

    async def _sync_customers(self, customer_ids: list[str]) -> SyncReport:
        customers = subscriptions = corrected = 0
        for customer_id in customer_ids:
            customers += 1
            for obj in await self.api.list_subscriptions(customer_id):
                subscriptions += 1
                if await self._store_fetched(subscription_from_stripe(obj, self.plans)):
                    corrected += 1
        return SyncReport(customers=customers, subscriptions=subscriptions, corrected=corrected)

    async def _store_fetched(self, subscription: Subscription) -> bool:
        table = billing_subscriptions
        async with self.database.session() as session:
            stored = (
                await session.execute(select(table).where(table.c.id == subscription.id))
            ).first()
            if stored is not None and _same_state(stored._asdict(), subscription):
                return False
            # Stamped with the stored time, so any event Stripe creates after this still
            # applies: no dependence on this machine's clock agreeing with Stripe's.
            created = int(stored.event_created) if stored is not None else 0
            await write_subscription(session, subscription, created, fetched=True)
        logger.info("Corrected subscription %s from Stripe", subscription.id)
        return True


def _same_state(stored: Mapping[str, Any], subscription: Subscription) -> bool:
    fields = ("status", "price_id", "plan", "quantity", "cancel_at_period_end")
    if any(stored[name] != getattr(subscription, name) for name in fields):
        return False
    return all(
        _timestamp(stored[name]) == _timestamp(getattr(subscription, name))
        for name in ("current_period_end", "trial_end")
    )


def _timestamp(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp())


def _key(*parts: str) -> str:
    """An idempotency key from ``parts``: hashed, so user ids of any length fit Stripe's 255."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"omnistack-{parts[0]}-{digest}"


def _attempt() -> str:
    # One key per client request: the SDK's retries of it reuse the key; a new request from
    # the client (say, after the customer abandoned a Checkout page) gets a new session.
    return current_request_id() or uuid.uuid4().hex
