"""Jobs per second and enqueue-to-start latency: OmniStack's queue and worker against plain arq.

Both run the same no-op job on the same Redis (database 14 of ``BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/14``, emptied first), with the worker in this process:

  * plain arq: ``enqueue_job`` on an arq pool, a ``Worker`` with arq's defaults (pickle,
    10 jobs at a time, the queue polled every 0.5 s);
  * OmniStack: ``RedisQueue.enqueue`` (JSON, request id metadata), the worker built by
    ``worker_settings`` (its defaults: 50 at a time, polled every 20 ms, the app's lifespan
    around it, metrics and logs per job).

Throughput: N jobs queued, then a burst worker runs them all; N / time. Latency: jobs
enqueued one by one (20 ms apart) to a running worker; start time minus enqueue time as arq
records them. Printed: medians, p50/p99, and the ratios.

    uv run python benchmarks/jobs_throughput.py [--jobs 3000 --latency-jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from typing import Any

from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job

from omnistack_core import create_app, load_settings
from omnistack_core.jobs import JobContext, JobsModule, JobsSettings, job, worker_settings
from omnistack_core.jobs.serialization import loads
from omnistack_core.testing import app_client

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


async def plain_noop(ctx: dict[str, Any]) -> None:
    return None


@job("bench.noop")
async def omnistack_noop(ctx: JobContext) -> None:
    return None


def plain_worker(*, burst: bool) -> Worker:
    return Worker(
        functions=[plain_noop],
        redis_settings=RedisSettings.from_dsn(REDIS_URL),
        burst=burst,
        handle_signals=False,
    )


def omnistack_worker(app: Any, *, burst: bool) -> Worker:
    settings_class = worker_settings(app)
    options = {k: v for k, v in vars(settings_class).items() if not k.startswith("_")}
    return Worker(**options, burst=burst, handle_signals=False)


async def flush() -> None:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    await pool.flushdb()
    await pool.aclose()


async def plain_throughput(jobs: int) -> float:
    await flush()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    for _ in range(jobs):
        await pool.enqueue_job("plain_noop")
    worker = plain_worker(burst=True)
    started = time.perf_counter()
    await worker.main()
    elapsed = time.perf_counter() - started
    await worker.close()
    await pool.aclose()
    return jobs / elapsed


async def omnistack_throughput(app: Any, jobs: int) -> float:
    await flush()
    async with app_client(app):
        for _ in range(jobs):
            await app.state.jobs.enqueue(omnistack_noop)
    worker = omnistack_worker(app, burst=True)
    started = time.perf_counter()
    await worker.main()
    elapsed = time.perf_counter() - started
    await worker.close()
    return jobs / elapsed


async def latencies(
    worker: Worker, enqueue: Any, pool: ArqRedis, count: int, deserializer: Any
) -> list[float]:
    running = asyncio.create_task(worker.main())
    await asyncio.sleep(1.0)  # started and polling
    job_ids = []
    for _ in range(count):
        job_ids.append(await enqueue())
        await asyncio.sleep(0.02)
    results = []
    for job_id in job_ids:
        queued = Job(job_id, pool, _deserializer=deserializer)
        await queued.result(timeout=30)
        result = await queued.result_info()
        if result is None:
            raise SystemExit(f"job {job_id} left no result")
        results.append((result.start_time - result.enqueue_time).total_seconds())
    running.cancel()
    await worker.close()
    return results


async def plain_latency(count: int) -> list[float]:
    await flush()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))

    async def enqueue() -> str:
        queued = await pool.enqueue_job("plain_noop")
        if queued is None:
            raise SystemExit("arq refused a job without an id")
        return queued.job_id

    try:
        return await latencies(plain_worker(burst=False), enqueue, pool, count, None)
    finally:
        await pool.aclose()


async def omnistack_latency(app: Any, count: int) -> list[float]:
    await flush()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        async with app_client(app):

            async def enqueue() -> str:
                return str(await app.state.jobs.enqueue(omnistack_noop))

            return await latencies(omnistack_worker(app, burst=False), enqueue, pool, count, loads)
    finally:
        await pool.aclose()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(jobs: int, latency_jobs: int, rounds: int) -> None:
    logging.disable(logging.INFO)  # both sides log per job otherwise; the worker writes none
    with tempfile.TemporaryDirectory() as directory:
        os.environ["JOBS_QUEUE_NAME"] = "arq:queue"  # the same queue key as plain arq
        settings = load_settings(
            JobsSettings,
            redis_url=REDIS_URL,
            database_url=f"sqlite+aiosqlite:///{directory}/bench.db",
            metrics_enabled=False,
        )
        app = create_app(settings, modules=[JobsModule()])
        plain_rates, our_rates = [], []
        for _ in range(rounds):
            plain_rates.append(await plain_throughput(jobs))
            our_rates.append(await omnistack_throughput(app, jobs))
        plain_lat = await plain_latency(latency_jobs)
        our_lat = await omnistack_latency(app, latency_jobs)
    await flush()

    plain_rate, our_rate = statistics.median(plain_rates), statistics.median(our_rates)
    print(f"throughput, median of {rounds} bursts of {jobs} no-op jobs")
    print(f"  plain arq (defaults):  {plain_rate:8.0f} jobs/s")
    print(f"  OmniStack:             {our_rate:8.0f} jobs/s   ratio {our_rate / plain_rate:.1f}x")
    print(f"enqueue-to-start latency, {latency_jobs} jobs 20 ms apart")
    for name, values in (("plain arq (defaults)", plain_lat), ("OmniStack", our_lat)):
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"  {name + ':':<22} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.jobs, arguments.latency_jobs, arguments.rounds))


if __name__ == "__main__":
    main()
