"""Jobs enqueued in a transaction: sent only if it commits, never lost if it does."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event, func, insert, select

from omnistack_core import create_app, load_settings
from omnistack_core.jobs import JobsModule, job_outbox, jobs_metadata
from omnistack_core.jobs.outbox import PublishedRows
from omnistack_core.testing import app_client, wait_until, wait_until_async
from omnistack_core.testing.pytest_plugin import services_required
from tests.jobs import service
from tests.jobs.test_worker import REPOSITORY, free_port, wait_for


async def outbox_rows(app: FastAPI) -> int:
    async with app.state.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(job_outbox)) or 0)


async def create_tables(app: FastAPI) -> None:
    async with app.state.database.engine.begin() as connection:
        await connection.run_sync(jobs_metadata.create_all)


async def enqueue_then_fail(app: FastAPI) -> None:
    async with app.state.database.session() as session:
        await JobsModule.of(app).enqueue(service.record, "never", session=session)
        raise RuntimeError("payment declined")


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """A service with the jobs module whose jobs write what they ran to Redis."""
    monkeypatch.setenv("JOBS_TRACE_URL", redis_url)
    return create_app(
        load_settings(service.ServiceSettings), modules=[JobsModule(jobs=service.JOBS)]
    )


async def test_a_rolled_back_transaction_never_sends_its_job(app: FastAPI, redis_url: str) -> None:
    async with app_client(app):
        await create_tables(app)
        with pytest.raises(RuntimeError, match="payment declined"):
            await enqueue_then_fail(app)
        await JobsModule.of(app).drain()
        rows = await outbox_rows(app)

    trace = Redis.from_url(redis_url)
    assert await trace.llen("trace:all") == 0
    await trace.aclose()
    assert rows == 0


async def test_a_committed_transaction_sends_its_job_once(app: FastAPI, redis_url: str) -> None:
    async with app_client(app):
        await create_tables(app)
        async with app.state.database.session() as session:
            job_id = await JobsModule.of(app).enqueue(service.record, "kept", session=session)
        await JobsModule.of(app).drain()
        rows = await outbox_rows(app)

    trace = Redis.from_url(redis_url)
    [entry] = [json.loads(item) for item in await trace.lrange(f"trace:{job_id}", 0, -1)]
    await trace.aclose()
    assert entry["value"] == "kept"
    assert str(job_id).startswith("outbox:")
    assert rows == 0


async def test_jobs_committed_together_are_each_sent_once_and_their_rows_deleted(
    app: FastAPI, redis_url: str
) -> None:
    values = ["first", "second", "third"]
    async with app_client(app):
        await create_tables(app)
        async with app.state.database.session() as session:
            job_ids = [
                await JobsModule.of(app).enqueue(service.record, value, session=session)
                for value in values
            ]
        await JobsModule.of(app).drain()
        rows = await outbox_rows(app)

    trace = Redis.from_url(redis_url)
    sent = [
        [json.loads(item)["value"] for item in await trace.lrange(f"trace:{job_id}", 0, -1)]
        for job_id in job_ids
    ]
    await trace.aclose()
    assert sent == [[value] for value in values]
    assert rows == 0


async def test_rows_published_while_a_delete_runs_go_in_the_next_delete_together(
    app: FastAPI,
) -> None:
    row_ids = [uuid.uuid4().hex for _ in range(20)]
    deletes: list[str] = []

    def count_deletes(*args: object) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    async with app_client(app):
        await create_tables(app)
        database = app.state.database
        async with database.session() as session:
            await session.execute(
                insert(job_outbox),
                [
                    {
                        "id": row_id,
                        "job": "record",
                        "payload": "{}",
                        "created_at": datetime.now(UTC),
                    }
                    for row_id in row_ids
                ],
            )
        event.listen(database.engine.sync_engine, "before_cursor_execute", count_deletes)
        published = PublishedRows(database)
        await asyncio.gather(*(published.delete([row_id]) for row_id in row_ids))
        rows = await outbox_rows(app)

    assert rows == 0
    # The first row's delete alone, then the 19 that were published while it ran, at once.
    assert len(deletes) == 2


class RedisServer:
    """A Redis server of the test's own, to stop and start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
                ).stdout.strip()
                == b"PONG"
            ),
            timeout=10,
            interval=0.05,
            message="the test's Redis did not start",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(redis_url: str) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if services_required():
            pytest.fail("redis-server is needed to stop and restart a Redis")
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port())
    yield server
    server.stop()


async def test_a_job_committed_while_redis_is_down_runs_once_it_is_back(
    own_redis: RedisServer,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environment = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "o" * 40,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/outbox.db",
        "REDIS_URL": own_redis.url,
        "JOBS_TRACE_URL": redis_url,  # the traces live on the shared Redis, which stays up
        "JOBS_QUEUE_NAME": f"test:{uuid.uuid4().hex[:8]}",
        "JOBS_OUTBOX_RELAY_SECONDS": "0.5",
        "HEALTH_CHECK_TIMEOUT": "0.5",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    own_redis.start()
    app = create_app(
        load_settings(service.ServiceSettings), modules=[JobsModule(jobs=service.JOBS)]
    )
    async with app_client(app):
        await create_tables(app)
        own_redis.stop()
        async with app.state.database.session() as session:
            job_id = await JobsModule.of(app).enqueue(service.record, "survives", session=session)
        await wait_until_async(
            lambda: "Could not publish 1 committed jobs now" in caplog.text,
            timeout=30,
            message="the after-commit publish never gave up on the stopped Redis",
        )
        assert await outbox_rows(app) == 1

        own_redis.start()
        worker = subprocess.Popen(
            [sys.executable, "-m", "arq", "tests.jobs.worker_service.WorkerSettings"],
            cwd=REPOSITORY,
            env={**os.environ, **environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        trace = Redis.from_url(redis_url)
        try:
            entries = await wait_for(trace, str(job_id), "record", seconds=30)
            # A negative check: a few relay rounds (0.5 s apart), in which nothing may run it again.
            await asyncio.sleep(2)
            entries = [json.loads(item) for item in await trace.lrange(f"trace:{job_id}", 0, -1)]
            rows = await outbox_rows(app)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            await trace.aclose()

    assert [entry["value"] for entry in entries] == ["survives"]
    assert rows == 0
