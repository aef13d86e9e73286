"""Costs come from the price table; unknown models cost None."""

from __future__ import annotations

import pytest

from omnistack_core.ai import ModelPrice, PriceTable, Usage


def test_cost_counts_cached_input_at_its_own_price() -> None:
    table = PriceTable({"openai:small": ModelPrice(input=1.0, output=4.0, cached_input=0.5)})
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cached_tokens=400_000)

    assert table.cost("openai", usage, "small") == pytest.approx(0.6 + 0.2 + 2.0)


def test_dated_snapshots_find_their_model_and_the_longest_name_wins() -> None:
    table = PriceTable()
    usage = Usage(input_tokens=1_000_000)

    assert table.cost("openai", usage, "gpt-4o-mini-2024-07-18") == pytest.approx(0.15)
    assert table.cost("openai", usage, "gpt-4o-2024-08-06") == pytest.approx(2.50)
    assert table.cost("anthropic", usage, "claude-haiku-4-5-20251001") == pytest.approx(1.0)
    assert table.cost("openai", usage, "gpt-5-mini-2025-08-07") == pytest.approx(0.25)


def test_a_model_missing_from_the_table_costs_none() -> None:
    table = PriceTable()

    assert table.cost("openai", Usage(input_tokens=10), "my-finetune") is None
    assert table.cost("anthropic", Usage(input_tokens=10), "gpt-4o") is None
