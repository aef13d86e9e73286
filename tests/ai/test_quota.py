"""Per-user budgets: atomic in Redis, the same rules in process, 429 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from omnistack_core.ai import Message, Quota, QuotaExceededError
from omnistack_core.ai.quota import estimate_tokens


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["redis", "process"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Redis | None]:
    """Where the counts live: Redis, or (without it) the process."""
    if request.param == "process":
        yield None
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()


async def reserve_many(quota: Quota, user: str, count: int, estimate: int) -> list[bool]:
    async def one() -> bool:
        try:
            await quota.reserve(user, estimate)
        except QuotaExceededError:
            return False
        return True

    return await asyncio.gather(*(one() for _ in range(count)))


async def test_concurrent_calls_never_reserve_more_than_the_token_budget(
    store: Redis | None,
) -> None:
    client = store
    quota = Quota(tokens=1000, calls=None, window_seconds=3600, redis=client)

    granted = await reserve_many(quota, "ada", 30, estimate=150)

    assert granted.count(True) == 6  # 6 reservations of 150 fit in 1000, a seventh does not
    assert await quota.spent("ada") == (900, 6)
    assert await quota.spent("bob") == (0, 0)


async def test_a_call_budget_is_exact_under_concurrency(store: Redis | None) -> None:
    client = store
    quota = Quota(tokens=None, calls=5, window_seconds=3600, redis=client)

    granted = await reserve_many(quota, "ada", 25, estimate=10_000)

    assert granted.count(True) == 5


async def test_settling_returns_what_a_call_did_not_use(store: Redis | None) -> None:
    client = store
    quota = Quota(tokens=1000, calls=None, window_seconds=3600, redis=client)

    first = await quota.reserve("ada", 800)
    with pytest.raises(QuotaExceededError):
        await quota.reserve("ada", 300)
    await quota.settle(first, 120)
    second = await quota.reserve("ada", 300)
    await quota.settle(second, 0)  # it failed: nothing spent

    assert await quota.spent("ada") == (120, 2)


async def test_the_refusal_is_a_429_with_the_seconds_left_in_the_window(redis: Redis) -> None:
    quota = Quota(tokens=None, calls=1, window_seconds=60, redis=redis)
    await quota.reserve("ada", 1)

    with pytest.raises(QuotaExceededError) as refused:
        await quota.reserve("ada", 1)

    assert refused.value.status == 429
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60


def test_the_estimate_bounds_input_and_output() -> None:
    messages = [Message.system("Be brief."), Message.user("x" * 400)]

    estimate = estimate_tokens(messages, max_tokens=256)

    assert estimate >= 100 + 256  # a generous ~4 characters a token would give 102 + 256
    assert estimate == (9 + 400 + 1) // 2 + 16 + 256


async def test_a_failed_call_gives_back_its_call_and_its_tokens(store: Redis | None) -> None:
    quota = Quota(tokens=1000, calls=2, window_seconds=3600, redis=store)

    failed = await quota.reserve("ada", 500)
    await quota.settle(failed, 0, failed=True)
    await quota.reserve("ada", 500)
    await quota.reserve("ada", 500)

    assert await quota.spent("ada") == (1000, 2)


async def test_a_reset_gives_one_user_their_budget_back(store: Redis | None) -> None:
    quota = Quota(tokens=1000, calls=3, window_seconds=3600, redis=store)
    for user in ("ada", "bob"):
        for _ in range(3):
            await quota.reserve(user, 100)
    with pytest.raises(QuotaExceededError):
        await quota.reserve("ada", 100)

    assert await quota.reset("ada") == (300, 3)

    assert await quota.spent("ada") == (0, 0)
    assert await quota.spent("bob") == (300, 3)
    await quota.reserve("ada", 100)
    assert 0 < quota.window_ends_in() <= 3600
