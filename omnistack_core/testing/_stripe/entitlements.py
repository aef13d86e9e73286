"""Entitlements: ``GET /v1/entitlements/active_entitlements``, and setting a customer's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnistack_core.testing._stripe.endpoints import Call, list_object, page
from omnistack_core.testing._stripe.errors import missing, no_such
from omnistack_core.testing._stripe.events import emit
from omnistack_core.testing._stripe.params import optional_string, refuse_unknown
from omnistack_core.testing._stripe.state import StripeState, existing, new_id

# The parameters the endpoint takes in this API version (from Stripe's OpenAPI spec); any
# other one is refused with ``parameter_unknown``, as Stripe does.
_ENTITLEMENTS_LIST = frozenset({"customer", "ending_before", "expand", "limit", "starting_after"})


class Entitlements:
    """Active entitlements, over the server's ``entitlements`` (lookup keys by customer)."""

    def __init__(self, state: StripeState) -> None:
        self._state = state
        # Stripe's ids for a feature and for a customer's entitlement to it stay the same.
        self._features: dict[str, str] = {}
        self._entitlement_ids: dict[tuple[str, str], str] = {}

    def list_active(self, call: Call, _: str) -> dict[str, Any]:
        """``GET /v1/entitlements/active_entitlements?customer=…``."""
        params = call.params
        refuse_unknown(params, _ENTITLEMENTS_LIST)
        customer_id = optional_string(params, "customer")
        if customer_id is None:
            raise missing("customer")
        if customer_id not in self._state.customers:
            raise no_such("customer", customer_id, "customer")
        url = "/v1/entitlements/active_entitlements"
        listed = self._entitlement_list(customer_id, url)
        return page(params, listed["data"], "entitlements.active_entitlement", url)

    def set(self, customer_id: str, lookup_keys: Sequence[str]) -> dict[str, Any]:
        """The customer's entitlements become ``lookup_keys``: the summary's update event."""
        existing(self._state.customers, customer_id, "customer")
        before = self._state.entitlements.get(customer_id)
        self._state.entitlements[customer_id] = list(lookup_keys)
        summary = {
            "object": "entitlements.active_entitlement_summary",
            "customer": customer_id,
            "entitlements": self._entitlement_list(
                customer_id, f"/v1/customer/{customer_id}/entitlements"
            ),
            "livemode": False,
        }
        previous = None
        if before is not None:
            previous = {
                "entitlements": self._entitlement_list(
                    customer_id, f"/v1/customer/{customer_id}/entitlements", before
                )
            }
        return emit(
            self._state,
            "entitlements.active_entitlement_summary.updated",
            summary,
            previous_attributes=previous,
        )

    def _entitlement_list(
        self, customer_id: str, url: str, lookup_keys: Sequence[str] | None = None
    ) -> dict[str, Any]:
        keys = self._state.entitlements.get(customer_id, []) if lookup_keys is None else lookup_keys
        data = []
        for key in keys:
            feature = self._features.setdefault(key, new_id("feat_test_", 20))
            entitlement = self._entitlement_ids.setdefault(
                (customer_id, key), new_id("ent_test_", 20)
            )
            data.append(
                {
                    "id": entitlement,
                    "object": "entitlements.active_entitlement",
                    "feature": feature,
                    "livemode": False,
                    "lookup_key": key,
                }
            )
        return list_object(data, url)
