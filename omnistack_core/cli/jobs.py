"""``omnistack worker-check`` and ``omnistack jobs failed|retry|discard``: the queue in Redis."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from omnistack_core.errors import ConfigProblem, ConfigurationError
from omnistack_core.settings import load_settings


def add_commands(commands: Any) -> None:
    """Add ``worker-check`` and ``jobs failed|retry|discard``."""
    check = commands.add_parser(
        "worker-check",
        help="exit 0 when a jobs worker refreshed its health key recently (a health command)",
        description="Read the worker's health key in REDIS_URL: set by every live worker every "
        "JOBS_HEALTH_CHECK_SECONDS. Exit 1 when it is missing or Redis does not answer. "
        "Then list each live worker's own heartbeat: host, pid, last beat, job counts.",
    )
    check.set_defaults(handler=_worker_check)

    jobs = commands.add_parser("jobs", help="background jobs that failed")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="COMMAND", required=True)
    failed = jobs_commands.add_parser("failed", help="list the jobs that failed for good")
    failed.set_defaults(handler=_jobs_failed)
    retry = jobs_commands.add_parser("retry", help="enqueue a failed job again")
    retry.add_argument("job_id", help="the id `omnistack jobs failed` shows")
    retry.set_defaults(handler=_jobs_retry)
    discard = jobs_commands.add_parser("discard", help="forget a failed job without running it")
    discard.add_argument("job_id", help="the id `omnistack jobs failed` shows")
    discard.set_defaults(handler=_jobs_discard)


def _jobs_settings() -> Any:
    from omnistack_core.jobs import JobsSettings  # noqa: PLC0415 - the jobs extra

    settings = load_settings(JobsSettings)
    if settings.redis_url is None:
        raise ConfigurationError([ConfigProblem("REDIS_URL", "required to reach the workers")])
    return settings


async def _with_redis(settings: Any, work: Callable[[Any], Awaitable[int]]) -> int:
    from redis.asyncio import Redis  # noqa: PLC0415 - the jobs extra

    client = Redis.from_url(
        settings.redis_url.get_secret_value(), socket_connect_timeout=5, socket_timeout=5
    )
    try:
        return await work(client)
    finally:
        await client.aclose()


def _worker_check(arguments: argparse.Namespace) -> int:  # noqa: ARG001 - no options
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1

    from redis.exceptions import RedisError  # noqa: PLC0415 - the jobs extra brings redis

    async def check(client: Any) -> int:
        try:
            state = await client.get(f"{settings.jobs_queue_name}:health-check")
        except (OSError, RedisError) as exc:
            print(f"unhealthy: Redis does not answer ({type(exc).__name__})", file=sys.stderr)
            return 1
        if state is None:
            print("unhealthy: no worker refreshed its health key", file=sys.stderr)
            return 1
        print(f"healthy: {state.decode()}")
        from omnistack_core.jobs import live_workers  # noqa: PLC0415 - the jobs extra

        workers = await live_workers(client, settings.jobs_queue_name)
        for worker in workers:
            print(
                f"{worker.worker_id}  last seen {worker.age():.0f}s ago  done={worker.jobs_done}"
                f"  failed={worker.jobs_failed}  retried={worker.jobs_retried}"
                f"  in progress={worker.jobs_in_progress}"
            )
        print(f"{len(workers)} live workers")
        return 0

    return asyncio.run(_with_redis(settings, check))


def _jobs_failed(arguments: argparse.Namespace) -> int:  # noqa: ARG001 - no options
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from omnistack_core.jobs import FailedJobs  # noqa: PLC0415 - the jobs extra

    async def show(client: Any) -> int:
        failed = await FailedJobs(client, settings.jobs_queue_name).list()
        for entry in failed:
            when = datetime.fromtimestamp(entry.failed_at, UTC).isoformat(timespec="seconds")
            print(f"{entry.job_id}  {entry.job}  {when}  attempts={entry.attempts}  {entry.error}")
        print(f"{len(failed)} failed jobs")
        return 0

    return asyncio.run(_with_redis(settings, show))


def _jobs_retry(arguments: argparse.Namespace) -> int:
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from arq import create_pool  # noqa: PLC0415 - the jobs extra

    from omnistack_core.jobs import FailedJobs  # noqa: PLC0415 - the jobs extra
    from omnistack_core.jobs.serialization import dumps, loads  # noqa: PLC0415
    from omnistack_core.jobs.worker import redis_settings  # noqa: PLC0415

    async def retry(client: Any) -> int:
        pool = await create_pool(
            redis_settings(settings.redis_url.get_secret_value()),
            job_serializer=dumps,
            job_deserializer=loads,
        )
        try:
            failed = FailedJobs(client, settings.jobs_queue_name)
            entry = await failed.get(arguments.job_id)
            job_id = await failed.retry(arguments.job_id, pool)
        finally:
            await pool.aclose()
        if entry is None or job_id is None:
            print(f"no failed job {arguments.job_id}", file=sys.stderr)
            return 1
        print(f"enqueued {entry.job} again as {job_id}")
        return 0

    return asyncio.run(_with_redis(settings, retry))


def _jobs_discard(arguments: argparse.Namespace) -> int:
    try:
        settings = _jobs_settings()
    except (ConfigurationError, ImportError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from omnistack_core.jobs import FailedJobs  # noqa: PLC0415 - the jobs extra

    async def discard(client: Any) -> int:
        entry = await FailedJobs(client, settings.jobs_queue_name).discard(arguments.job_id)
        if entry is None:
            print(f"no failed job {arguments.job_id}", file=sys.stderr)
            return 1
        print(f"discarded {entry.job} {entry.job_id}")
        return 0

    return asyncio.run(_with_redis(settings, discard))
