"""The service's jobs. Arguments arrive as JSON, so they are ids; rows are read inside the job.

The API enqueues them; ``arq examples.saas.worker.WorkerSettings`` runs them (or the API
process itself, without ``REDIS_URL`` in development).
"""

import logging

from sqlalchemy import select

from omnistack_core.auth import users
from omnistack_core.billing import BillingModule, StripeApiError
from omnistack_core.email import EmailModule, EmailTransientError, render_email
from omnistack_core.jobs import JobContext, Jobs, TransientError, job

from .settings import SaasSettings
from .tables import accounts

logger = logging.getLogger(__name__)


@job("saas.welcome_subscriber")
async def welcome_subscriber(ctx: JobContext, user_id: str, subscription_id: str) -> None:
    """Email a new subscriber what their plan unlocks, once per subscription.

    Raises:
        TransientError: The email provider could not take it now; the job is retried.
    """
    # The state now, not the webhook's: the subscription may be gone by the time this runs.
    subscription = await BillingModule.of(ctx.app).subscription(user_id)
    if subscription is None or subscription.id != subscription_id:
        logger.info("Subscription %s no longer grants access; no welcome sent", subscription_id)
        return
    async with ctx.database.session() as session:
        email = await session.scalar(select(users.c.email).where(users.c.id == user_id))
        name = await session.scalar(select(accounts.c.name).where(accounts.c.user_id == user_id))
    if email is None:
        logger.warning("User %s has no email address; no welcome sent", user_id)
        return
    settings: SaasSettings = ctx.app.state.settings
    sender = EmailModule.of(ctx.app)
    trial_end = subscription.trial_end
    rendered = render_email(
        "subscriber_welcome",
        {
            "product_name": settings.product_name,
            "name": name,
            "plan": subscription.plan or "paid",
            "trial_end": trial_end.date().isoformat() if trial_end is not None else None,
        },
        templates=sender.templates,
    )
    try:
        # The key is the same on every attempt, so a retried job never sends twice; 429s are
        # left to the queue's backoff rather than waited out while holding a worker.
        await sender.send(
            rendered.message(to=email),
            idempotency_key=f"subscriber-welcome/{subscription_id}",
            rate_limit_retries=0,
        )
    except EmailTransientError as exc:
        raise TransientError(str(exc), retry_after=exc.retry_after) from exc


@job("saas.report_ai_usage")
async def report_ai_usage(ctx: JobContext, user_id: str, tokens: int, usage_id: str) -> None:
    """Report one AI call's tokens to the Stripe meter, counted once however often this runs.

    Raises:
        TransientError: Stripe is rate-limiting or unreachable; the job is retried.
        StripeApiError: Stripe refused the event (a meter that does not exist, say).
    """
    settings: SaasSettings = ctx.app.state.settings
    if settings.usage_meter_event is None:
        return
    try:
        await BillingModule.of(ctx.app).report_usage(
            user_id, settings.usage_meter_event, tokens, identifier=usage_id
        )
    except StripeApiError as exc:
        if exc.transient:
            raise TransientError(str(exc), retry_after=exc.retry_after) from exc
        raise


JOBS: Jobs = [welcome_subscriber, report_ai_usage]
"""The service's jobs, for ``JobsModule(jobs=JOBS)``."""
