"""Billing portal sessions: ``POST /v1/billing_portal/sessions``."""

from __future__ import annotations

import copy
from typing import Any

from omnistack_core.testing._stripe.endpoints import Call
from omnistack_core.testing._stripe.errors import missing, no_such
from omnistack_core.testing._stripe.params import optional_string, optional_url, refuse_unknown
from omnistack_core.testing._stripe.state import StripeState, new_id

# The top-level parameters the endpoint takes in this API version (from Stripe's OpenAPI
# spec); any other one is refused with ``parameter_unknown``, as Stripe does.
_PORTAL_CREATE = frozenset(
    {
        "after_expiration",
        "configuration",
        "customer",
        "customer_account",
        "expand",
        "flow_data",
        "locale",
        "on_behalf_of",
        "return_url",
    }
)


class PortalSessions:
    """The portal sessions, over the server's ``portal_sessions``."""

    def __init__(self, state: StripeState) -> None:
        self._state = state
        # The account's default portal configuration, named by sessions that ask for none.
        self._configuration = new_id("bpc_")

    def create(self, call: Call, _: str) -> dict[str, Any]:
        """``POST /v1/billing_portal/sessions``."""
        params = call.params
        refuse_unknown(params, _PORTAL_CREATE)
        customer_id = optional_string(params, "customer")
        if customer_id is None:
            raise missing("customer")
        if customer_id not in self._state.customers:
            raise no_such("customer", customer_id, "customer")
        session_id = new_id("bps_")
        self._state.portal_sessions[session_id] = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": optional_string(params, "configuration") or self._configuration,
            "created": self._state.now(),
            "customer": customer_id,
            "customer_account": None,
            "flow": None,
            "livemode": False,
            "locale": optional_string(params, "locale"),
            "on_behalf_of": None,
            "return_url": optional_url(params, "return_url"),
            "url": f"{self._state.url}/p/session/test_{session_id}",
        }
        return copy.deepcopy(self._state.portal_sessions[session_id])
