"""Estimated cost of a call, from a price table per million tokens.

The built-in table holds list prices (US dollars per million tokens) published by OpenAI and
Anthropic for a few common models; ``AI_PRICES`` (or ``AIModule(prices=...)``) adds models
and overrides these, and should for anything billed to customers: prices change, and
discounts, batch rates and long-context rates are not modelled. A model the table does not
know costs None: never a guess. Anthropic's prompt-cache writes are counted at the input
price (their surcharge is not modelled).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from omnistack_core.ai.types import Usage


class ModelPrice(BaseModel):
    """A model's prices in US dollars per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    """Input tokens."""
    output: float = Field(ge=0)
    """Output tokens."""
    cached_input: float | None = Field(default=None, ge=0)
    """Input tokens read from the prompt cache; the input price when unset."""


def _price(input_: float, output: float, cached: float) -> ModelPrice:
    return ModelPrice(input=input_, output=output, cached_input=cached)


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "openai:gpt-5": _price(1.25, 10.00, 0.125),
    "openai:gpt-5-mini": _price(0.25, 2.00, 0.025),
    "openai:gpt-5-nano": _price(0.05, 0.40, 0.005),
    "openai:gpt-4.1": _price(2.00, 8.00, 0.50),
    "openai:gpt-4.1-mini": _price(0.40, 1.60, 0.10),
    "openai:gpt-4.1-nano": _price(0.10, 0.40, 0.025),
    "openai:gpt-4o": _price(2.50, 10.00, 1.25),
    "openai:gpt-4o-mini": _price(0.15, 0.60, 0.075),
    "anthropic:claude-haiku-4-5": _price(1.00, 5.00, 0.10),
}
"""List prices of models whose prices were published when this table was written. Newer
models (and every price that changed since) belong in ``AI_PRICES``."""


class PriceTable:
    """Looks up a model's price and estimates a call's cost.

    Args:
        prices: ``provider:model`` to prices; the built-in table when None.
    """

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        # Longest first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini before gpt-4o.
        self._by_length = sorted(self.prices, key=len, reverse=True)

    def price(self, provider: str, *models: str) -> ModelPrice | None:
        """The price of the first of ``models`` known, exactly or as a dated snapshot.

        Providers answer with snapshot names (``claude-haiku-4-5-20251001``); those find
        the entry they start with.
        """
        for model in models:
            exact = self.prices.get(f"{provider}:{model}")
            if exact is not None:
                return exact
        for model in models:
            key = f"{provider}:{model}"
            for known in self._by_length:
                if key.startswith(known + "-"):
                    return self.prices[known]
        return None

    def cost(self, provider: str, usage: Usage, *models: str) -> float | None:
        """US dollars for ``usage``, or None when the model is not in the table."""
        price = self.price(provider, *models)
        if price is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = price.input if price.cached_input is None else price.cached_input
        dollars = (
            (usage.input_tokens - cached) * price.input
            + cached * cached_price
            + usage.output_tokens * price.output
        )
        return round(dollars / 1_000_000, 8)
