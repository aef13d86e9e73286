"""Prices and their products: the catalogue tests add to, ``/v1/prices`` and ``/v1/products``."""

from __future__ import annotations

from typing import Any

from omnistack_core.testing._stripe.endpoints import Call, retrieve
from omnistack_core.testing._stripe.state import StripeState, new_id

_INTERVALS = ("day", "week", "month", "year")


class Prices:
    """The catalogue, over the server's ``prices`` and ``products``."""

    def __init__(self, state: StripeState) -> None:
        self._state = state

    def add(
        self,
        price_id: str | None,
        *,
        product: str | None,
        unit_amount: int,
        currency: str,
        interval: str | None,
        lookup_key: str | None,
        interval_count: int,
        product_name: str | None,
    ) -> str:
        """Add a price (and its product, unless it exists); its id."""
        if interval is not None and interval not in _INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(_INTERVALS)} or None")
        now = self._state.now()
        price_id = price_id or new_id("price_")
        product = product or new_id("prod_", 14)
        if product not in self._state.products:
            self._state.products[product] = _product(
                product, product_name or product, price_id, now
            )
        self._state.prices[price_id] = {
            "id": price_id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": now,
            "currency": currency.lower(),
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": {},
            "nickname": None,
            "product": product,
            "recurring": None
            if interval is None
            else {
                "interval": interval,
                "interval_count": interval_count,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time" if interval is None else "recurring",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        return price_id

    def retrieve_price(self, call: Call, price_id: str) -> dict[str, Any]:
        """``GET /v1/prices/{id}``."""
        return retrieve(call, self._state.prices, price_id, "price")

    def retrieve_product(self, call: Call, product_id: str) -> dict[str, Any]:
        """``GET /v1/products/{id}``."""
        return retrieve(call, self._state.products, product_id, "product")


def plan(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` a subscription item shows beside its recurring ``price``."""
    recurring = price["recurring"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": True,
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": None,
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def _product(product_id: str, name: str, price_id: str, created: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": price_id,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }
