"""The jobs pages: the queue, failed jobs, and the retry and discard actions, on real Redis."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from omnistack_core.jobs import FailedJob, FailedJobs, JobsModule
from omnistack_core.testing import app_client
from tests.console.service import console_app
from tests.console.test_access import LOCAL, csrf_of, sign_in
from tests.jobs import service


@pytest.fixture
def queue_name() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def client(redis_url: str, queue_name: str) -> AsyncIterator[httpx.AsyncClient]:
    app = console_app(
        [JobsModule(jobs=service.JOBS)],
        redis_url=redis_url,
        jobs_queue_name=queue_name,
        console_page_size=5,
    )
    async with app_client(app, base_url=LOCAL) as http:
        await sign_in(http)
        yield http


async def fail(redis: Redis, queue_name: str, job_id: str, job: str, at: float) -> None:
    entry = FailedJob(
        job_id,
        job,
        ["alice@example.com"],
        {"email": "alice@example.com", "n": 1},
        "ValueError: bad input",
        3,
        at,
    )
    await FailedJobs(redis, queue_name)._store(entry)


def ids_on(page: httpx.Response) -> list[str]:
    return re.findall(r'<code class="job-id">([^<]+)</code>', page.text)


async def test_failed_jobs_page_through_with_arguments_masked(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    for number in range(12):
        await fail(redis, queue_name, f"job-{number:02}", "tests.broken", 1000.0 + number)
    seen: list[str] = []
    url = "/console/jobs/failed"
    pages = 0
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        assert "alice@" not in page.text
        seen += ids_on(page)
        pages += 1
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert pages == 3
    assert seen == [f"job-{number:02}" for number in reversed(range(12))]


async def test_failed_jobs_filter_by_job(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.broken", 1.0)
    await fail(redis, queue_name, "b", "tests.record", 2.0)
    page = await client.get("/console/jobs/failed", params={"job": "tests.record"})
    assert ids_on(page) == ["b"]


async def test_a_failed_job_shows_its_error_attempts_and_masked_arguments(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.broken", 1.0)
    page = await client.get("/console/jobs/failed/a")
    assert page.status_code == 200
    assert "ValueError: bad input" in page.text
    assert "a***@example.com" in page.text
    assert "alice" not in page.text
    assert '"email": "***"' in page.text.replace("&#34;", '"')


async def test_retry_enqueues_the_job_again_and_the_queue_page_shows_it(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.record", 1.0)
    token = csrf_of(await client.get("/console/jobs/failed"))
    done = await client.post("/console/jobs/failed/a/retry", data={"csrf_token": token})
    assert done.status_code == 303
    assert "Enqueued 1 failed job" in (await client.get(done.headers["location"])).text
    assert await redis.zrange(queue_name, 0, -1) == [b"a:retry:1"]
    queued = await client.get("/console/jobs")
    assert "a:retry:1" in queued.text
    assert "tests.record" in queued.text
    assert await FailedJobs(redis, queue_name).count() == 0


async def test_retry_all_matching_and_discard(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    for number in range(3):
        await fail(redis, queue_name, f"r{number}", "tests.record", number)
    await fail(redis, queue_name, "b", "tests.broken", 9.0)
    token = csrf_of(await client.get("/console/jobs/failed"))
    done = await client.post(
        "/console/jobs/failed/retry-all", data={"csrf_token": token, "job": "tests.record"}
    )
    assert "Enqueued 3 failed job" in (await client.get(done.headers["location"])).text
    assert await redis.zcard(queue_name) == 3
    await client.post("/console/jobs/failed/b/discard", data={"csrf_token": token})
    assert await FailedJobs(redis, queue_name).count() == 0
    assert await redis.zcard(queue_name) == 3


async def test_actions_without_the_csrf_token_change_nothing(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.record", 1.0)
    for action in ("retry", "discard"):
        refused = await client.post(f"/console/jobs/failed/a/{action}", data={})
        assert refused.status_code == 403
    assert (await client.post("/console/jobs/failed/retry-all", data={})).status_code == 403
    assert await FailedJobs(redis, queue_name).count() == 1
    assert await redis.zcard(queue_name) == 0


async def test_the_overview_shows_the_queue(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.record", 1.0)
    page = await client.get("/console")
    assert f"arq workers on {queue_name}" in page.text
    assert '<a href="/console/jobs/failed">1</a>' in page.text


async def test_without_redis_the_pages_say_jobs_run_in_process() -> None:
    app = console_app([JobsModule(jobs=service.JOBS)])
    async with app_client(app, base_url=LOCAL) as http:
        await sign_in(http)
        queued = await http.get("/console/jobs")
        failed = await http.get("/console/jobs/failed")
    assert "no queue to show" in queued.text
    assert "No failed jobs." in failed.text


async def test_a_hand_edited_cursor_shows_the_first_page(
    client: httpx.AsyncClient, redis: Redis, queue_name: str
) -> None:
    await fail(redis, queue_name, "a", "tests.record", 1.0)
    for url in ("/console/jobs/failed?after=garbage", "/console/jobs?after=WyJ4Il0"):
        assert (await client.get(url)).status_code == 200
    assert ids_on(await client.get("/console/jobs/failed?after=WyJ4IiwgMV0")) == ["a"]
