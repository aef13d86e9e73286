"""``BillingModule``: plugs Stripe billing into ``create_app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData
from starlette.applications import Starlette

from omnistack_core.billing.plans import Plan
from omnistack_core.billing.router import router
from omnistack_core.billing.settings import BillingSettings
from omnistack_core.billing.stripe_billing import StripeBilling
from omnistack_core.billing.tables import billing_metadata
from omnistack_core.billing.webhook_ingest import WEBHOOKS, BillingEventHandler, WebhookIngest
from omnistack_core.installation import Installation, resource_of
from omnistack_core.migration_branch import MigrationBranch
from omnistack_core.module import Module
from omnistack_core.module_settings import DEPLOYED, Requirement

logger = logging.getLogger("omnistack.billing")


class BillingModule(Module[BillingSettings]):
    """Sells subscriptions through Stripe Checkout and keeps their state from Stripe's events.

    Install it with ``create_app(modules=[AuthModule(), BillingModule()])`` (it bills the
    signed-in user, so it needs the auth module): it mounts ``/api/v1/billing``
    (``POST /checkout``, ``POST /portal``, ``GET /subscription``, ``POST /webhook``). While
    the app runs, ``BillingModule.of(app)`` is the
    :class:`~omnistack_core.billing.StripeBilling`. Gate routes with
    :func:`~omnistack_core.billing.require_subscription` and
    :func:`~omnistack_core.billing.require_feature`.

    Args:
        plans: Plans besides those in ``BILLING_PLANS`` (a plan here wins on a name clash).
        handlers: The app's event handlers by Stripe event type (``"*"`` for every event);
            more can be added with :meth:`on`.
    """

    name = "billing"
    settings_class = BillingSettings
    requires = ("auth",)

    def __init__(
        self,
        *,
        plans: Sequence[Plan] = (),
        handlers: Mapping[str, Sequence[BillingEventHandler]] | None = None,
    ) -> None:
        self.plans = list(plans)
        self.handlers = {kind: list(found) for kind, found in (handlers or {}).items()}

    @classmethod
    def of(cls, app: Starlette) -> StripeBilling:
        """The running app's :class:`~omnistack_core.billing.StripeBilling`.

        Raises:
            ModuleNotRunningError: The app does not run the billing module.
        """
        return resource_of(app, cls.name, StripeBilling)

    @classmethod
    def webhooks(cls, app: Starlette) -> WebhookIngest:
        """The running app's webhook ingest: ``replay_failed()`` runs failed events again.

        Raises:
            ModuleNotRunningError: The app does not run the billing module.
        """
        return resource_of(app, WEBHOOKS, WebhookIngest)

    def on(self, event_type: str) -> Callable[[BillingEventHandler], BillingEventHandler]:
        """Register a handler of ``event_type`` (``"*"``: every event), as a decorator.

        ::

            @billing.on("invoice.paid")
            async def send_receipt(event: StripeEvent, session: AsyncSession) -> None: ...
        """

        def register(handler: BillingEventHandler) -> BillingEventHandler:
            self.handlers.setdefault(event_type, []).append(handler)
            return handler

        return register

    def routers(self, settings: BillingSettings) -> Sequence[APIRouter]:  # noqa: ARG002
        """``/billing``: checkout, portal, subscription and webhook."""
        return [router]

    def metadata(self) -> Sequence[MetaData]:
        """The ``billing_*`` tables."""
        return [billing_metadata]

    def migrations(self) -> MigrationBranch:
        """The ``omnistack_billing`` branch: the revisions of the ``billing_*`` tables."""
        return MigrationBranch("omnistack_billing", "omnistack_core.billing:migrations")

    def requirements(self) -> Sequence[Requirement]:
        """``BILLING_PLANS`` outside development, unless plans are given here."""
        if self.plans:
            return []
        return [
            Requirement(
                "billing_plans",
                "billing",
                environments=DEPLOYED,
                hint='the plans sold, e.g. {"pro": "price_123"}',
            )
        ]

    def summary(self, settings: BillingSettings) -> str:
        """Stripe, and the plans sold."""
        plans = sorted({*settings.billing_plans, *(plan.name for plan in self.plans)})
        stripe = "Stripe" if settings.stripe_secret_key else "no STRIPE_SECRET_KEY (503s)"
        return f"{stripe}; plans: {', '.join(plans) or 'none yet'}"

    def lifespan(
        self, app: FastAPI, settings: BillingSettings
    ) -> AbstractAsyncContextManager[None]:
        """Build the billing service; close its Stripe connections at shutdown."""
        return self._running(app, settings)

    @asynccontextmanager
    async def _running(self, app: FastAPI, settings: BillingSettings) -> AsyncIterator[None]:
        installation = Installation.of(app)
        plans = {**settings.billing_plans, **{plan.name: plan for plan in self.plans}}
        billing = StripeBilling(settings, installation.require_database(), plans)
        installation.provide(self.name, billing)
        installation.provide(WEBHOOKS, WebhookIngest(billing, self.handlers))
        if settings.stripe_secret_key is None:
            logger.warning("STRIPE_SECRET_KEY is unset: billing answers 503 until it is set")
        else:
            logger.info("Billing sells %s", ", ".join(sorted(plans)) or "no plans yet")
        try:
            yield
        finally:
            await billing.aclose()
