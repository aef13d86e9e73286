"""Fixtures the job tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def trace(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the Redis database the test jobs write their trace to."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
