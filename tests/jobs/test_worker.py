"""A real arq worker, in a subprocess, on real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from omnistack_core import create_app, load_settings
from omnistack_core.cli import main
from omnistack_core.email import (
    SEND_JOB_NAME,
    EmailMessage,
    EmailModule,
    email_metadata,
    send_email_later,
)
from omnistack_core.jobs import JobsModule, Queue, RedisQueue, WorkerHeartbeat, live_workers
from omnistack_core.jobs.failed import FailedJobs
from omnistack_core.testing import LocalResend, app_client, wait_until_async
from tests.jobs import service

REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def environment(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The service's variables, shared by the test's app and its workers."""
    variables = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "w" * 40,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/worker.db",
        "REDIS_URL": redis_url,
        "JOBS_TRACE_URL": redis_url,
        "JOBS_QUEUE_NAME": f"test:{uuid.uuid4().hex[:8]}",
        "JOBS_RETRY_BASE_SECONDS": "0.05",
        # A killed job runs again once the longest job timeout (+ 15 s) has passed.
        "JOBS_TIMEOUT_SECONDS": "5",
        "JOBS_HEALTH_CHECK_SECONDS": "1",
        "JOBS_SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "json",
        "WORKER_METRICS_PORT": str(free_port()),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def start_worker(
    environment: dict[str, str],
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts ``arq tests.jobs.worker_service.WorkerSettings``; every worker is stopped after."""
    workers: list[subprocess.Popen[str]] = []

    def start(**variables: str) -> subprocess.Popen[str]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "arq", "tests.jobs.worker_service.WorkerSettings"],
            cwd=REPOSITORY,
            env={**os.environ, **environment, **variables},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
        worker.communicate(timeout=30)


def enqueuing_app() -> FastAPI:
    app = create_app(
        load_settings(service.ServiceSettings), modules=[JobsModule(jobs=service.JOBS)]
    )

    @app.post("/record/{value}")
    async def record(value: str, queue: Queue) -> dict[str, str | None]:
        return {"job_id": await queue.enqueue(service.record, value)}

    return app


async def cli(*arguments: str) -> int:
    """The ``omnistack`` command, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(main, list(arguments))


async def wait_for(
    client: Redis, job_id: str, event: str, *, count: int = 1, seconds: float = 30
) -> list[dict[str, object]]:
    async def traced() -> list[dict[str, object]] | None:
        entries = [json.loads(item) for item in await client.lrange(f"trace:{job_id}", 0, -1)]
        return entries if sum(entry["event"] == event for entry in entries) >= count else None

    return await wait_until_async(
        traced,
        timeout=seconds,
        interval=0.05,
        message=f"{job_id} never traced {event!r} {count} times",
    )


def worker_metrics(
    environment: dict[str, str],
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{environment['WORKER_METRICS_PORT']}/").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def jobs_total(environment: dict[str, str], job: str, status: str) -> float:
    """The worker's ``background_jobs_total`` for ``job`` and ``status``."""
    labels = frozenset({("job", job), ("status", status)})
    return worker_metrics(environment).get(("background_jobs_total", labels), 0.0)


async def test_a_worker_runs_jobs_with_the_request_id_of_their_request(
    start_worker: Callable[[], subprocess.Popen[str]], trace: Redis
) -> None:
    worker = start_worker()
    app = enqueuing_app()
    async with app_client(app) as client:
        assert isinstance(JobsModule.of(app), RedisQueue)
        response = await client.post("/record/ada", headers={"X-Request-ID": "req-worker"})
    job_id = response.json()["job_id"]

    [entry] = await wait_for(trace, job_id, "record")
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)

    assert entry["request_id"] == "req-worker"
    job_lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"omnistack.jobs"' in line and job_id in line
    ]
    assert [line["request_id"] for line in job_lines] == ["req-worker"]
    # Every line, arq's own included, is JSON in JSON mode, and none comes twice.
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    arq_lines = [record["message"] for record in records if record["logger"].startswith("arq")]
    assert any(message.startswith("Starting worker for") for message in arq_lines)
    assert len(arq_lines) == len(set(arq_lines))


