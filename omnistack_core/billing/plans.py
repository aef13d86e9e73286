"""Plans: the names a service sells under, each mapped to a Stripe price."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

_PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Plan(BaseModel):
    """A plan: what clients ask for by ``name``, what Stripe charges by ``price``.

    In ``BILLING_PLANS`` a plan is a price id (``{"pro": "price_123"}``) or an object
    (``{"pro": {"price": "price_123", "trial_days": 14}}``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_PLAN_NAME.pattern)
    """Lower-case letters, digits, ``-`` and ``_``: ``pro``, ``team-yearly``."""
    price: str = Field(pattern=r"^price_[A-Za-z0-9_]+$")
    """The Stripe price id (``price_…``); a recurring price."""
    trial_days: int = Field(default=0, ge=0, le=730)
    """Free days before the first charge; 0 for none."""


def plans_from_setting(value: Mapping[str, object]) -> dict[str, Plan]:
    """The plans of a ``BILLING_PLANS`` value: names to price ids or to plan objects.

    Raises:
        ValueError: A plan is malformed (the message names it).
    """
    plans = {}
    for name, spec in value.items():
        fields = {"price": spec} if isinstance(spec, str) else spec
        if not isinstance(fields, Mapping):
            # A ValueError, not a TypeError: pydantic reports only those as validation errors.
            raise ValueError(  # noqa: TRY004
                f"plan {name!r} must be a price id or an object with price"
            )
        try:
            plans[name] = Plan(name=name, **fields)
        except (TypeError, ValueError) as exc:
            reasons = "; ".join(_reasons(exc))
            raise ValueError(f"plan {name!r}: {reasons}") from None
    return plans


def _reasons(exc: Exception) -> Iterable[str]:
    errors = getattr(exc, "errors", None)
    if errors is None:
        yield str(exc)
        return
    for error in errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        yield f"{where} {error['msg'].lower()}" if where else error["msg"]
