"""The suppression list and delivery events a page at a time, by key, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from omnistack_core.db import Database
from omnistack_core.email import SuppressionList, email_metadata, email_webhook_events


@pytest.fixture
async def suppressions(empty_postgres_url: str) -> AsyncIterator[SuppressionList]:
    engine = create_async_engine(empty_postgres_url)
    async with engine.begin() as connection:
        await connection.run_sync(email_metadata.create_all)
    yield SuppressionList(Database(engine))
    await engine.dispose()


async def test_suppressions_page_in_address_order_and_search_by_prefix(
    suppressions: SuppressionList,
) -> None:
    for name in ("carol", "ada", "bob", "ada.l", "adam", "a_b", "axb"):
        await suppressions.add(f"{name.title()}@Example.com", "bounced")
    seen: list[str] = []
    after = None
    while page := await suppressions.page(after=after, limit=2):
        seen += [row.address for row in page]
        after = page[-1].address
    assert seen == sorted(seen)
    assert len(seen) == 7
    found = await suppressions.page(search="ADA")
    assert [row.address for row in found] == [
        "ada.l@example.com",
        "ada@example.com",
        "adam@example.com",
    ]
    # The search is a prefix, not a pattern: "_" matches only itself.
    assert [row.address for row in await suppressions.page(search="a_")] == ["a_b@example.com"]
    assert found[0].reason == "bounced"


async def test_delivery_events_page_newest_first_through_ties(
    suppressions: SuppressionList,
) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {
            "id": f"msg_{n:02}",
            "type": "email.delivered",
            "email_id": f"em_{n // 3}",
            "received_at": start + timedelta(seconds=n // 2),
        }
        for n in range(9)
    ]
    async with suppressions.database.session() as session:
        await session.execute(insert(email_webhook_events), rows)
    seen: list[str] = []
    after = None
    while page := await suppressions.delivery_events(after=after, limit=2):
        seen += [event.id for event in page]
        after = (page[-1].received_at, page[-1].id)
    assert seen == [f"msg_{n:02}" for n in reversed(range(9))]
