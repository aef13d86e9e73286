"""Inline mode: no Redis, jobs run inside the app through the same attempt code as a worker."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from omnistack_core import ConfigurationError, create_app, load_settings
from omnistack_core.jobs import InlineQueue, JobsModule, Queue, UnknownJobError
from omnistack_core.testing import app_client
from tests.jobs import service


@pytest.fixture
async def trace(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Redis]:
    """Where the jobs leave their traces (real Redis; the queue itself is in-process)."""
    monkeypatch.setenv("JOBS_TRACE_URL", redis_url)
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def traces(client: Redis, job_id: str = "all") -> list[dict[str, object]]:
    return [json.loads(item) for item in await client.lrange(f"trace:{job_id}", 0, -1)]


def inline_app() -> FastAPI:
    app = create_app(
        load_settings(service.ServiceSettings, jobs_retry_base_seconds=0.01, log_format="json"),
        modules=[JobsModule(jobs=service.JOBS)],
    )

    @app.post("/signup/{user}")
    async def signup(user: str, queue: Queue) -> dict[str, str | None]:
        return {"job_id": await queue.enqueue(service.record, user)}

    return app


async def test_without_redis_jobs_run_in_process(trace: Redis) -> None:
    app = inline_app()
    async with app_client(app) as client:
        queue = JobsModule.of(app)
        assert isinstance(queue, InlineQueue)
        response = await client.post("/signup/ada", headers={"X-Request-ID": "req-signup"})
        await queue.drain()

    [entry] = await traces(trace, response.json()["job_id"])
    assert entry == {"event": "record", "attempt": 1, "request_id": "req-signup", "value": "ada"}


async def test_the_request_id_reaches_the_jobs_log_lines(
    trace: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    app = inline_app()
    async with app_client(app) as client:
        await client.post("/signup/bo", headers={"X-Request-ID": "req-logged"})
        await JobsModule.of(app).drain()

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [job_line] = [line for line in lines if line["logger"] == "omnistack.jobs"]
    assert job_line["request_id"] == "req-logged"
    assert (job_line["job"], job_line["status"]) == ("tests.record", "success")


async def test_transient_failures_are_retried_until_they_pass(trace: Redis) -> None:
    app = inline_app()
    async with app_client(app):
        job_id = await JobsModule.of(app).enqueue(service.flaky, 2)
        await JobsModule.of(app).drain()

    assert [entry["event"] for entry in await traces(trace, str(job_id))] == [
        "attempt",
        "attempt",
        "attempt",
        "done",
    ]


async def test_a_job_out_of_attempts_or_failing_for_good_is_kept_as_failed(
    trace: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = inline_app()
    async with app_client(app):
        queue = JobsModule.of(app)
        exhausted = await queue.enqueue(service.flaky, 5)
        broken = await queue.enqueue(service.broken)
        await queue.drain()

    assert len(await traces(trace, str(exhausted))) == 3  # max_attempts=3
    assert len(await traces(trace, str(broken))) == 1  # a ValueError is never retried
    assert {(job, error) for _, job, error in queue.failed} == {
        ("tests.flaky", "TransientError: the provider is busy"),
        ("tests.broken", "ValueError: bad input"),
    }
    assert any(
        r.levelno == logging.ERROR and "tests.broken failure" in r.getMessage()
        for r in caplog.records
    )


async def test_a_job_id_makes_enqueueing_idempotent(trace: Redis) -> None:
    app = inline_app()
    async with app_client(app):
        queue = JobsModule.of(app)
        first = await queue.enqueue(service.record, "x", job_id="once-only", defer_by=0.2)
        second = await queue.enqueue(service.record, "x", job_id="once-only")
        await queue.drain()

    assert (first, second) == ("once-only", None)
    assert len(await traces(trace, "once-only")) == 1


async def test_arguments_must_be_json_and_jobs_registered() -> None:
    app = inline_app()
    async with app_client(app):
        with pytest.raises(TypeError, match="must be JSON"):
            await JobsModule.of(app).enqueue(service.record, object())
        with pytest.raises(UnknownJobError, match="not a job of this app"):
            await JobsModule.of(app).enqueue("tests.nobody")


def test_production_needs_redis_with_the_jobs_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/app")

    with pytest.raises(ConfigurationError, match="REDIS_URL: required with the jobs module"):
        create_app(modules=[JobsModule(jobs=service.JOBS)])
