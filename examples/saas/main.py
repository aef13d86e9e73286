"""The service: ``uvicorn examples.saas.main:create_service --factory``.

``create_service`` composes the modules, wires Stripe's webhooks and the AI usage hook to the
service's jobs, and mounts its routes.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core import (
    API_PREFIX,
    Installation,
    Module,
    create_app,
    load_settings,
    settings_class_for,
)
from omnistack_core.ai import AIModule, UsageRecord
from omnistack_core.auth import AuthModule
from omnistack_core.billing import BillingModule, StripeEvent, billing_customers
from omnistack_core.email import EmailModule
from omnistack_core.jobs import JobsModule

from .api import router
from .jobs import JOBS, report_ai_usage, welcome_subscriber
from .settings import SaasSettings
from .tables import metadata

logger = logging.getLogger(__name__)


@asynccontextmanager
async def create_tables(app: FastAPI) -> AsyncIterator[None]:
    """Create the service's and the modules' tables where they are missing.

    So that the example runs with no migration step. A service creates them with migrations
    instead (the template's Alembic setup): ``create_all`` never changes an existing table.
    """
    module_metadata = [m for module in Installation.of(app).modules for m in module.metadata()]
    async with app.state.database.engine.begin() as connection:
        for tables in (metadata, *module_metadata):
            await connection.run_sync(tables.create_all)
    yield


def create_service(settings: SaasSettings | None = None) -> FastAPI:
    """Build the service from ``settings``, or from the environment when None.

    Raises:
        ConfigurationError: Listing every problem with the settings.
    """
    # The two hooks below run while the app serves requests, by when `app` is assigned.

    async def subscription_created(event: StripeEvent, session: AsyncSession) -> None:
        customer_id = event.object.get("customer")
        user_id = await session.scalar(
            select(billing_customers.c.user_id).where(
                billing_customers.c.customer_id == customer_id
            )
        )
        if user_id is None:  # made outside the service's Checkout (the Dashboard, say)
            logger.info("Subscription %s has no user of this service", event.object.get("id"))
            return
        queue = JobsModule.of(app)
        # In the event's transaction (the jobs outbox): queued exactly when the event is
        # recorded as processed, so neither a failed event nor a redelivered one sends mail.
        await queue.enqueue(welcome_subscriber, user_id, str(event.object["id"]), session=session)

    async def meter_ai_usage(record: UsageRecord) -> None:
        meter = loaded.usage_meter_event
        if record.user_id is None or meter is None:
            return
        queue = JobsModule.of(app)
        # A job, not a call to Stripe here: the answer does not wait for Stripe, and a failed
        # report is retried (a usage hook's exception is only logged). The record's id makes
        # both the job and Stripe's meter event count once.
        await queue.enqueue(
            report_ai_usage,
            record.user_id,
            record.usage.total_tokens,
            record.id,
            job_id=f"ai-usage:{record.id}",
        )

    # Started in this order and stopped in reverse: the jobs module last, so that jobs still
    # running in-process at shutdown (no REDIS_URL) finish while the email, billing and AI
    # clients they use are open.
    modules: list[Module[Any]] = [
        AuthModule(),
        EmailModule(),
        BillingModule(handlers={"customer.subscription.created": [subscription_created]}),
        AIModule(on_usage=[meter_ai_usage]),
        JobsModule(jobs=JOBS),
    ]
    # Loaded with the modules' own requirements (BILLING_PLANS, a model's key), so one error
    # lists every problem.
    loaded = settings or load_settings(settings_class_for(modules, base=SaasSettings))
    app = create_app(loaded, modules=modules, lifespan=create_tables, title=loaded.product_name)
    app.include_router(router, prefix=API_PREFIX)
    return app
