"""Delivery events: Resend's webhooks, verified, de-duplicated, turned into :class:`EmailEvent`.

Resend signs webhooks the Svix way: ``svix-id``, ``svix-timestamp`` and ``svix-signature``
headers, the signature being ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">``
under the secret's key (``whsec_<base64 key>``); several space-separated signatures are sent
while a secret rotates. A webhook is accepted only with a matching signature and a timestamp
within five minutes of now, either way.

Each webhook id is handled once: its row in ``email_webhook_events`` is written in the same
transaction as its effects (a hard bounce or complaint suppresses the address) and the app's
handlers; a handler that raises rolls everything back and the 500 makes Resend retry. A
webhook already handled is answered 200 and not handled again: Resend retries a delivery whose
answer it did not get, and a 4xx would make it retry for days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from omnistack_core.body_limit import read_bounded_body
from omnistack_core.db import Database
from omnistack_core.db.upsert import insert_ignoring_duplicate
from omnistack_core.email.errors import WebhookVerificationError
from omnistack_core.email.send_log import SendLog
from omnistack_core.email.settings import webhook_secret_bytes
from omnistack_core.email.suppression import (
    SuppressionList,
    SuppressionReason,
    email_webhook_events,
    masked_address,
    suppressible_address,
)
from omnistack_core.errors import ProblemError
from omnistack_core.installation import resource_of
from omnistack_core.openapi import problem_responses, webhook_operation

logger = logging.getLogger("omnistack.email")

WEBHOOK_TOLERANCE_SECONDS = 300
"""How far a webhook's timestamp may be from now, in the past or the future."""

# Resend's event types and their provider-neutral names; others pass through unchanged.
RESEND_EVENT_TYPES = {
    "email.sent": "sent",
    "email.scheduled": "scheduled",
    "email.delivered": "delivered",
    "email.delivery_delayed": "delayed",
    "email.bounced": "bounced",
    "email.complained": "complained",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.failed": "failed",
    "email.suppressed": "suppressed",
    "email.received": "received",
}
_ID_CHARS = 255
# Resend's bounce.type values (from Amazon SES): Permanent is a hard bounce.
_BOUNCE_TYPES = {"permanent": "hard", "transient": "soft", "temporary": "soft"}


@dataclass(frozen=True, slots=True)
class EmailEvent:
    """A delivery event, whatever the provider.

    Attributes:
        id: The webhook's id (unique per event; the same on redelivery).
        type: ``delivered``, ``bounced``, ``complained``, ``opened``, ``clicked``, ``sent``,
            ``delayed``, ``failed``, ``suppressed``, ``scheduled``, ``received``; other
            provider events keep the provider's type (``contact.created``).
        provider_type: The provider's own type (``email.bounced``).
        email_id: The provider's id of the email (what sending returned), when it has one.
        recipients: The addresses the event is about; what names no mailbox is left out.
        occurred_at: When it happened, by the provider's clock.
        bounce: ``hard`` (the address does not exist: suppressed), ``soft`` (a full mailbox,
            a server down), ``undetermined``, or None when the event is not a bounce.
        data: The provider's event data, as sent.
        provider: ``resend``.
    """

    id: str
    type: str
    provider_type: str
    email_id: str | None
    recipients: tuple[str, ...]
    occurred_at: datetime | None
    bounce: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    provider: str = "resend"


