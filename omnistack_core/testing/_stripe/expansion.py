"""Expansion: ``expand[]`` replaces the ids in an answer with the objects this server knows."""

from __future__ import annotations

import copy
from typing import Any

from omnistack_core.testing._stripe.checkout_sessions import CheckoutSessions
from omnistack_core.testing._stripe.errors import StripeError
from omnistack_core.testing._stripe.state import StripeState


class Expansion:
    """Expands answers with the server's objects, and Checkout Sessions' ``line_items``."""

    def __init__(self, state: StripeState, checkout_sessions: CheckoutSessions) -> None:
        self._state = state
        self._checkout_sessions = checkout_sessions

    def expanded(self, body: dict[str, Any], expand: Any) -> dict[str, Any]:
        """``body`` with each of the ``expand`` paths (``latest_invoice``, ``a.b``) expanded."""
        paths = expand if isinstance(expand, list) else [expand]
        for path in paths:
            if not isinstance(path, str):
                raise StripeError(400, "Invalid array", param="expand")
            self._expand_path(body, path.split("."), path)
        return body

    def _expand_path(self, value: Any, parts: list[str], path: str) -> None:
        if isinstance(value, list):
            for entry in value:
                self._expand_path(entry, parts, path)
            return
        if not isinstance(value, dict):
            raise StripeError(400, f"This property cannot be expanded ({path}).")
        head, rest = parts[0], parts[1:]
        if head == "line_items" and value.get("object") == "checkout.session" and not rest:
            value["line_items"] = self._checkout_sessions.line_items(value["id"])
            return
        if head not in value:
            raise StripeError(400, f"This property cannot be expanded ({path}).")
        if rest:
            self._expand_path(value[head], rest, path)
            return
        current = value[head]
        if isinstance(current, str):
            found = self._by_id(current)
            if found is None:
                raise StripeError(400, f"This property cannot be expanded ({path}).")
            value[head] = copy.deepcopy(found)
        elif current is not None and not isinstance(current, dict):
            raise StripeError(400, f"This property cannot be expanded ({path}).")

    def _by_id(self, object_id: str) -> dict[str, Any] | None:
        for store in (
            self._state.customers,
            self._state.subscriptions,
            self._state.invoices,
            self._state.prices,
            self._state.products,
            self._state.checkout_sessions,
        ):
            if object_id in store:
                return store[object_id]
        return None
