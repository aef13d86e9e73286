"""Events: the snapshots Stripe sends to webhooks, and the signed requests that carry them."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from omnistack_core.testing._stripe.state import StripeState, new_id

API_VERSION = "2026-10-28.endive"


def snapshot_event(
    type: str,  # noqa: A002 - Stripe's own field name
    obj: Mapping[str, Any],
    *,
    previous_attributes: Mapping[str, Any] | None,
    created: int,
) -> dict[str, Any]:
    """A v1 snapshot event about ``obj`` (copied)."""
    data: dict[str, Any] = {"object": copy.deepcopy(dict(obj))}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def emit(
    state: StripeState,
    type: str,  # noqa: A002 - Stripe's own field name
    obj: Mapping[str, Any],
    *,
    previous_attributes: Mapping[str, Any] | None = None,
    request: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Record an event about ``obj`` among the server's events, dated now; return a copy.

    Args:
        state: The server.
        type: ``customer.subscription.updated``...
        obj: The object, as it is now.
        previous_attributes: The old values of what changed (``*.updated`` events).
        request: The API request that caused it; none for what happened in Stripe's pages.
    """
    event = snapshot_event(type, obj, previous_attributes=previous_attributes, created=state.now())
    if request is not None:
        event["request"] = request
    state.events.append(event)
    return copy.deepcopy(event)


def webhook_request(
    event: Mapping[str, Any] | bytes, secret: str, *, timestamp: int | None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook request carrying ``event``, signed with ``secret``."""
    body = (
        event
        if isinstance(event, bytes)
        else json.dumps(event, indent=2, ensure_ascii=False).encode()
    )
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign_stripe_webhook(body, secret, timestamp=timestamp),
    }


def sign_stripe_webhook(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with a webhook body.

    Args:
        payload: The exact body that will be sent.
        secret: The endpoint's signing secret (``whsec_…``), used as it is, as UTF-8.
        timestamp: Unix seconds; now when None.

    Returns:
        ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<payload>">``.
    """
    body = payload.encode() if isinstance(payload, str) else payload
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256)
    return f"t={signed_at},v1={digest.hexdigest()}"
