"""Meter events: ``POST /v1/billing/meter_events``, the usage reports of metered billing."""

from __future__ import annotations

import copy
from typing import Any

from omnistack_core.testing._stripe.endpoints import Call
from omnistack_core.testing._stripe.errors import StripeError, missing
from omnistack_core.testing._stripe.params import optional_string, refuse_unknown
from omnistack_core.testing._stripe.state import StripeState, new_id


class MeterEvents:
    """The meter events, over the server's ``meter_events``."""

    def __init__(self, state: StripeState) -> None:
        self._state = state

    def create(self, call: Call, _: str) -> dict[str, Any]:
        """``POST /v1/billing/meter_events``."""
        params = call.params
        refuse_unknown(params, frozenset({"event_name", "payload", "identifier", "timestamp"}))
        event_name = optional_string(params, "event_name")
        if event_name is None:
            raise missing("event_name")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            raise missing("payload")
        customer_id = payload.get("stripe_customer_id")
        if not customer_id:
            raise missing("payload[stripe_customer_id]")
        if customer_id not in self._state.customers:
            raise StripeError(
                400,
                f"No such customer: '{customer_id}'",
                code="resource_missing",
                param="payload[stripe_customer_id]",
            )
        value = payload.get("value")
        try:
            float(str(value))
        except ValueError:
            raise StripeError(
                400, "The payload value must be a number.", param="payload[value]"
            ) from None
        identifier = optional_string(params, "identifier") or new_id("mev_", 24)
        if any(event["identifier"] == identifier for event in self._state.meter_events):
            raise StripeError(
                400,
                f"An event with identifier {identifier} already exists.",
                code="resource_already_exists",
                param="identifier",
            )
        timestamp = params.get("timestamp")
        event = {
            "object": "billing.meter_event",
            "created": self._state.now(),
            "event_name": event_name,
            "identifier": identifier,
            "livemode": False,
            "payload": dict(payload),
            "timestamp": int(timestamp) if timestamp else self._state.now(),
        }
        self._state.meter_events.append(event)
        return copy.deepcopy(event)
