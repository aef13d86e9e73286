"""Stripe's webhook signatures checked, and the verified body read as a :class:`StripeEvent`.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 under the endpoint's secret and sends
``Stripe-Signature: t=<unix>,v1=<hex>``. The SDK checks the signature and rejects old
timestamps; it accepts any timestamp in the future, so this module also rejects those beyond
the tolerance (a clock far ahead is a replay waiting to happen). Several secrets are tried,
so one can be rotated without downtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omnistack_core.billing.errors import WebhookSignatureError


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """A verified Stripe event (a v1 snapshot event).

    Attributes:
        id: Stripe's ``evt_…``; the same on every delivery of the event.
        type: ``customer.subscription.updated``...
        created: When Stripe created the event, Unix seconds.
        object: ``data.object``: the object the event is about, as it was then.
        previous_attributes: ``data.previous_attributes``: the fields that changed, before.
        livemode: Whether it happened in live mode.
        payload: The whole event, as received.
    """

    id: str
    type: str
    created: int
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any] = field(default_factory=dict)
    livemode: bool = False
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Check ``Stripe-Signature`` against the raw body with each secret in turn.

    Raises:
        WebhookSignatureError: No header, a malformed one, no secret matching, or a
            timestamp more than ``tolerance`` seconds from now either way.
    """
    import stripe  # noqa: PLC0415 - the SDK loads with the first webhook, not at start-up

    if not header:
        raise WebhookSignatureError("no Stripe-Signature header")
    if not secrets:
        raise WebhookSignatureError("no webhook secret is configured")
    failure = "no signature matches"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            failure = exc.user_message or failure
        except UnicodeDecodeError:
            raise WebhookSignatureError("the body is not UTF-8") from None
        else:
            break
    else:
        raise WebhookSignatureError(failure)
    signed_at = _timestamp(header)
    ahead = signed_at - (time.time() if now is None else now)
    if ahead > tolerance:
        raise WebhookSignatureError(f"the timestamp is {ahead:.0f} s in the future")


def parse_event(body: bytes) -> StripeEvent:
    """The :class:`StripeEvent` of a verified webhook body.

    Raises:
        WebhookSignatureError: The body is not a Stripe event.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookSignatureError("the body is not JSON") from None
    return event_from_payload(payload)


def event_from_payload(payload: Any) -> StripeEvent:
    """The :class:`StripeEvent` of a decoded event (a webhook body, a stored payload).

    Raises:
        WebhookSignatureError: ``payload`` is not a Stripe v1 snapshot event.
    """
    if not isinstance(payload, dict) or payload.get("object") != "event":
        raise WebhookSignatureError("the body is not a Stripe event")
    event_id, event_type, created = payload.get("id"), payload.get("type"), payload.get("created")
    data = payload.get("data")
    if (
        not isinstance(event_id, str)
        or not event_id
        or len(event_id) > 255
        or not isinstance(event_type, str)
        or not event_type
        or len(event_type) > 100
        # PostgreSQL's text types refuse NUL: no id or type of Stripe's holds one.
        or "\x00" in event_id + event_type
        or not isinstance(created, int)
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        raise WebhookSignatureError("the event lacks id, type, created or data.object")
    previous = data.get("previous_attributes")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        object=data["object"],
        previous_attributes=previous if isinstance(previous, dict) else {},
        livemode=bool(payload.get("livemode")),
        payload=payload,
    )


def _timestamp(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            return int(value)
    raise WebhookSignatureError("the Stripe-Signature header has no timestamp")  # pragma: no cover
