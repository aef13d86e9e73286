"""Usage totals over a window, by user or by model, a page at a time, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from omnistack_core.ai import ai_metadata, ai_usage, usage_totals
from omnistack_core.db import Database

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture
async def database(empty_postgres_url: str) -> AsyncIterator[Database]:
    engine = create_async_engine(empty_postgres_url)
    async with engine.begin() as connection:
        await connection.run_sync(ai_metadata.create_all)
    calls = [
        # (user, provider, model, input, output, cost, hours ago)
        ("ada", "openai", "gpt-4o-mini", 100, 10, 0.01, 1),
        ("ada", "openai", "gpt-4o-mini", 200, 20, 0.02, 2),
        ("ada", "anthropic", "claude-haiku", 50, 5, None, 3),
        ("bob", "openai", "gpt-4o-mini", 10, 1, 0.001, 1),
        (None, "openai", "gpt-4o", 1, 1, 0.5, 1),
        ("carol", "openai", "gpt-4o", 1000, 100, 1.0, 48),  # outside a 24-hour window
    ]
    rows = [
        {
            "id": f"u{number}",
            "user_id": user,
            "provider": provider,
            "model": model,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cached_tokens": 0,
            "cost": cost,
            "request_id": None,
            "created_at": NOW - timedelta(hours=hours),
        }
        for number, (user, provider, model, tokens_in, tokens_out, cost, hours) in enumerate(calls)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(ai_usage), rows)
    yield Database(engine)
    await engine.dispose()


async def test_totals_by_user_over_a_window_page_by_key(database: Database) -> None:
    since = NOW - timedelta(days=1)
    first = await usage_totals(database, by="user", since=since, until=NOW, limit=2)
    rest = await usage_totals(
        database, by="user", since=since, until=NOW, after=first[-1].cursor, limit=2
    )
    totals = {total.key: total for total in [*first, *rest]}

    assert [total.key for total in [*first, *rest]] == ["", "ada", "bob"]
    assert (totals["ada"].calls, totals["ada"].input_tokens, totals["ada"].output_tokens) == (
        3,
        350,
        35,
    )
    assert totals["ada"].cost == pytest.approx(0.03)
    assert totals["ada"].unpriced_calls == 1
    assert totals[""].cost == pytest.approx(0.5)


async def test_totals_by_model_page_by_provider_and_model(database: Database) -> None:
    since = NOW - timedelta(days=3)
    seen = []
    after = None
    while page := await usage_totals(
        database, by="model", since=since, until=NOW, after=after, limit=1
    ):
        seen += page
        after = page[-1].cursor
    assert [total.key for total in seen] == [
        "anthropic:claude-haiku",
        "openai:gpt-4o",
        "openai:gpt-4o-mini",
    ]
    assert seen[1].calls == 2
    assert seen[1].cost == pytest.approx(1.5)
