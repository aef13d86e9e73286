"""Customers: ``/v1/customers``, and the customers Checkout creates."""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from omnistack_core.testing._stripe.endpoints import Call, retrieve
from omnistack_core.testing._stripe.errors import StripeError
from omnistack_core.testing._stripe.params import (
    optional_metadata,
    optional_string,
    refuse_unknown,
)
from omnistack_core.testing._stripe.state import StripeState, new_id

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The top-level parameters each endpoint takes in this API version (from Stripe's OpenAPI
# spec); any other one is refused with ``parameter_unknown``, as Stripe does.
_CUSTOMER_CREATE = frozenset(
    {
        "address",
        "balance",
        "business_name",
        "cash_balance",
        "description",
        "email",
        "expand",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "metadata",
        "name",
        "next_invoice_sequence",
        "payment_method",
        "phone",
        "preferred_locales",
        "shipping",
        "source",
        "tax",
        "tax_exempt",
        "tax_id_data",
        "test_clock",
        "validate",
    }
)


class Customers:
    """The customer endpoints, over the server's ``customers``."""

    def __init__(self, state: StripeState) -> None:
        self._state = state

    def create(self, call: Call, _: str) -> dict[str, Any]:
        """``POST /v1/customers``."""
        params = call.params
        refuse_unknown(params, _CUSTOMER_CREATE)
        email = optional_string(params, "email")
        if email is not None and not _EMAIL.fullmatch(email):
            raise StripeError(
                400, f"Invalid email address: {email}", code="email_invalid", param="email"
            )
        customer = self.add(
            email=email,
            description=optional_string(params, "description"),
            metadata=optional_metadata(params, "metadata"),
            name=optional_string(params, "name"),
            phone=optional_string(params, "phone"),
        )
        return copy.deepcopy(customer)

    def retrieve(self, call: Call, customer_id: str) -> dict[str, Any]:
        """``GET /v1/customers/{id}``."""
        return retrieve(call, self._state.customers, customer_id, "customer")

    def add(
        self,
        *,
        email: str | None,
        name: str | None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        """A new customer, kept among the server's; the object itself, not a copy."""
        customer_id = new_id("cus_", 14)
        self._state.customers[customer_id] = {
            "id": customer_id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self._state.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": description,
            "discount": None,
            "email": email,
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": metadata or {},
            "name": name,
            "next_invoice_sequence": 1,
            "phone": phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        return self._state.customers[customer_id]
