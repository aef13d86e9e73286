"""The send job: what :func:`~omnistack_core.email.send_email_later` queues.

It needs the ``jobs`` extra; the email module contributes it to the app's jobs
(``EmailModule.jobs()``) when the extra is installed, so API processes and workers alike
run it.
"""

from __future__ import annotations

from typing import Any

from omnistack_core.email.errors import EmailTransientError
from omnistack_core.email.message import EmailMessage
from omnistack_core.email.sender import SEND_JOB_NAME, EmailSender
from omnistack_core.installation import resource_of
from omnistack_core.jobs import JobContext, TransientError, job

SEND_JOB_ATTEMPTS = 8
"""Attempts before a send that keeps failing transiently is recorded as failed: with the
jobs module's doubling backoff, several minutes of provider trouble."""


@job(SEND_JOB_NAME, max_attempts=SEND_JOB_ATTEMPTS)
async def send_email_job(ctx: JobContext, message: dict[str, Any], idempotency_key: str) -> None:
    """Send a queued message through the app's sender with its idempotency key.

    Args:
        ctx: The job's context; its app runs the email module.
        message: :meth:`EmailMessage.to_dict` of the message.
        idempotency_key: The same on every attempt, so a retry never delivers twice.

    Raises:
        TransientError: The provider could not take it now (429, 5xx, network): retried
            after the provider's ``Retry-After`` at least.
        EmailDeliveryError: The provider refused it; the job fails at once.
        InvalidMessageError: The queued data is not a valid message; the job fails at once.
    """
    sender = resource_of(ctx.app, "email", EmailSender)
    try:
        # No waiting inside the job: the queue's backoff retries without holding a worker.
        await sender.send(
            EmailMessage.from_dict(message), idempotency_key=idempotency_key, rate_limit_retries=0
        )
    except EmailTransientError as exc:
        raise TransientError(str(exc), retry_after=exc.retry_after) from exc
