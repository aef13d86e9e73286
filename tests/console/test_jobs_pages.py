"""The jobs pages: the queue, failed jobs, and the retry and discard actions, on real Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from omnistack_core.jobs import FailedJob, FailedJobs, JobsModule, RedisQueue, live_workers
from omnistack_core.testing import app_client, wait_until_async
from tests.console.service import console_app
from tests.console.test_access import LOCAL, csrf_of, sign_in
from tests.jobs import service

REPOSITORY = Path(__file__).resolve().parents[2]


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


async def test_the_overview_lists_each_live_worker_with_its_counts(
    redis: Redis, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    app = console_app(
        [JobsModule(jobs=service.JOBS)], redis_url=redis_url, jobs_queue_name=queue_name
    )
    async with app_client(app, base_url=LOCAL) as client:
        await sign_in(client)
        page = await client.get("/console")
        assert "No live worker: none has sent a heartbeat lately." in page.text
        page, jobs_page, pid = await pages_with_a_worker(app, client, redis_url, tmp_path)

    row = re.search(rf"<tr><td><code>([^<]*-{pid}-[^<]*)</code></td>(.*?)</tr>", page.text)
    assert row is not None, page.text
    cells = re.findall(r"<td>([^<]*)</td>", row.group(2))
    # host, pid, started, last seen, done, failed, retried, in progress
    assert cells[1] == str(pid)
    assert re.fullmatch(r"\d+ s ago", cells[3])
    assert cells[4:] == ["1", "0", "0", "0"]
    assert f"-{pid}-" in jobs_page.text
    # Stopped cleanly, the worker took its heartbeat with it.
    assert await live_workers(redis, queue_name) == []


async def pages_with_a_worker(
    app: FastAPI, client: httpx.AsyncClient, redis_url: str, tmp_path: Path
) -> tuple[httpx.Response, httpx.Response, int]:
    """The overview and jobs pages once a real worker has run one job; the worker's pid."""
    queue = JobsModule.of(app)
    assert isinstance(queue, RedisQueue)
    queue_name = queue.settings.jobs_queue_name

    worker = subprocess.Popen(
        [sys.executable, "-m", "arq", "tests.jobs.worker_service.WorkerSettings"],
        cwd=REPOSITORY,
        env={
            **os.environ,
            "ENVIRONMENT": "test",
            "SECRET_KEY": "w" * 40,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/worker.db",
            "REDIS_URL": redis_url,
            "JOBS_TRACE_URL": redis_url,
            "JOBS_QUEUE_NAME": queue_name,
            "JOBS_HEALTH_CHECK_SECONDS": "0.5",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await queue.enqueue(service.record, "seen")

        async def counted() -> bool:
            workers = await live_workers(queue.pool, queue_name)
            return len(workers) == 1 and workers[0].jobs_done == 1

        await wait_until_async(counted, timeout=30, message="the worker never counted its job")
        return await client.get("/console"), await client.get("/console/jobs"), worker.pid
    finally:
        worker.terminate()
        worker.wait(timeout=30)


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
