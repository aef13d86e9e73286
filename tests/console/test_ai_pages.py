"""The AI pages: usage and cost by user and by model over a window; a user's quota, reset."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from omnistack_core.ai import AIModule, ai_metadata, ai_usage
from omnistack_core.testing import app_client
from tests.console.service import console_app, create_tables
from tests.console.test_access import LOCAL, csrf_of, sign_in


@pytest.fixture
async def running(
    empty_postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = console_app(
        [AIModule()],
        database_url=empty_postgres_url,
        redis_url=redis_url,
        ai_record_usage=True,
        ai_quota_tokens=5000,
        ai_quota_requests=10,
        console_page_size=5,
    )
    async with app_client(app, base_url=LOCAL) as client:
        await create_tables(app, ai_metadata)
        now = datetime.now(UTC)
        rows = [
            {
                "id": f"u{number}",
                "user_id": f"user-{number % 8}",
                "provider": "openai",
                "model": "gpt-4o-mini" if number % 2 else "gpt-4o",
                "input_tokens": 100,
                "output_tokens": 10,
                "cached_tokens": 0,
                "cost": 0.25,
                "request_id": None,
                # Every fourth is two days old: outside the default 24 hours.
                "created_at": now - timedelta(hours=1 if number % 4 else 48),
            }
            for number in range(40)
        ]
        async with app.state.database.session() as session:
            await session.execute(insert(ai_usage), rows)
        await sign_in(client)
        yield app, client


def keys(page: httpx.Response) -> list[str]:
    return re.findall(r'<code class="usage-key">([^<]+)</code>', page.text)


async def test_usage_by_user_pages_through_the_window(
    running: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = running
    seen: list[str] = []
    url = "/console/ai"
    while url:
        page = await client.get(url)
        seen += keys(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    # Users 0 and 4 made only the two-day-old calls.
    assert seen == [f"user-{n}" for n in (1, 2, 3, 5, 6, 7)]
    month = await client.get("/console/ai", params={"window": "30d"})
    assert len(keys(month)) == 5  # a page


async def test_usage_by_model_with_cost(running: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = running
    page = await client.get("/console/ai", params={"by": "model"})
    assert keys(page) == ["openai:gpt-4o", "openai:gpt-4o-mini"]
    # 30 calls in the window at $0.25: 10 of gpt-4o, 20 of gpt-4o-mini.
    assert "<td>10</td>" in page.text
    assert "2.5000" in page.text
    assert "5.0000" in page.text


async def test_a_users_quota_and_a_reset(running: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = running
    quota = AIModule.of(app).quota
    assert quota is not None
    await quota.reserve("user-1", 1200)
    page = await client.get("/console/ai/quota", params={"user_id": "user-1"})
    assert '<span id="tokens-used">1200</span> of 5000' in page.text
    assert '<span id="calls-made">1</span> of 10' in page.text
    refused = await client.post("/console/ai/quota/reset", data={"user_id": "user-1"})
    assert refused.status_code == 403
    done = await client.post(
        "/console/ai/quota/reset", data={"user_id": "user-1", "csrf_token": csrf_of(page)}
    )
    after = await client.get(done.headers["location"])
    assert "1200 tokens and 1 calls given back" in after.text
    assert await quota.spent("user-1") == (0, 0)
