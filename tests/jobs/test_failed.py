"""The failed-job store: pages by failure time, retry, discard, the index kept beside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from arq import create_pool
from arq.connections import ArqRedis
from redis.asyncio import Redis

from omnistack_core.jobs import FailedJob, FailedJobs
from omnistack_core.jobs.serialization import dumps, loads
from omnistack_core.jobs.worker import redis_settings

QUEUE = "test:failed"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    arq_pool = await create_pool(
        redis_settings(redis_url), job_serializer=dumps, job_deserializer=loads
    )
    yield arq_pool
    await arq_pool.aclose()


async def keep(redis: Redis, job_id: str, job: str, failed_at: float) -> FailedJob:
    """A failure as the worker records it, at a chosen time."""
    entry = FailedJob(job_id, job, [job_id], {}, "ValueError: bad", 1, failed_at)
    store = FailedJobs(redis, QUEUE)
    await store._store(entry)
    return entry


async def test_pages_run_newest_first_without_gaps_or_repeats_through_ties(redis: Redis) -> None:
    # Five failures share one instant: the cursor must step through them by id.
    times = [100.0, 200.0, 300.0, 300.0, 300.0, 300.0, 300.0, 400.0, 500.0]
    for number, failed_at in enumerate(times):
        await keep(
            redis, f"job-{number}", "tests.broken" if number % 2 else "tests.record", failed_at
        )
    store = FailedJobs(redis, QUEUE)
    seen: list[str] = []
    after = None
    while page := await store.page(after=after, limit=2):
        seen += [entry.job_id for entry in page]
        after = page[-1].cursor
    assert len(seen) == len(times)
    assert len(set(seen)) == len(times)
    assert [seen[0], seen[-1]] == ["job-8", "job-0"]
    assert await store.count() == 9


async def test_a_page_of_one_job_holds_only_that_job(redis: Redis) -> None:
    for number in range(6):
        await keep(redis, f"job-{number}", "tests.broken" if number % 2 else "tests.record", number)
    store = FailedJobs(redis, QUEUE)
    page = await store.page(job="tests.broken", limit=10)
    assert [entry.job_id for entry in page] == ["job-5", "job-3", "job-1"]
    assert await store.count("tests.broken") == 3


async def test_failures_kept_before_the_index_existed_are_indexed_on_first_use(
    redis: Redis,
) -> None:
    # As an earlier release wrote it: in the hash alone, without the traceback field.
    stored = {
        "job_id": "old",
        "job": "tests.record",
        "args": [],
        "kwargs": {},
        "error": "ValueError: x",
        "attempts": 5,
        "failed_at": 10.0,
    }
    await redis.hset(f"{QUEUE}:failed", "old", json.dumps(stored))
    store = FailedJobs(redis, QUEUE)
    assert [e.job_id for e in await store.page()] == ["old"]
    assert (await store.get("old")) == FailedJob(
        "old", "tests.record", [], {}, "ValueError: x", 5, 10.0
    )


async def test_record_keeps_where_the_job_failed(redis: Redis) -> None:
    def inner() -> None:
        raise ValueError("bad input")

    try:
        inner()
    except ValueError as exc:
        await FailedJobs(redis, QUEUE).record(
            "j", "tests.broken", args=[], kwargs={}, error=exc, attempts=1
        )
    entry = await FailedJobs(redis, QUEUE).get("j")
    assert entry is not None
    assert entry.error == "ValueError: bad input"
    assert entry.traceback.splitlines()[-1].endswith("in inner")


async def test_retry_enqueues_once_under_a_new_id_and_forgets_the_failure(
    redis: Redis, pool: ArqRedis
) -> None:
    entry = await keep(redis, "j1", "tests.record", 1234.5)
    store = FailedJobs(redis, QUEUE)
    assert await store.retry("j1", pool) == "j1:retry:1234"
    assert await store.retry("j1", pool) is None
    assert await store.get("j1") is None
    assert await store.count() == 0
    assert await redis.zrange(QUEUE, 0, -1) == [entry.retry_id.encode()]


async def test_retry_all_of_one_job_leaves_the_others(redis: Redis, pool: ArqRedis) -> None:
    for number in range(5):
        await keep(redis, f"j{number}", "tests.broken" if number % 2 else "tests.record", number)
    store = FailedJobs(redis, QUEUE)
    assert await store.retry_all(pool, job="tests.record") == 3
    assert await store.count() == 2
    assert await store.count("tests.record") == 0
    assert await redis.zcard(QUEUE) == 3


async def test_discard_forgets_without_enqueueing(redis: Redis) -> None:
    await keep(redis, "j", "tests.record", 1.0)
    store = FailedJobs(redis, QUEUE)
    discarded = await store.discard("j")
    assert discarded is not None
    assert discarded.job_id == "j"
    assert await store.discard("j") is None
    assert await store.count("tests.record") == 0
    assert await redis.zcard(QUEUE) == 0
