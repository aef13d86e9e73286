"""What the resources share of their server: its objects by id, its clock, its events."""

from __future__ import annotations

import secrets
import string
from typing import Any, Protocol

DAY = 24 * 60 * 60
_ALPHABET = string.ascii_letters + string.digits


class StripeState(Protocol):
    """The state a ``LocalStripe`` holds and its resources' handlers read and write.

    The server's public attributes are the one copy of it, so that a test sees at once what
    an endpoint or a simulation changed; a handler keeps for itself only what no other
    resource reads.
    """

    customers: dict[str, dict[str, Any]]
    prices: dict[str, dict[str, Any]]
    products: dict[str, dict[str, Any]]
    checkout_sessions: dict[str, dict[str, Any]]
    portal_sessions: dict[str, dict[str, Any]]
    subscriptions: dict[str, dict[str, Any]]
    invoices: dict[str, dict[str, Any]]
    entitlements: dict[str, list[str]]
    events: list[dict[str, Any]]
    meter_events: list[dict[str, Any]]

    @property
    def url(self) -> str:
        """Where the server answers; hosted pages' URLs start with it."""
        ...

    def now(self) -> int:
        """The server's clock, in Unix seconds."""
        ...


def new_id(prefix: str, length: int = 24) -> str:
    """An id as Stripe makes them: ``prefix`` and ``length`` random letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def existing(store: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
    """The object a simulation names; a ``KeyError`` that says so when there is none."""
    try:
        return store[object_id]
    except KeyError:
        raise KeyError(f"no {kind} {object_id!r} on this server") from None
