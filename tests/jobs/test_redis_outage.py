"""A Redis outage at start-up: the API starts and keeps enqueueing, the worker waits.

Each test runs a redis-server of its own on a free port, stopped and started by the test;
the shared Redis (the ``redis_url`` fixture) only holds the jobs' traces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from omnistack_core import create_app, load_settings
from omnistack_core.db import DbSession
from omnistack_core.jobs import JobsModule, Queue
from omnistack_core.jobs.redis_wait import RedisWaitLine
from omnistack_core.testing import app_client, wait_until, wait_until_async
from omnistack_core.testing.pytest_plugin import services_required
from tests.jobs import service
from tests.jobs.test_outbox import create_tables, outbox_rows
from tests.jobs.test_worker import REPOSITORY, free_port, wait_for

READY = "/api/v1/public/health/ready"


class OwnRedis:
    """A redis-server on ``port`` that this test alone starts and stops."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=20, interval=0.05, message="redis-server did not start")

    def _answers(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        reason = "redis-server is not installed"
        if services_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def environment(
    own_redis: OwnRedis, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The service's variables: its Redis is ``own_redis``; traces go to the shared one."""
    variables = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "o" * 40,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/outage.db",
        "REDIS_URL": own_redis.url,
        "JOBS_TRACE_URL": redis_url,
        "JOBS_QUEUE_NAME": f"outage:{uuid.uuid4().hex[:8]}",
        "JOBS_OUTBOX_RELAY_SECONDS": "0.2",
        "HEALTH_CACHE_SECONDS": "0",
        "LOG_FORMAT": "json",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def start_worker(
    environment: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], tuple[subprocess.Popen[str], Path]]]:
    """Starts a real arq worker; its output goes to a file the test can read as it runs."""
    workers: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], Path]:
        log = tmp_path / f"worker-{len(workers)}.log"
        with log.open("w") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "arq", "tests.jobs.worker_service.WorkerSettings"],
                cwd=REPOSITORY,
                env={**os.environ, **environment},
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        workers.append(worker)
        return worker, log

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)


def ordering_app() -> FastAPI:
    app = create_app(
        load_settings(service.ServiceSettings), modules=[JobsModule(jobs=service.JOBS)]
    )

    @app.post("/orders/{value}")
    async def order(value: str, queue: Queue, session: DbSession) -> dict[str, str | None]:
        # Committed by the session dependency after the handler returns, job included.
        return {"job_id": await queue.enqueue(service.record, value, session=session)}

    @app.post("/pings/{value}")
    async def ping(value: str, queue: Queue) -> dict[str, str | None]:
        return {"job_id": await queue.enqueue(service.record, value)}

    return app


def log_records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


async def wait_for_line(log: Path, start: str, seconds: float = 30) -> dict[str, object]:
    return await wait_until_async(
        lambda: next(
            (record for record in log_records(log) if str(record["message"]).startswith(start)),
            None,
        ),
        timeout=seconds,
        message=f"no line starting {start!r} in {log}",
    )


async def ready_status(client: httpx.AsyncClient, expected: int, seconds: float = 30) -> None:
    async def answers() -> bool:
        return (await client.get(READY)).status_code == expected

    await wait_until_async(answers, timeout=seconds, message=f"readiness never answered {expected}")


async def test_the_api_starts_without_redis_and_its_outbox_jobs_run_once_after(
    own_redis: OwnRedis,
    start_worker: Callable[[], tuple[subprocess.Popen[str], Path]],
    trace: Redis,
) -> None:
    app = ordering_app()
    async with app_client(app) as client:
        await create_tables(app)
        not_ready = await client.get(READY)
        ordered = [await client.post(f"/orders/{n}") for n in range(3)]
        refused = await client.post("/pings/now")
        waiting = await outbox_rows(app)

        own_redis.start()
        start_worker()
        job_ids = [response.json()["job_id"] for response in ordered]
        for job_id in job_ids:
            await wait_for(trace, job_id, "record")
        await ready_status(client, 200)
        await asyncio.sleep(1)  # time for a second run of any job, if there were one
        left = await outbox_rows(app)

    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["redis"]["status"] == "failed"
    assert [response.status_code for response in ordered] == [200, 200, 200]
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert "Redis" in refused.json()["detail"]
    assert waiting == 3
    assert left == 0
    runs = [json.loads(item) for item in await trace.lrange("trace:all", 0, -1)]
    assert sorted(str(run["job_id"]) for run in runs) == sorted(job_ids)


async def test_a_worker_started_without_redis_waits_and_then_runs_jobs(
    own_redis: OwnRedis,
    start_worker: Callable[[], tuple[subprocess.Popen[str], Path]],
    trace: Redis,
) -> None:
    worker, log = start_worker()
    waiting = await wait_for_line(log, "Waiting for Redis")
    # Longer than arq's own patience (5 attempts a second apart), after which it used to exit.
    await asyncio.sleep(6)
    assert worker.poll() is None

    own_redis.start()
    app = ordering_app()
    async with app_client(app) as client:
        response = await client.post("/pings/later")
    job_id = response.json()["job_id"]
    await wait_for(trace, job_id, "record")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)

    assert response.status_code == 200
    assert waiting["level"] == "WARNING"
    assert f"127.0.0.1:{own_redis.port}" in str(waiting["message"])
    assert not any("retries remaining" in str(r["message"]) for r in log_records(log))


def arq_attempt_line(remaining: int) -> logging.LogRecord:
    """The line arq logs for each failed connection attempt."""
    return logging.LogRecord(
        "arq.connections",
        logging.WARNING,
        __file__,
        1,
        "redis connection error %s:%s %s %s, %s retries remaining...",
        ("127.0.0.1", 6390, "ConnectionError", "Connection refused.", remaining),
        None,
    )


def test_the_wait_line_is_said_once_per_interval_not_once_per_attempt() -> None:
    wait_line = RedisWaitLine(interval=3600)
    first, second = arq_attempt_line(5), arq_attempt_line(4)

    kept = [wait_line.filter(first), wait_line.filter(second)]

    assert kept == [True, False]
    assert first.getMessage() == (
        "Waiting for Redis at 127.0.0.1:6390 (ConnectionError: Connection refused.); "
        "the worker starts once it answers, trying every second"
    )


def test_the_wait_line_comes_again_after_the_interval() -> None:
    wait_line = RedisWaitLine(interval=0)

    assert wait_line.filter(arq_attempt_line(5))
    assert wait_line.filter(arq_attempt_line(4))
