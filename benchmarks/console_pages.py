"""p95 time of each operator console list page, on PostgreSQL and Redis filled to size.

The console is built as a service builds it (auth, billing, AI, jobs and the console) and
served in process (ASGI, no socket): what is timed is the page's own work, its queries and
its rendering. Data, written before timing into a fresh PostgreSQL database and a Redis
database (``--redis``, emptied of this run's keys after):

  * 100,000 Stripe webhook events over 30 days, of 8 types, 1 in 20 failed;
  * 10,000 failed jobs of 5 job names, in the failed-job store a worker writes;
  * 50,000 AI usage rows over 30 days, of 2,000 users and 6 models.

Each list page is requested ``--requests`` times (after a warm-up) and its median and p95
printed; "deep" pages are reached by following "Next page" 20 times, so their cursor sits
1,000 rows in. Issue 21 asks for p95 at most 100 ms for each list page.

    uv run python benchmarks/console_pages.py [--requests 200 --redis redis://127.0.0.1:6379/4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, insert, select

from omnistack_core import Settings, create_app, load_settings, settings_class_for
from omnistack_core.ai import AIModule, ai_metadata, ai_usage
from omnistack_core.auth import AuthModule, auth_metadata
from omnistack_core.billing import BillingModule, billing_events, billing_metadata
from omnistack_core.console import ConsoleModule, mint_link
from omnistack_core.jobs import FailedJob, FailedJobs, JobsModule
from omnistack_core.testing import app_client, create_test_database, drop_test_database
from omnistack_core.testing.services import DEFAULT_TEST_POSTGRES_URL

SECRET_KEY = "benchmark-console-" + "k" * 32
NOW = datetime.now(UTC)
EVENT_TYPES = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "checkout.session.completed",
    "entitlements.active_entitlement_summary.updated",
    "customer.updated",
]
JOB_NAMES = [
    "emails.send",
    "billing.report_usage",
    "exports.csv",
    "ai.summarise",
    "webhooks.fan_out",
]
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-sonnet"),
    ("anthropic", "claude-haiku"),
    ("anthropic", "claude-opus"),
]


def build_app(database_url: str, redis_url: str, queue: str) -> FastAPI:
    modules = [AuthModule(), BillingModule(), AIModule(), JobsModule(), ConsoleModule()]
    settings = load_settings(
        settings_class_for(modules, base=Settings),
        env_file=None,
        environment="test",
        secret_key=SECRET_KEY,
        database_url=database_url,
        redis_url=redis_url,
        jobs_queue_name=queue,
        metrics_enabled=False,
        log_level="WARNING",
        auth_provider="dev",
        # Never used: the list pages do not call Stripe.
        stripe_secret_key="sk_test_benchmark",  # noqa: S106
        stripe_webhook_secret="whsec_benchmark",  # noqa: S106
        billing_plans={"pro": "price_pro"},
        ai_record_usage=True,
    )
    return create_app(settings, modules=modules)


async def fill(app: FastAPI, redis_url: str, queue: str) -> None:
    data = random.Random(21)  # noqa: S311 - made-up rows, the same on every run
    async with app.state.database.engine.begin() as connection:
        for metadata in (auth_metadata, billing_metadata, ai_metadata):
            await connection.run_sync(metadata.create_all)
    events = []
    for number in range(100_000):
        received = NOW - timedelta(seconds=data.uniform(0, 30 * 86400))
        failed = number % 20 == 0
        events.append(
            {
                "id": f"evt_{number:07}",
                "type": data.choice(EVENT_TYPES),
                "created": int(received.timestamp()),
                "received_at": received,
                "processed_at": None if failed else received,
                "attempts": 3 if failed else 1,
                "last_error": "RuntimeError: the warehouse is closed" if failed else None,
                "payload": {"id": f"evt_{number:07}", "object": "event"},
            }
        )
    usage = [
        {
            "id": str(uuid.uuid4()),
            "user_id": f"user-{data.randrange(2000):04}",
            "provider": (model := data.choice(MODELS))[0],
            "model": model[1],
            "input_tokens": data.randrange(50, 4000),
            "output_tokens": data.randrange(10, 800),
            "cached_tokens": 0,
            "cost": data.uniform(0.0001, 0.05),
            "request_id": None,
            "created_at": NOW - timedelta(seconds=data.uniform(0, 30 * 86400)),
        }
        for _ in range(50_000)
    ]
    async with app.state.database.session() as session:
        for start in range(0, len(events), 5000):
            await session.execute(insert(billing_events), events[start : start + 5000])
        for start in range(0, len(usage), 5000):
            await session.execute(insert(ai_usage), usage[start : start + 5000])
    async with app.state.database.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")

    redis = Redis.from_url(redis_url)
    try:
        failed_jobs = FailedJobs(redis, queue)
        for start in range(0, 10_000, 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for number in range(start, start + 1000):
                    entry = FailedJob(
                        f"job-{number:05}",
                        JOB_NAMES[number % len(JOB_NAMES)],
                        [number, f"user{number}@example.com"],
                        {"attempt_note": "x" * 40},
                        "ValueError: the provider refused",
                        5,
                        time.time() - number,
                        "app/jobs.py:10 in run",
                    )
                    pipe.hset(failed_jobs.key, entry.job_id, json.dumps(asdict(entry)))
                    pipe.zadd(failed_jobs.index_key, {entry.job_id: entry.failed_at})
                    pipe.zadd(
                        f"{failed_jobs.index_key}:{entry.job}", {entry.job_id: entry.failed_at}
                    )
                await pipe.execute()
    finally:
        await redis.aclose()


async def check_counts(app: FastAPI, redis_url: str, queue: str) -> None:
    """Refuse to time anything unless the data is all there."""
    async with app.state.database.session() as session:
        events = await session.scalar(select(func.count()).select_from(billing_events))
        usage = await session.scalar(select(func.count()).select_from(ai_usage))
    redis = Redis.from_url(redis_url)
    try:
        failed = await FailedJobs(redis, queue).count()
    finally:
        await redis.aclose()
    if (events, failed, usage) != (100_000, 10_000, 50_000):
        raise RuntimeError(f"filled {events} events, {failed} failed jobs, {usage} usage rows")


async def deep(client: httpx.AsyncClient, url: str, pages: int = 20) -> str:
    """The URL of the page reached by following "Next page" ``pages`` times from ``url``."""
    for _ in range(pages):
        page = await client.get(url)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if found is None:
            raise RuntimeError(f"{url} has fewer than {pages} pages")
        url = found.group(1).replace("&amp;", "&")
    return url


async def timed(client: httpx.AsyncClient, url: str, requests: int) -> tuple[float, float, int]:
    for _ in range(5):
        await client.get(url)
    samples = []
    rows = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        rows = response.text.count("<tr>") - 1
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], rows


async def main(requests: int, server: str, redis_url: str) -> None:
    database_url = create_test_database(server)
    queue = f"bench:{uuid.uuid4().hex[:8]}"
    try:
        app = build_app(database_url, redis_url, queue)
        async with app_client(app, base_url="http://localhost") as client:
            started = time.perf_counter()
            await fill(app, redis_url, queue)
            await check_counts(app, redis_url, queue)
            print(
                f"filled in {time.perf_counter() - started:.1f} s: 100,000 webhook events, "
                "10,000 failed jobs, 50,000 AI usage rows"
            )
            token = mint_link(SECRET_KEY, "benchmark", minutes=5)
            await client.post("/console/login", data={"token": token})
            day = (NOW - timedelta(days=3)).strftime("%Y-%m-%d")
            pages = {
                "jobs: failed, first page": "/console/jobs/failed",
                "jobs: failed, one job": "/console/jobs/failed?job=exports.csv",
                "jobs: failed, 20 pages in": await deep(client, "/console/jobs/failed"),
                "jobs: queue": "/console/jobs",
                "billing: events, first page": "/console/billing",
                "billing: events, one type": "/console/billing?type=invoice.paid",
                "billing: events, failed": "/console/billing?outcome=failed",
                "billing: events, one day": f"/console/billing?since={day}&until={day}",
                "billing: events, 20 pages in": await deep(client, "/console/billing"),
                "billing: failed, 20 pages in": await deep(
                    client, "/console/billing?outcome=failed"
                ),
                "ai: by user, 24 hours": "/console/ai?by=user&window=24h",
                "ai: by user, 30 days": "/console/ai?by=user&window=30d",
                "ai: by user, 30 days, 20 pages in": await deep(
                    client, "/console/ai?by=user&window=30d"
                ),
                "ai: by model, 30 days": "/console/ai?by=model&window=30d",
                "overview": "/console",
            }
            print(f"\n{'page':<36} {'rows':>5} {'median ms':>10} {'p95 ms':>8}  (<= 100 ms)")
            for name, url in pages.items():
                median, p95, rows = await timed(client, url, requests)
                verdict = "ok" if p95 <= 100 else "OVER"
                print(f"{name:<36} {rows:>5} {median:>10.1f} {p95:>8.1f}  {verdict}")
    finally:
        redis = Redis.from_url(redis_url)
        try:
            keys = [key async for key in redis.scan_iter(f"{queue}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()
        drop_test_database(server, database_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--postgres", default=DEFAULT_TEST_POSTGRES_URL, help="the server")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4", help="a Redis database")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.postgres, arguments.redis))