EmailEventHandler = Callable[[EmailEvent, AsyncSession], Awaitable[None]]
"""An app's handler: ``async def on_email_event(event, session)``. The session's transaction
also records the event as handled; raise to roll both back and have the provider retry."""


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = WEBHOOK_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check a Svix-signed webhook (Resend's scheme).

    Args:
        secret: The webhook's signing secret, ``whsec_…``.
        headers: The request's headers (any mapping with lower-case keys, or Starlette's).
        body: The raw request body, exactly as received.
        tolerance: Seconds the timestamp may be away from ``now``, either way.
        now: The current Unix time (for tests); the clock when None.

    Returns:
        The webhook's id (``svix-id``).

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is too old or in the
            future, or no signature matches.
    """
    msg_id = headers.get("svix-id") or ""
    timestamp = headers.get("svix-timestamp") or ""
    signatures = headers.get("svix-signature") or ""
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("svix-id, svix-timestamp and svix-signature are required")
    if len(msg_id) > _ID_CHARS:
        # Svix's ids are short (msg_ and 27 characters); the id is a key of 255 characters.
        raise WebhookVerificationError(f"svix-id is longer than {_ID_CHARS} characters")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("svix-timestamp is not a Unix time") from None
    skew = (time.time() if now is None else now) - sent_at
    if skew > tolerance:
        raise WebhookVerificationError(f"the timestamp is {skew:.0f} s old")
    if skew < -tolerance:
        raise WebhookVerificationError(f"the timestamp is {-skew:.0f} s in the future")
    key = webhook_secret_bytes(secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        # Only v1 (HMAC-SHA256) is ours to check; v1a is Svix's asymmetric scheme.
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no signature matches")


def resend_event(msg_id: str, payload: Mapping[str, Any]) -> EmailEvent:
    """The :class:`EmailEvent` of a Resend webhook's JSON payload.

    Raises:
        WebhookVerificationError: The payload is not shaped like a Resend event.
    """
    provider_type = payload.get("type")
    data = payload.get("data")
    if not isinstance(provider_type, str) or not isinstance(data, dict):
        raise WebhookVerificationError("the body is not a Resend event (type, data)")
    recipients = _recipients(msg_id, data.get("to"))
    bounce = None
    if provider_type == "email.bounced":
        details = data.get("bounce")
        kind = details.get("type", "") if isinstance(details, dict) else ""
        bounce = _BOUNCE_TYPES.get(str(kind).lower(), "undetermined")
    email_id = data.get("email_id")
    return EmailEvent(
        id=msg_id,
        type=RESEND_EVENT_TYPES.get(provider_type, provider_type),
        provider_type=provider_type,
        email_id=str(email_id) if email_id else None,
        recipients=recipients,
        occurred_at=_timestamp(payload.get("created_at")),
        bounce=bounce,
        data=data,
    )


def _recipients(msg_id: str, to: object) -> tuple[str, ...]:
    # Anything in ``to`` that names no mailbox is left out, so it is neither suppressed nor
    # handed to the app's handlers; the rest of the event still applies.
    candidates = to if isinstance(to, list) else [] if to is None else [to]
    kept: list[str] = []
    for candidate in candidates:
        if suppressible_address(candidate) is None:
            logger.warning(
                "Email event %s: skipped a recipient that is not an address (%s)",
                msg_id,
                masked_address(candidate),
            )
        else:
            kept.append(str(candidate))
    return tuple(kept)


def _storable(value: str, limit: int) -> str:
    # PostgreSQL's text types refuse NUL, and the columns are bounded.
    return value.replace("\x00", "")[:limit]


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _suppression_for(event: EmailEvent) -> tuple[SuppressionReason, str | None] | None:
    if event.type == "bounced" and event.bounce == "hard":
        details = event.data.get("bounce")
        message = details.get("message") if isinstance(details, dict) else None
        return "bounced", str(message) if message else None
    if event.type == "complained":
        return "complained", None
    if event.type == "suppressed":
        details = event.data.get("suppressed")
        message = details.get("message") if isinstance(details, dict) else None
        return "suppressed", str(message) if message else None
    return None


class WebhookReceiver:
    """Handles verified events once: records them, suppresses addresses, calls the handlers.

    The email module provides one (as :data:`WEBHOOKS`) while the app runs, when
    ``RESEND_WEBHOOK_SECRET`` is set.

    Args:
        secret: The signing secret (``RESEND_WEBHOOK_SECRET``).
        database: The app's database.
        suppressions: Where hard bounces and complaints go.
        handlers: The app's handlers, called in order.
        max_bytes: The largest body read.
    """

    def __init__(
        self,
        secret: str,
        database: Database,
        suppressions: SuppressionList,
        handlers: Sequence[EmailEventHandler] = (),
        *,
        max_bytes: int = 262_144,
    ) -> None:
        self._secret = secret
        self.database = database
        self.suppressions = suppressions
        self.handlers = list(handlers)
        self.max_bytes = max_bytes

    def verify(self, headers: Mapping[str, str], body: bytes) -> EmailEvent:
        """Verify a webhook and parse its event.

        Raises:
            WebhookVerificationError: The webhook is not authentic, fresh or well-formed.
        """
        msg_id = verify_webhook(self._secret, headers, body)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebhookVerificationError("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise WebhookVerificationError("the body is not a JSON object")
        return resend_event(msg_id, payload)

    async def handle(self, event: EmailEvent) -> bool:
        """Record ``event``, apply it, and call the handlers, in one transaction.

        Returns:
            False when the event had been handled before (nothing is done again).
        """
        async with self.database.session() as session:
            first = await insert_ignoring_duplicate(
                session,
                email_webhook_events,
                {
                    "id": event.id,
                    "type": _storable(event.provider_type, 100),
                    "email_id": _storable(event.email_id or "", 255) or None,
                    "received_at": datetime.now(UTC),
                },
            )
            if not first:
                return False
            if event.email_id:
                await SendLog.report(session, _storable(event.email_id, 255), event.type)
            suppression = _suppression_for(event)
            if suppression is not None:
                reason, detail = suppression
                for address in event.recipients:
                    await self.suppressions.add(
                        address, reason, detail=detail, event_id=event.id, session=session
                    )
            for handler in self.handlers:
                await handler(event, session)
        return True


WEBHOOKS = "email.webhooks"
"""The name the email module provides its :class:`WebhookReceiver` under."""

router = APIRouter(prefix="/email", tags=["email"])


@router.post(
    "/webhook",
    responses=problem_responses(400, 413),
    openapi_extra=webhook_operation(
        "A Resend event, as Resend sends it.", ["svix-id", "svix-timestamp", "svix-signature"]
    ),
)
async def receive_webhook(request: Request) -> dict[str, str]:
    """Receive a Resend webhook: 200 once handled (or already handled), 400 when refused."""
    receiver = resource_of(request.app, WEBHOOKS, WebhookReceiver)
    body = await read_bounded_body(request, receiver.max_bytes, what="Webhook")
    try:
        event = receiver.verify(request.headers, body)
    except WebhookVerificationError as exc:
        # Why, for whoever sets the webhook up; the caller learns only that it was refused.
        logger.warning("Refused an email webhook: %s", exc)
        raise ProblemError(400, "The webhook could not be verified.") from None
    if await receiver.handle(event):
        logger.info("Handled email event %s (%s)", event.id, event.provider_type)
        return {"status": "handled"}
    logger.info("Email event %s was already handled", event.id)
    return {"status": "duplicate"}