def test_a_worker_with_bad_settings_says_so_in_one_line_and_exits(
    environment: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "arq", "tests.jobs.worker_service.WorkerSettings"],
        cwd=REPOSITORY,
        env={**os.environ, **environment, "JOBS_MAX_ATTEMPTS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    [line] = (result.stdout + result.stderr).splitlines()
    record = json.loads(line)
    assert result.returncode != 0
    assert record["message"] == "Invalid configuration (1 problem)"
    assert record["problems"][0]["variable"] == "JOBS_MAX_ATTEMPTS"


async def test_failures_are_retried_with_backoff_recorded_and_retried_by_hand(
    start_worker: Callable[[], subprocess.Popen[str]],
    environment: dict[str, str],
    trace: Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start_worker()
    app = enqueuing_app()
    async with app_client(app):
        exhausted = await JobsModule.of(app).enqueue(service.flaky, 5)
        broken = await JobsModule.of(app).enqueue(service.broken)
        succeeded = await JobsModule.of(app).enqueue(service.record, "fine")
    await wait_for(trace, str(exhausted), "attempt", count=3)
    await wait_for(trace, str(broken), "attempt")
    await wait_for(trace, str(succeeded), "record")
    failed = FailedJobs(trace, environment["JOBS_QUEUE_NAME"])

    async def both_failures_recorded() -> bool:
        # The worker counts an attempt in its metrics before it records the failure.
        return (
            len(await failed.list()) == 2
            and jobs_total(environment, "tests.record", "success") == 1
        )

    await wait_until_async(
        both_failures_recorded,
        timeout=30,
        message="the worker never recorded both failures and the success",
    )

    assert await cli("jobs", "failed") == 0
    listing = capsys.readouterr().out
    assert f"{exhausted}  tests.flaky" in listing
    assert f"{broken}  tests.broken" in listing
    assert "ValueError: bad input" in listing
    assert "2 failed jobs" in listing

    metrics = worker_metrics(environment)

    def count(job: str, status: str) -> float:
        return metrics.get(
            ("background_jobs_total", frozenset({("job", job), ("status", status)})), 0.0
        )

    assert (count("tests.flaky", "retry"), count("tests.flaky", "failure")) == (2, 1)
    assert (count("tests.broken", "retry"), count("tests.broken", "failure")) == (0, 1)
    assert count("tests.record", "success") == 1

    assert await cli("jobs", "retry", str(broken)) == 0
    capsys.readouterr()
    entries = await wait_for(trace, "all", "attempt", count=5)  # 3 flaky, broken twice
    assert (
        sum(
            entry["job_id"] != broken and str(entry["job_id"]).startswith(str(broken))
            for entry in entries
        )
        == 1
    )
    assert await cli("jobs", "failed") == 0


async def test_worker_check_follows_the_workers_health_key(
    start_worker: Callable[[], subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("worker-check") == 1
    worker = start_worker()

    async def healthy() -> bool:
        return await cli("worker-check") == 0

    await wait_until_async(
        healthy, timeout=30, interval=0.2, message="the worker never reported healthy"
    )
    output = capsys.readouterr().out
    assert "healthy:" in output
    assert "1 live workers" in output
    assert f"-{worker.pid}-" in output  # the worker's own heartbeat, named by its pid
    worker.kill()
    worker.communicate(timeout=30)
    await asyncio.sleep(2.5)  # the key outlives the worker by one interval, no more

    assert await cli("worker-check") == 1
    assert "no worker refreshed its health key" in capsys.readouterr().err


async def live(trace: Redis, environment: dict[str, str], count: int) -> list[WorkerHeartbeat]:
    """Wait until exactly ``count`` workers are live on the test's queue."""

    async def listed() -> tuple[list[WorkerHeartbeat]] | None:
        workers = await live_workers(trace, environment["JOBS_QUEUE_NAME"])
        return (workers,) if len(workers) == count else None  # a true value even when empty

    (workers,) = await wait_until_async(
        listed, timeout=30, interval=0.1, message=f"never {count} live workers"
    )
    return workers


async def test_each_worker_has_its_own_heartbeat_with_its_counts(
    start_worker: Callable[..., subprocess.Popen[str]],
    environment: dict[str, str],
    trace: Redis,
) -> None:
    first = start_worker()
    second = start_worker(WORKER_METRICS_PORT=str(free_port()))  # two cannot share a port
    workers = await live(trace, environment, 2)
    assert {worker.pid for worker in workers} == {first.pid, second.pid}
    assert {worker.host for worker in workers} == {socket.gethostname()}
    assert all(worker.queue == environment["JOBS_QUEUE_NAME"] for worker in workers)

    app = enqueuing_app()
    async with app_client(app):
        await JobsModule.of(app).enqueue(service.broken)
        for n in range(3):
            await JobsModule.of(app).enqueue(service.record, f"count-{n}")

    async def counted() -> list[WorkerHeartbeat] | None:
        # Counts reach Redis with the next beat, every JOBS_HEALTH_CHECK_SECONDS (1 s here).
        workers = await live_workers(trace, environment["JOBS_QUEUE_NAME"])
        done = sum(worker.jobs_done for worker in workers)
        failed = sum(worker.jobs_failed for worker in workers)
        return workers if (done, failed) == (3, 1) else None

    workers = await wait_until_async(
        counted, timeout=30, interval=0.2, message="the beats never counted 3 done and 1 failed"
    )
    assert all(worker.jobs_in_progress == 0 for worker in workers)
    assert all(worker.age() < 3 for worker in workers)

    # A clean stop removes its heartbeat at once; the other worker stays listed.
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    (remaining,) = await live_workers(trace, environment["JOBS_QUEUE_NAME"])
    assert remaining.pid == second.pid

    # A killed worker says no goodbye: its heartbeat expires after three intervals.
    second.kill()
    second.communicate(timeout=30)
    await live(trace, environment, 0)
    assert await trace.zcard(f"omnistack:workers:{environment['JOBS_QUEUE_NAME']}") == 0


async def test_a_running_job_is_in_progress_on_its_workers_heartbeat(
    start_worker: Callable[[], subprocess.Popen[str]],
    environment: dict[str, str],
    trace: Redis,
) -> None:
    start_worker()
    await live(trace, environment, 1)
    app = enqueuing_app()
    async with app_client(app):
        job_id = str(await JobsModule.of(app).enqueue(service.deliver_once, "order-9"))
    await wait_for(trace, job_id, "started")

    async def running() -> bool:
        (worker,) = await live_workers(trace, environment["JOBS_QUEUE_NAME"])
        return worker.jobs_in_progress == 1

    await wait_until_async(running, timeout=10, interval=0.1, message="never in progress")


async def test_a_worker_killed_mid_job_leaves_it_to_another_which_delivers_once(
    start_worker: Callable[[], subprocess.Popen[str]], trace: Redis
) -> None:
    first = start_worker()
    app = enqueuing_app()
    async with app_client(app):
        job_id = str(await JobsModule.of(app).enqueue(service.deliver_once, "order-7"))
    await wait_for(trace, job_id, "started")
    first.kill()  # SIGKILL, in the middle of the delivery
    first.communicate(timeout=30)

    start_worker()
    await wait_for(trace, job_id, "delivered", seconds=60)
    await asyncio.sleep(1)  # a late second delivery, were there one, would be traced by now
    entries = [json.loads(item) for item in await trace.lrange(f"trace:{job_id}", 0, -1)]

    assert [entry["event"] for entry in entries].count("started") == 2
    assert [entry["event"] for entry in entries].count("delivered") == 1
    assert entries[-1]["attempt"] == 2


async def test_sigterm_lets_a_running_job_finish(
    start_worker: Callable[[], subprocess.Popen[str]], trace: Redis
) -> None:
    worker = start_worker()
    app = enqueuing_app()
    async with app_client(app):
        job_id = str(await JobsModule.of(app).enqueue(service.deliver_once, "order-8"))
    await wait_for(trace, job_id, "started")
    worker.send_signal(signal.SIGTERM)

    entries = await wait_for(trace, job_id, "delivered", seconds=10)
    worker.communicate(timeout=30)

    assert [entry["event"] for entry in entries] == ["started", "delivered"]


async def test_the_queue_depth_is_on_the_apis_metrics(environment: dict[str, str]) -> None:
    app = enqueuing_app()
    async with app_client(app) as client:
        for n in range(3):
            await JobsModule.of(app).enqueue(service.record, str(n), defer_by=60)
        text = (await client.get("/api/v1/public/metrics")).text

    [queued] = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "background_jobs_queued"
    ]
    assert queued == 3


async def test_an_email_job_killed_after_delivery_still_delivers_once(
    start_worker: Callable[[], subprocess.Popen[str]],
    environment: dict[str, str],
    local_resend: LocalResend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = {
        "EMAIL_PROVIDER": "resend",
        "RESEND_API_KEY": local_resend.api_key,
        "RESEND_API_URL": local_resend.url,
        "EMAIL_FROM": "Shop <shop@example.com>",
    }
    environment.update(email)
    for name, value in email.items():
        monkeypatch.setenv(name, value)
    local_resend.answer_delay = 3  # delivered, then the answer is slow: time to die
    first = start_worker()
    app = create_app(modules=[JobsModule(jobs=service.JOBS), EmailModule()])
    message = EmailMessage(to="ada@example.com", subject="Your receipt", html="<p>Paid.</p>")
    async with app_client(app):
        async with app.state.database.engine.begin() as connection:
            await connection.run_sync(email_metadata.create_all)
        job_id = await send_email_later(JobsModule.of(app), message)
    await wait_until_async(
        lambda: local_resend.deliveries,
        timeout=30,
        interval=0.05,
        message="the first worker never sent the email",
    )
    first.kill()  # SIGKILL after the provider delivered, before the job could finish
    first.communicate(timeout=30)

    start_worker()
    await wait_until_async(
        lambda: len(local_resend.requests) >= 2,
        timeout=60,
        message="no second worker retried the job",
    )

    def sent() -> bool:
        # The second worker serves its metrics on the port the killed one used.
        with suppress(httpx.TransportError):
            return jobs_total(environment, SEND_JOB_NAME, "success") == 1
        return False

    await wait_until_async(sent, timeout=30, message="the second worker never finished the job")

    keys = {request.headers["idempotency-key"] for request in local_resend.requests}
    assert job_id == f"email:{keys.pop()}"
    assert not keys  # both attempts carried the same key
    assert len(local_resend.deliveries) == 1


async def test_the_workers_lines_never_show_a_jobs_arguments_or_an_email_address(
    start_worker: Callable[[], subprocess.Popen[str]], trace: Redis
) -> None:
    worker = start_worker()
    app = enqueuing_app()
    async with app_client(app):
        job_id = str(await JobsModule.of(app).enqueue(service.record, "ada@example.com"))
        noted = str(await JobsModule.of(app).enqueue(service.note, "grace@example.org"))
    await wait_for(trace, job_id, "record")
    await wait_for(trace, noted, "note")
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)

    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [started] = [r["message"] for r in records if f"→ {job_id}:tests.record" in r["message"]]
    [note] = [r for r in records if r["logger"] == "tests.jobs"]
    assert f"{job_id}:tests.record(…)" in started  # a " delayed=1.2s" may follow
    assert (note["message"], note["address"]) == ("Noted g***@example.org", "g***@example.org")
    assert "ada@example.com" not in output
    assert "grace@example.org" not in output
