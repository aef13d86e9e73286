"""Sending: now (:func:`send_email`) or from a job (:func:`send_email_later`).

Both go through an :class:`EmailSender`: it fills in ``EMAIL_FROM``, drops suppressed
recipients (and skips a message left with nobody to send to), gives every send an
idempotency key, and waits out a provider's 429 a few times before giving up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from omnistack_core.email.errors import EmailError, EmailTransientError, InvalidMessageError
from omnistack_core.email.message import EmailMessage
from omnistack_core.email.provider import EmailProvider
from omnistack_core.email.send_log import SendLog
from omnistack_core.email.suppression import SuppressionList, mailbox, masked_address
from omnistack_core.email.templates import EmailTemplates
from omnistack_core.installation import resource_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from omnistack_core.jobs import JobQueue

logger = logging.getLogger("omnistack.email")

SEND_JOB_NAME = "omnistack.email.send"
"""The name the send job is defined under (``@job``) and queued with."""

_BACKOFF_BASE = 0.5
MAX_IDEMPOTENCY_KEY_LENGTH = 256
"""Resend's limit on an idempotency key."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one send.

    Attributes:
        status: ``sent``, or ``skipped`` when every ``to`` address is suppressed.
        provider: The provider's name.
        idempotency_key: The key the send carried.
        message_id: The provider's id of the message; None when skipped.
        suppressed: The recipients left out because they are suppressed.
    """

    status: Literal["sent", "skipped"]
    provider: str
    idempotency_key: str
    message_id: str | None = None
    suppressed: tuple[str, ...] = ()


class EmailSender:
    """Sends messages through a provider; ``EmailModule.of(app)`` is the app's.

    Args:
        provider: Where messages go.
        default_from: The sender of messages that name none (``EMAIL_FROM``).
        suppressions: Addresses not to send to; no check when None.
        templates: The templates :meth:`render` uses.
        rate_limit_retries: Times a 429 is waited out before the send fails.
        rate_limit_max_wait: The longest one such wait; a longer ``Retry-After`` fails at once.
        send_log: Where each send is recorded (sent, skipped, failed) once the provider
            answered; nothing is recorded when None.
    """

    def __init__(
        self,
        provider: EmailProvider,
        *,
        default_from: str | None = None,
        suppressions: SuppressionList | None = None,
        templates: EmailTemplates | None = None,
        rate_limit_retries: int = 3,
        rate_limit_max_wait: float = 10.0,
        send_log: SendLog | None = None,
    ) -> None:
        self.provider = provider
        self.default_from = default_from
        self.suppressions = suppressions
        self.templates = templates or EmailTemplates()
        self.rate_limit_retries = rate_limit_retries
        self.rate_limit_max_wait = rate_limit_max_wait
        self.send_log = send_log

    async def send(
        self,
        message: EmailMessage,
        *,
        idempotency_key: str | None = None,
        rate_limit_retries: int | None = None,
    ) -> SendResult:
        """Send ``message`` now.

        Args:
            message: The message; ``from_`` defaults to ``EMAIL_FROM``.
            idempotency_key: Makes repeated sends of this message deliver it once (within
                the provider's window: 24 hours for Resend). A fresh key when None, so two
                sends of equal messages are two emails.
            rate_limit_retries: Overrides the number of 429s waited out (0: none).

        Returns:
            What happened: sent, or skipped because every ``to`` address is suppressed.

        Raises:
            InvalidMessageError: No sender and no ``EMAIL_FROM``, or a key over 256 characters.
            EmailDeliveryError: The provider refused the message.
            EmailTransientError: The provider could not take it now (after the retries).
        """
        if message.from_ is None:
            if self.default_from is None:
                raise InvalidMessageError(["from: no sender: pass from_ or set EMAIL_FROM"])
            message = message.replace(from_=self.default_from)
        key = idempotency_key or f"email-{uuid.uuid4()}"
        _check_key(key)
        suppressed: tuple[str, ...] = ()
        if self.suppressions is not None:
            found = await self.suppressions.find(message.recipients)
            if found:
                remaining, suppressed = _without(message, found)
                if remaining is None:
                    logger.info(
                        "Skipped an email to suppressed addresses: %s (key %s)",
                        _masked(suppressed),
                        key,
                    )
                    await self._record(message, key, "skipped")
                    return SendResult("skipped", self.provider.name, key, None, suppressed)
                logger.info("Left suppressed addresses out of an email: %s", _masked(suppressed))
                message = remaining
        try:
            message_id = await self._send_with_retries(
                message,
                key,
                self.rate_limit_retries if rate_limit_retries is None else rate_limit_retries,
            )
        except EmailError as exc:
            await self._record(message, key, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        await self._record(message, key, "sent", message_id=message_id)
        logger.info(
            "Sent an email through %s to %d recipients, id %s",
            self.provider.name,
            len(message.recipients),
            message_id,
        )
        return SendResult("sent", self.provider.name, key, message_id, suppressed)

    async def _record(
        self,
        message: EmailMessage,
        key: str,
        status: str,
        *,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        # After the provider answered, in a transaction of its own, never raising: a lost
        # record must not turn a sent email into a failed send that a job would retry.
        if self.send_log is not None:
            await self.send_log.record(
                idempotency_key=key,
                provider=self.provider.name,
                status=status,
                subject=message.subject,
                recipients=message.recipients,
                message_id=message_id,
                error=error,
            )

    async def _send_with_retries(self, message: EmailMessage, key: str, retries: int) -> str:
        attempt = 0
        while True:
            try:
                return await self.provider.send(message, idempotency_key=key)
            except EmailTransientError as exc:
                if not exc.rate_limited or attempt >= retries:
                    raise
                # The provider's Retry-After when it sent one, else exponential with jitter.
                wait = exc.retry_after
                if wait is None:
                    wait = _BACKOFF_BASE * 2**attempt * (1 + random.random())  # noqa: S311
                if wait > self.rate_limit_max_wait:
                    raise
                attempt += 1
                logger.info(
                    "%s rate-limited a send; retry %d of %d in %.2f s",
                    self.provider.name,
                    attempt,
                    retries,
                    wait,
                )
                await asyncio.sleep(wait)

    async def aclose(self) -> None:
        """Close the provider."""
        await self.provider.aclose()


def _without(
    message: EmailMessage, suppressed: set[str]
) -> tuple[EmailMessage | None, tuple[str, ...]]:
    def keep(addresses: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(address for address in addresses if mailbox(address) not in suppressed)

    left_out = tuple(a for a in message.recipients if mailbox(a) in suppressed)
    to = keep(message.to)
    if not to:
        return None, left_out
    return message.replace(to=to, cc=keep(message.cc), bcc=keep(message.bcc)), left_out


async def email_sender(connection: HTTPConnection) -> EmailSender:
    """FastAPI dependency: the app's :class:`EmailSender` (async: no thread-pool handoff)."""
    return _sender_of(connection.app)


Mailer = Annotated[EmailSender, Depends(email_sender)]
"""The app's sender: ``async def handler(mailer: Mailer)``, then ``await mailer.send(...)``."""


def _sender_of(target: EmailSender | Starlette | HTTPConnection) -> EmailSender:
    if isinstance(target, EmailSender):
        return target
    app = target.app if isinstance(target, HTTPConnection) else target
    return resource_of(app, "email", EmailSender)


async def send_email(
    via: EmailSender | Starlette | HTTPConnection,
    message: EmailMessage,
    *,
    idempotency_key: str | None = None,
) -> SendResult:
    """Send ``message`` now.

    A 429 from the provider is waited out (``EMAIL_RATE_LIMIT_RETRIES`` times, each wait at
    most ``EMAIL_RATE_LIMIT_MAX_WAIT``) with the same idempotency key, so a retry never
    sends twice. For anything that need not hold up a request, prefer
    :func:`send_email_later`.

    Args:
        via: An :class:`EmailSender`, or the app (or a request) whose sender to use
            (``EmailModule.of(app)``).
        message: The message.
        idempotency_key: Makes repeated calls deliver the message once; fresh when None.

    Returns:
        Sent, or skipped because every ``to`` address is suppressed.

    Raises:
        InvalidMessageError: No sender and no ``EMAIL_FROM``, or a key over 256 characters.
        EmailDeliveryError: The provider refused the message.
        EmailTransientError: The provider could not take it, even after waiting.
    """
    return await _sender_of(via).send(message, idempotency_key=idempotency_key)


async def send_email_later(
    queue: JobQueue,
    message: EmailMessage,
    *,
    idempotency_key: str | None = None,
    defer_by: float | timedelta | None = None,
    session: AsyncSession | None = None,
) -> str | None:
    """Queue ``message`` to be sent by the send job, retried until it goes through.

    The idempotency key is ``message.content_key()`` (a hash of everything the message says)
    unless one is given, and it is both the job's id and the provider's idempotency key:
    enqueueing the same message twice queues one job, and a retried job (after a timeout, a
    429, a crash) never delivers the email twice. Pass your own key (``welcome/<user id>``)
    when equal messages must still go out separately, or when the message can differ between
    retries of your own code.

    Args:
        queue: The app's job queue (``JobsModule.of(app)``, or the ``Queue`` dependency);
            its app must run the email module, which gives the queue the send job.
        message: The message.
        idempotency_key: The send's key; derived from the message when None.
        defer_by: Send no sooner than this.
        session: Enqueue within this transaction (the jobs outbox): the email is queued only
            if it commits.

    Returns:
        The job's id (``email:<key>``), or None when that job was already queued.

    Raises:
        InvalidMessageError: The key is over 256 characters.
        UnknownJobError: The queue's app does not run the email module.
    """
    key = idempotency_key or message.content_key()
    _check_key(key)
    return await queue.enqueue(
        SEND_JOB_NAME,
        message.to_dict(),
        key,
        job_id=f"email:{key}",
        defer_by=defer_by,
        session=session,
    )


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidMessageError(
            [f"idempotency_key: must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"]
        )


def _masked(addresses: tuple[str, ...]) -> str:
    # Log lines are read by more people than the mailing list: no whole address in them.
    return ", ".join(masked_address(address) for address in addresses)
